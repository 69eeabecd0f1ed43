//! Sets and chains found in a backend listing, and which of them a time selects.
//!
//! Built exactly as duplicity 0.8.22 builds its `CollectionsStatus` from a listing, so both tools agree
//! on what is primary, orphaned or incomplete:
//! 1. names are grouped into **sets**: files of one kind (full/inc) with identical times; a set is
//!    complete iff it has a manifest; incomplete sets take no further part;
//! 2. complete sets, sorted by time, form **chains**: each full starts one; an inc joins the first
//!    chain whose end equals its `from`, or replaces that chain's last inc when it has the same `from`
//!    and a later `to` (the replaced set is then in no list at all, as in duplicity: see
//!    [`Collection::superseded_sets`]); other incs are orphaned;
//! 3. full-signatures start **signature chains**; new-signatures, sorted by `from`, join the first
//!    chain ending at their `from`, others are orphaned;
//! 4. the newest backup chain (by end time) is **primary** if some signature chain ends where it
//!    ends; failing that, if one ends at its next-to-last *incremental*, the last inc is moved to the
//!    incomplete sets ("discarding last backup set") and the chain is primary; its end time is left
//!    unchanged, as duplicity leaves it.
//!
//! Only the remote listing is used; duplicity also merges partial sets and signature chains from its
//! local cache, which the cache module handles.

use std::collections::BTreeMap;

use crate::engine::archive::names::{self, NameKind, Prefixes};

/// Why no chain could be chosen for a time.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CollectionError {
    #[error("no backup chains found at the target: run a full backup first")]
    NoChains,
    #[error("no signature chains found at the target: run a full backup first")]
    NoSignatureChains,
    #[error("two backup chains cover the time {0}: the target holds overlapping chains")]
    TwoChainsCover(String),
    /// Only sets left out (no readable manifest: a cut upload) lie at or before the time.
    #[error("no backup at or before {time}: the only set by then, {ignored}, was never completed (no readable manifest; ignored): pass a later time (collection-status lists the complete sets)")]
    NoneAtOrBefore { time: String, ignored: String },
}

/// Full or incremental, with the times from the names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetKind {
    Full { time: i64 },
    Inc { from: i64, to: i64 },
}

impl SetKind {
    /// The name kind of the set's manifest.
    pub fn manifest_kind(self) -> NameKind {
        match self {
            SetKind::Full { time } => NameKind::FullManifest { time },
            SetKind::Inc { from, to } => NameKind::IncManifest { from, to },
        }
    }
}

/// All files of one backup session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSet {
    pub kind: SetKind,
    /// Volume number -> remote name.
    pub volumes: BTreeMap<u32, String>,
    /// The manifest's remote name; a set without one is incomplete.
    pub manifest: Option<String>,
    /// duplicity 3's `--jsonstat` file of the set, if any (part of the set: it goes when the set goes).
    pub jsonstat: Option<String>,
    /// Encrypted (`.gpg`), as the first name seen says.
    pub encrypted: bool,
    /// The first name seen was a `.part` (cache) name.
    pub partial: bool,
}

impl BackupSet {
    fn new(kind: SetKind, encrypted: bool, partial: bool) -> BackupSet {
        BackupSet {
            kind,
            volumes: BTreeMap::new(),
            manifest: None,
            jsonstat: None,
            encrypted,
            partial,
        }
    }

    /// The set's time: the full's time or the incremental's `to`.
    pub fn time(&self) -> i64 {
        match self.kind {
            SetKind::Full { time } => time,
            SetKind::Inc { to, .. } => to,
        }
    }

    pub fn is_full(&self) -> bool {
        matches!(self.kind, SetKind::Full { .. })
    }

    pub fn is_complete(&self) -> bool {
        self.manifest.is_some()
    }

    pub fn num_volumes(&self) -> usize {
        self.volumes.len()
    }

    /// Remote names: volumes in ascending order, then the manifest (unless it is a `.part`), then the
    /// jsonstat file (duplicity 3's `get_filenames`).
    pub fn file_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.volumes.values().cloned().collect();
        if let Some(m) = &self.manifest {
            if !names::parse(m).is_some_and(|p| p.partial) {
                v.push(m.clone());
            }
        }
        v.extend(self.jsonstat.iter().cloned());
        v
    }

    /// The set's name without its file part: `duplicity-full.<time>` or `duplicity-inc.<from>.to.<to>`.
    pub fn label(&self) -> String {
        use crate::engine::timestr::format_timestamp as ts;
        match self.kind {
            SetKind::Full { time } => format!("duplicity-full.{}", ts(time)),
            SetKind::Inc { from, to } => format!("duplicity-inc.{}.to.{}", ts(from), ts(to)),
        }
    }

    /// duplicity's `str(set)`: `[manifest, vol1, vol2, …]`.
    pub fn describe(&self) -> String {
        let all: Vec<&str> = self
            .manifest
            .iter()
            .chain(self.volumes.values())
            .map(String::as_str)
            .collect();
        format!("[{}]", all.join(", "))
    }
}

/// A full set and the incrementals that build on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupChain {
    pub full: BackupSet,
    /// In order; each one's `from` is the previous set's time.
    pub incs: Vec<BackupSet>,
    pub start: i64,
    pub end: i64,
}

impl BackupChain {
    /// The full, then the incrementals.
    pub fn sets(&self) -> impl Iterator<Item = &BackupSet> {
        std::iter::once(&self.full).chain(self.incs.iter())
    }

    /// The sets to apply to restore the state at `t`: the full plus the incs with `to <= t`.
    pub fn sets_at_time(&self, t: i64) -> Vec<&BackupSet> {
        std::iter::once(&self.full)
            .chain(self.incs.iter().filter(|s| s.time() <= t))
            .collect()
    }

    pub fn last(&self) -> &BackupSet {
        self.incs.last().unwrap_or(&self.full)
    }

    pub fn num_volumes(&self) -> usize {
        self.sets().map(BackupSet::num_volumes).sum()
    }

    /// Every remote name of the chain, newest set first (the order to delete in).
    pub fn file_names_newest_first(&self) -> Vec<String> {
        let mut sets: Vec<&BackupSet> = self.sets().collect();
        sets.reverse();
        sets.iter().flat_map(|s| s.file_names()).collect()
    }
}

/// One signature file of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigFile {
    pub name: String,
    /// None for the full-signatures file.
    pub from: Option<i64>,
    pub to: i64,
}

/// A full-signatures file and the new-signatures files linked to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureChain {
    pub full: SigFile,
    pub incs: Vec<SigFile>,
    pub start: i64,
    pub end: i64,
}

impl SignatureChain {
    /// The names to read, in order, optionally only up to time `t` (new-signatures with `to <= t`).
    pub fn names(&self, t: Option<i64>) -> Vec<String> {
        std::iter::once(&self.full)
            .chain(self.incs.iter().filter(|s| t.is_none_or(|t| s.to <= t)))
            .map(|s| s.name.clone())
            .collect()
    }
}

/// What an incremental backup continues: the primary chain and its signatures. The new inc's `from`
/// is `from` (the signature chain's end, as duplicity takes it).
#[derive(Debug, Clone, Copy)]
pub struct IncrementalBase<'a> {
    pub chain: &'a BackupChain,
    pub signatures: &'a SignatureChain,
    pub from: i64,
}

/// duplicity's view of a target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collection {
    /// All chains, sorted by end time (the primary among them).
    pub chains: Vec<BackupChain>,
    /// Index into `chains` of the primary chain (the newest one, with matching signatures).
    pub primary: Option<usize>,
    /// All signature chains, sorted by end time.
    pub sig_chains: Vec<SignatureChain>,
    /// Index into `sig_chains` of the primary chain's signatures.
    pub primary_sig: Option<usize>,
    /// Complete incremental sets that fit no chain.
    pub orphaned_sets: Vec<BackupSet>,
    /// Sets without a manifest (and a last inc discarded for want of its signatures).
    pub incomplete_sets: Vec<BackupSet>,
    /// new-signatures files that fit no signature chain.
    pub orphaned_sig_names: Vec<String>,
    /// Incs replaced by a later inc with the same `from`. duplicity lists them nowhere (so its
    /// cleanup leaves them); kept here for information only.
    pub superseded_sets: Vec<BackupSet>,
    /// Names that repeat a volume or manifest already in a set (e.g. both `.gz` and `.gpg`).
    /// duplicity aborts on these; we keep the first name and report the rest.
    pub conflicts: Vec<String>,
    /// The last inc of the newest chain was discarded because its signatures are missing.
    pub discarded_last_inc: bool,
    /// Chains that later backups show to have continued past their restorable end (a set in between
    /// is missing or lost its manifest). duplicity only calls the later sets orphaned and restores the
    /// older state without a word; we make restore of a time past the break fail, and backup start a
    /// new chain instead of extending it.
    pub breaks: Vec<ChainBreak>,
    /// Volumes missing from sets of chains: (set time, volume numbers). From the names' numbering
    /// alone until [`Collection::recheck_volumes`] is given the manifests' volume counts.
    pub missing_volumes: Vec<(i64, Vec<u32>)>,
}

/// A chain that cannot reach the newest backups made on it: backups made at `lost_from` and later
/// (the orphaned sets in `stranded`) continue it, but a set between its restorable end and them is
/// missing or incomplete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// Start (time of the full) of the broken chain.
    pub chain_start: i64,
    /// The chain's last restorable state.
    pub chain_end: i64,
    /// The earliest state that cannot be restored (the end time of the missing set).
    pub lost_from: i64,
    /// What is missing, in words, naming the files where they are known.
    pub missing: String,
    /// Descriptions of the complete sets that hang off the break.
    pub stranded: Vec<String>,
}

impl Collection {
    /// Builds the view from a remote listing (any names; those not duplicity's are ignored).
    pub fn from_names(names: &[String]) -> Collection {
        Collection::from_names_with(names, &Prefixes::default())
    }

    /// As [`Collection::from_names`], recognising only names with these prefixes.
    pub fn from_names_with(listing: &[String], prefixes: &Prefixes) -> Collection {
        let mut sorted: Vec<&String> = listing.iter().collect();
        sorted.sort(); // duplicity keeps the backend's order; we make ours deterministic
        let mut c = Collection::default();

        // 1. Sets, in order of first appearance.
        let mut sets: Vec<BackupSet> = Vec::new();
        let mut full_sigs: Vec<SigFile> = Vec::new();
        let mut new_sigs: Vec<SigFile> = Vec::new();
        for name in sorted {
            let Some(p) = names::parse_with_prefixes(name, prefixes) else {
                // duplicity 3 files a jsonstat with the set of the same times (a set of its own
                // when there is no other file: incomplete, so cleanup takes it).
                if let Some(js) = names::parse_jsonstat_with_prefixes(name, prefixes) {
                    let kind = match js.from {
                        None => SetKind::Full { time: js.time },
                        Some(from) => SetKind::Inc { from, to: js.time },
                    };
                    let encrypted = js.storage == names::Storage::Gpg;
                    let set = match sets.iter_mut().position(|s| s.kind == kind) {
                        Some(i) => &mut sets[i],
                        None => {
                            sets.push(BackupSet::new(kind, encrypted, js.partial));
                            sets.last_mut().expect("just pushed")
                        }
                    };
                    if set.jsonstat.is_some() {
                        c.conflicts.push(name.clone());
                    } else {
                        set.jsonstat = Some(name.clone());
                    }
                }
                continue;
            };
            let encrypted = p.storage == names::Storage::Gpg;
            let kind = match p.kind {
                NameKind::FullSignatures { time } => {
                    full_sigs.push(SigFile {
                        name: name.clone(),
                        from: None,
                        to: time,
                    });
                    continue;
                }
                NameKind::NewSignatures { from, to } => {
                    new_sigs.push(SigFile {
                        name: name.clone(),
                        from: Some(from),
                        to,
                    });
                    continue;
                }
                NameKind::FullVolume { time, .. } | NameKind::FullManifest { time } => {
                    SetKind::Full { time }
                }
                NameKind::IncVolume { from, to, .. } | NameKind::IncManifest { from, to } => {
                    SetKind::Inc { from, to }
                }
            };
            let idx = match sets.iter().position(|s| s.kind == kind) {
                Some(i) => i,
                None => {
                    sets.push(BackupSet::new(kind, encrypted, p.partial));
                    sets.len() - 1
                }
            };
            let set = &mut sets[idx];
            if set.partial && encrypted {
                set.encrypted = true;
            }
            let slot = match p.kind.volume() {
                Some(v) => set.volumes.entry(v),
                None => {
                    if set.manifest.is_some() {
                        c.conflicts.push(name.clone());
                    } else {
                        set.manifest = Some(name.clone());
                    }
                    continue;
                }
            };
            match slot {
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(name.clone());
                }
                std::collections::btree_map::Entry::Occupied(_) => c.conflicts.push(name.clone()),
            }
        }

        // 2. Chains from the complete sets, by time (stable, like Python's sort).
        let (mut complete, incomplete): (Vec<BackupSet>, Vec<BackupSet>) =
            sets.into_iter().partition(BackupSet::is_complete);
        c.incomplete_sets = incomplete;
        complete.sort_by_key(BackupSet::time);
        let mut chains: Vec<BackupChain> = Vec::new();
        for set in complete {
            match set.kind {
                SetKind::Full { time } => chains.push(BackupChain {
                    full: set,
                    incs: Vec::new(),
                    start: time,
                    end: time,
                }),
                SetKind::Inc { from, to } => {
                    let mut placed = false;
                    for chain in chains.iter_mut() {
                        if chain.end == from {
                            chain.incs.push(set.clone());
                        } else if chain.incs.last().is_some_and(|last| {
                            matches!(last.kind, SetKind::Inc { from: f, to: t } if f == from && to > t)
                        }) {
                            let old = std::mem::replace(chain.incs.last_mut().unwrap(), set.clone());
                            c.superseded_sets.push(old);
                        } else {
                            continue;
                        }
                        chain.end = to;
                        placed = true;
                        break;
                    }
                    if !placed {
                        c.orphaned_sets.push(set);
                    }
                }
            }
        }
        chains.sort_by_key(|ch| ch.end);

        // 3. Signature chains.
        let mut sig_chains: Vec<SignatureChain> = full_sigs
            .into_iter()
            .map(|f| SignatureChain {
                start: f.to,
                end: f.to,
                full: f,
                incs: Vec::new(),
            })
            .collect();
        new_sigs.sort_by_key(|s| s.from);
        for sig in new_sigs {
            match sig_chains.iter_mut().find(|ch| Some(ch.end) == sig.from) {
                Some(ch) => {
                    ch.end = sig.to;
                    ch.incs.push(sig);
                }
                None => c.orphaned_sig_names.push(sig.name),
            }
        }
        sig_chains.sort_by_key(|ch| ch.end);

        // 4. The primary chain: the newest backup chain, if a signature chain matches it.
        if let Some(latest) = chains.last_mut() {
            for (i, sig) in sig_chains.iter().enumerate().rev() {
                let matched = if sig.end == latest.end {
                    true
                } else if latest.incs.len() >= 2
                    && sig.end == latest.incs[latest.incs.len() - 2].time()
                {
                    // duplicity keeps the chain's end time unchanged here.
                    let last = latest.incs.pop().expect("two incs");
                    c.incomplete_sets.push(last);
                    c.discarded_last_inc = true;
                    true
                } else {
                    false
                };
                if matched {
                    c.primary = Some(chains.len() - 1);
                    c.primary_sig = Some(i);
                    break;
                }
            }
        }
        c.chains = chains;
        c.sig_chains = sig_chains;
        c.breaks = c.find_breaks();
        c.missing_volumes = c.missing_volumes_with(&|_| None);
        c
    }

    /// Recomputes [`Collection::missing_volumes`] knowing the volume count of the sets whose
    /// manifest `expected` can read (a missing last volume shows only there).
    pub fn recheck_volumes(&mut self, expected: &dyn Fn(&BackupSet) -> Option<u32>) {
        self.missing_volumes = self.missing_volumes_with(expected);
    }

    /// Breaks: an orphaned inc whose `from` lies past the end of the chain it belongs to (the newest
    /// chain started at or before it) proves that backups continued that chain through a set that is
    /// now missing (or present without its manifest). An orphaned inc from inside a chain is a fork
    /// (two runs from the same base), not a break.
    fn find_breaks(&self) -> Vec<ChainBreak> {
        let mut breaks: Vec<ChainBreak> = Vec::new();
        let mut orphans: Vec<&BackupSet> = self.orphaned_sets.iter().collect();
        orphans.sort_by_key(|s| s.time());
        for o in orphans {
            let SetKind::Inc { from, .. } = o.kind else {
                continue;
            };
            let Some(chain) = self
                .chains
                .iter()
                .filter(|c| c.start <= from)
                .max_by_key(|c| c.start)
            else {
                continue;
            };
            if from <= chain.end {
                continue;
            }
            if let Some(b) = breaks.iter_mut().find(|b| b.chain_start == chain.start) {
                b.stranded.push(o.describe());
                continue;
            }
            // The missing set runs from the chain's end (or a later stranded set) to `from`.
            let missing = match self
                .incomplete_sets
                .iter()
                .find(|i| matches!(i.kind, SetKind::Inc { to, .. } if to == from))
            {
                Some(i) => {
                    let storage = if i.encrypted {
                        names::Storage::Gpg
                    } else {
                        names::Storage::Plain
                    };
                    let manifest = names::format(&i.kind.manifest_kind(), storage);
                    format!(
                        "the incremental set ending {} has no manifest ({manifest} is missing)",
                        crate::engine::timestr::format_timestamp(from)
                    )
                }
                None => format!(
                    "the incremental set(s) between {} and {} are missing from the target",
                    crate::engine::timestr::format_timestamp(chain.end),
                    crate::engine::timestr::format_timestamp(from)
                ),
            };
            breaks.push(ChainBreak {
                chain_start: chain.start,
                chain_end: chain.end,
                lost_from: from,
                missing,
                stranded: vec![o.describe()],
            });
        }
        breaks
    }

    /// The break of the chain that starts at `start`, if it has one.
    pub fn break_of(&self, chain: &BackupChain) -> Option<&ChainBreak> {
        self.breaks.iter().find(|b| b.chain_start == chain.start)
    }

    /// Volumes missing from the listing in any set of any chain: gaps in the numbering, and (when
    /// `expected` knows a set's volume count from its manifest) missing last volumes. Each entry names
    /// the set's time and the missing volume numbers.
    pub fn missing_volumes_with(
        &self,
        expected: &dyn Fn(&BackupSet) -> Option<u32>,
    ) -> Vec<(i64, Vec<u32>)> {
        let mut out = Vec::new();
        for set in self.chains.iter().flat_map(BackupChain::sets) {
            let highest = set.volumes.keys().next_back().copied().unwrap_or(0);
            let last = expected(set).unwrap_or(highest).max(highest);
            let missing: Vec<u32> = (1..=last)
                .filter(|v| !set.volumes.contains_key(v))
                .collect();
            if !missing.is_empty() {
                out.push((set.time(), missing));
            }
        }
        out
    }

    pub fn primary_chain(&self) -> Option<&BackupChain> {
        self.primary.map(|i| &self.chains[i])
    }

    pub fn primary_signatures(&self) -> Option<&SignatureChain> {
        self.primary_sig.map(|i| &self.sig_chains[i])
    }

    /// The chains other than the primary, oldest end first.
    pub fn secondary_chains(&self) -> impl Iterator<Item = &BackupChain> {
        self.chains
            .iter()
            .enumerate()
            .filter(move |(i, _)| Some(*i) != self.primary)
            .map(|(_, c)| c)
    }

    /// The chain to restore from for `-t t`: the one with start <= t <= end, else the newest one ending
    /// before t, else the oldest.
    pub fn chain_at_time(&self, t: i64) -> Result<&BackupChain, CollectionError> {
        if self.chains.is_empty() {
            return Err(CollectionError::NoChains);
        }
        let covering: Vec<&BackupChain> = self
            .chains
            .iter()
            .filter(|c| c.start <= t && t <= c.end)
            .collect();
        match covering.len() {
            1 => return Ok(covering[0]),
            0 => {}
            _ => {
                return Err(CollectionError::TwoChainsCover(
                    crate::engine::timestr::format_timestamp(t),
                ))
            }
        }
        Ok(self
            .chains
            .iter()
            .rev()
            .find(|c| c.end < t)
            .unwrap_or(&self.chains[0]))
    }

    /// The chain a restore (or verify) as of `t` reads: [`Collection::chain_at_time`], except that when
    /// no chain starts at or before `t` but a set left out for want of a manifest (a cut upload) does,
    /// there is nothing to restore: duplicity's fallback to the oldest chain would give a state later
    /// than the one asked for, which the cut set's time makes a likely mistake.
    pub fn restore_chain_at_time(&self, t: i64) -> Result<&BackupChain, CollectionError> {
        let chain = self.chain_at_time(t)?;
        if chain.start > t {
            if let Some(cut) = self.ignored_sets_between(None, t).last() {
                return Err(CollectionError::NoneAtOrBefore {
                    time: crate::engine::timestr::format_timestamp(t),
                    ignored: cut.label(),
                });
            }
        }
        Ok(chain)
    }

    /// The sets without a manifest (cut uploads; also a last inc discarded for want of signatures)
    /// taken after `after` (any time when `None`) and at or before `t`, oldest first: what a restore
    /// as of `t` from the state of `after` passes over.
    pub fn ignored_sets_between(&self, after: Option<i64>, t: i64) -> Vec<&BackupSet> {
        let mut v: Vec<&BackupSet> = self
            .incomplete_sets
            .iter()
            .filter(|s| after.is_none_or(|a| s.time() > a) && s.time() <= t)
            .collect();
        v.sort_by_key(|s| s.time());
        v
    }

    /// The sets to apply, in order, to restore the state at `t`.
    pub fn sets_at_time(&self, t: i64) -> Result<Vec<&BackupSet>, CollectionError> {
        Ok(self.chain_at_time(t)?.sets_at_time(t))
    }

    /// The signature chain for `list-current-files -t t`, chosen as duplicity chooses it.
    pub fn sig_chain_at_time(&self, t: i64) -> Result<&SignatureChain, CollectionError> {
        if self.sig_chains.is_empty() {
            return Err(CollectionError::NoSignatureChains);
        }
        Ok(self
            .sig_chains
            .iter()
            .rev()
            .find(|c| c.start <= t && t <= c.end)
            .or_else(|| self.sig_chains.iter().rev().find(|c| c.end < t))
            .unwrap_or(&self.sig_chains[0]))
    }

    /// The signature files (name, set time) in `listing` whose set never got its manifest. Upload order
    /// is volumes, signatures, manifest, so a run killed in between leaves one, which would extend the
    /// signature chain past the backup chain and unpair them: nothing can use it.
    pub fn signatures_of_incomplete_sets(&self, listing: &[String]) -> Vec<(String, i64)> {
        fn key(set: &BackupSet) -> (Option<i64>, i64) {
            match set.kind {
                SetKind::Full { time } => (None, time),
                SetKind::Inc { from, to } => (Some(from), to),
            }
        }
        let incomplete: std::collections::HashSet<_> =
            self.incomplete_sets.iter().map(key).collect();
        let complete: std::collections::HashSet<_> = self
            .chains
            .iter()
            .flat_map(|c| c.sets())
            .chain(self.orphaned_sets.iter())
            .map(key)
            .collect();
        listing
            .iter()
            .filter_map(|name| {
                let pn = names::parse(name)?;
                let k = (pn.kind.from_time(), pn.kind.time());
                (pn.kind.is_signature() && incomplete.contains(&k) && !complete.contains(&k))
                    .then(|| (name.clone(), pn.kind.time()))
            })
            .collect()
    }

    /// The time of the newest full backup (for `--full-if-older-than`); None if there is none.
    pub fn last_full_time(&self) -> Option<i64> {
        self.nth_last_full_time(1)
    }

    /// The time of the n-th newest full (n = 1 is the newest), for `remove-all-but-n-full`.
    pub fn nth_last_full_time(&self, n: usize) -> Option<i64> {
        let mut fulls: Vec<i64> = self.chains.iter().map(|c| c.start).collect();
        fulls.sort_unstable_by(|a, b| b.cmp(a));
        n.checked_sub(1).and_then(|i| fulls.get(i)).copied()
    }

    /// The newest complete set: the last set of the chain ending last (whose manifest an
    /// incremental compares with the cache).
    pub fn latest_complete_set(&self) -> Option<&BackupSet> {
        self.chains.last().map(BackupChain::last)
    }

    /// What an incremental continues, or None when there are no matching signatures (then duplicity
    /// fails `incremental` with "Old signatures not found" and turns the default action into a full).
    pub fn incremental_base(&self) -> Option<IncrementalBase<'_>> {
        let chain = self.primary_chain()?;
        let signatures = self.primary_signatures()?;
        Some(IncrementalBase {
            chain,
            signatures,
            from: signatures.end,
        })
    }

    /// Chains ending before `t`, except the primary (what `remove-older-than` may delete).
    pub fn chains_older_than(&self, t: i64) -> Vec<&BackupChain> {
        self.chains
            .iter()
            .enumerate()
            .filter(|(i, c)| c.end < t && Some(*i) != self.primary)
            .map(|(_, c)| c)
            .collect()
    }

    /// Signature chains ending before `t`, except the primary's.
    pub fn sig_chains_older_than(&self, t: i64) -> Vec<&SignatureChain> {
        self.sig_chains
            .iter()
            .enumerate()
            .filter(|(i, c)| c.end < t && Some(*i) != self.primary_sig)
            .map(|(_, c)| c)
            .collect()
    }

    /// Sets older than `t` that newer sets of the same chain still need (kept by remove-older-than).
    pub fn sets_older_than_required(&self, t: i64) -> Vec<&BackupSet> {
        let mut v: Vec<&BackupSet> = self
            .chains
            .iter()
            .filter(|c| c.end >= t)
            .flat_map(|c| c.sets().filter(|s| s.time() < t))
            .collect();
        v.sort_by_key(|s| s.time());
        v
    }

    /// Remote names `cleanup` deletes: files of orphaned and incomplete sets, orphaned signatures.
    pub fn extraneous_names(&self) -> Vec<String> {
        self.orphaned_sets
            .iter()
            .chain(self.incomplete_sets.iter())
            .flat_map(BackupSet::file_names)
            .chain(self.orphaned_sig_names.iter().cloned())
            .collect()
    }

    /// The warnings duplicity logs while reading the collection, in its order and words.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.discarded_last_inc {
            w.push(
                "Warning, discarding last backup set, because of missing signature file.".into(),
            );
        }
        if !self.orphaned_sig_names.is_empty() {
            let noun = plural(self.orphaned_sig_names.len(), "file:", "files:");
            w.push(format!(
                "Warning, found the following remote orphaned signature {noun}\n{}",
                self.orphaned_sig_names.join("\n")
            ));
        }
        if !self.sig_chains.is_empty() && self.primary.is_none() {
            w.push("Warning, found signatures but no corresponding backup files".into());
        }
        if !self.incomplete_sets.is_empty() {
            w.push(
                "Warning, found incomplete backup sets, probably left from aborted session".into(),
            );
        }
        for b in &self.breaks {
            w.push(b.warning());
        }
        for (time, vols) in &self.missing_volumes {
            w.push(missing_volumes_warning(*time, vols));
        }
        if !self.orphaned_sets.is_empty() {
            let noun = plural(self.orphaned_sets.len(), "file:", "files:");
            let sets: Vec<String> = self.orphaned_sets.iter().map(BackupSet::describe).collect();
            w.push(format!(
                "Warning, found the following orphaned backup {noun}\n{}",
                sets.join("\n")
            ));
        }
        w
    }
}

/// The warning for volumes missing from a set of a chain.
pub fn missing_volumes_warning(time: i64, vols: &[u32]) -> String {
    let list: Vec<String> = vols.iter().map(u32::to_string).collect();
    format!(
        "Warning, {} {} of the backup set of {} {} missing from the target: that set and the later sets \
         of its chain cannot be restored; the next backup starts a new full chain.",
        plural(vols.len(), "volume", "volumes"),
        list.join(", "),
        crate::engine::timestr::format_timestamp(time),
        plural(vols.len(), "is", "are"),
    )
}

impl ChainBreak {
    /// What is broken, in one sentence.
    pub fn describe(&self) -> String {
        use crate::engine::timestr::format_timestamp;
        format!(
            "the backup chain started {} is broken after {}: {}, so the backups made from {} on cannot \
             be restored ({})",
            format_timestamp(self.chain_start),
            format_timestamp(self.chain_end),
            self.missing,
            format_timestamp(self.lost_from),
            self.stranded.join("; "),
        )
    }

    /// The loud warning collection-status gives.
    pub fn warning(&self) -> String {
        format!(
            "Warning, {}. Restore {} or earlier with -t; the next backup starts a new full chain.",
            self.describe(),
            crate::engine::timestr::format_timestamp(self.chain_end),
        )
    }
}

/// English ngettext: singular for exactly one.
pub(crate) fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// Names of a verified example collection, shared by the tests of the modules that read collections.
#[cfg(test)]
pub(crate) mod fixture {
    use crate::engine::archive::names::{format, NameKind, Storage};

    pub const T0: i64 = 1_700_000_000;

    pub fn full(t: i64) -> Vec<String> {
        vec![
            format(&NameKind::FullVolume { time: t, vol: 1 }, Storage::Gzip),
            format(&NameKind::FullManifest { time: t }, Storage::Plain),
            format(&NameKind::FullSignatures { time: t }, Storage::Gzip),
        ]
    }

    pub fn inc(from: i64, to: i64) -> Vec<String> {
        vec![
            format(&NameKind::IncVolume { from, to, vol: 1 }, Storage::Gzip),
            format(&NameKind::IncManifest { from, to }, Storage::Plain),
            format(&NameKind::NewSignatures { from, to }, Storage::Gzip),
        ]
    }

    /// full t0, inc, inc, full t0+1000, inc, full t0+2000, and a file that is not duplicity's.
    pub fn example() -> Vec<String> {
        [
            full(T0),
            inc(T0, T0 + 100),
            inc(T0 + 100, T0 + 200),
            full(T0 + 1000),
            inc(T0 + 1000, T0 + 1100),
            full(T0 + 2000),
            vec!["unrelated.txt".to_string()],
        ]
        .concat()
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::*;
    use super::*;
    use crate::engine::archive::names::{format, Storage};
    use crate::engine::timestr;

    /// Sets without a manifest (cut uploads) never happened for a restore: a time at or after one
    /// selects the complete state before it and names it; a time before every complete set but at or
    /// after a cut one is an error, not duplicity's fallback to the oldest (later) chain.
    #[test]
    fn cut_sets_are_passed_over_and_named() {
        let cut_inc = format(
            &NameKind::IncVolume {
                from: T0,
                to: T0 + 100,
                vol: 1,
            },
            Storage::Gzip,
        );
        let cut_full = format(
            &NameKind::FullVolume {
                time: T0 - 50,
                vol: 1,
            },
            Storage::Gzip,
        );
        let c =
            Collection::from_names(&[full(T0), vec![cut_inc, cut_full], full(T0 + 1000)].concat());
        for t in [T0 + 100, T0 + 500] {
            let chain = c.restore_chain_at_time(t).unwrap();
            assert_eq!((chain.start, chain.end), (T0, T0));
            let ignored: Vec<String> = c
                .ignored_sets_between(Some(T0), t)
                .iter()
                .map(|s| s.label())
                .collect();
            assert_eq!(
                ignored,
                [format!(
                    "duplicity-inc.{}.to.{}",
                    crate::engine::timestr::format_timestamp(T0),
                    crate::engine::timestr::format_timestamp(T0 + 100)
                )]
            );
        }
        assert!(c.ignored_sets_between(Some(T0), T0 + 99).is_empty());
        let err = c.restore_chain_at_time(T0 - 10).unwrap_err();
        assert!(
            matches!(&err, CollectionError::NoneAtOrBefore { ignored, .. } if ignored.starts_with("duplicity-full.")),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("no backup at or before"),
            "{err}"
        );
        // Before every set, cut or not: duplicity's fallback to the oldest chain stays.
        assert_eq!(c.restore_chain_at_time(T0 - 60).unwrap().start, T0);
    }

    fn example() -> Collection {
        Collection::from_names(&fixture::example())
    }

    fn state_at(c: &Collection, t: i64) -> i64 {
        c.sets_at_time(t).unwrap().last().unwrap().time()
    }

    #[test]
    fn restore_time_selection_matches_verified_example() {
        let c = example();
        assert_eq!(c.chains.len(), 3);
        assert_eq!(state_at(&c, T0 + 150), T0 + 100);
        assert_eq!(state_at(&c, T0 + 500), T0 + 200);
        assert_eq!(state_at(&c, T0 - 10), T0);
        assert_eq!(state_at(&c, T0 + 5000), T0 + 2000);
        assert_eq!(state_at(&c, T0 + 1100), T0 + 1100);
        assert_eq!(c.sets_at_time(T0 + 150).unwrap().len(), 2);
    }

    #[test]
    fn primary_secondary_and_times() {
        let c = example();
        let p = c.primary_chain().unwrap();
        assert_eq!((p.start, p.end), (T0 + 2000, T0 + 2000));
        assert_eq!(c.secondary_chains().count(), 2);
        assert_eq!(c.last_full_time(), Some(T0 + 2000));
        assert_eq!(c.nth_last_full_time(2), Some(T0 + 1000));
        assert_eq!(c.nth_last_full_time(4), None);
        assert_eq!(c.latest_complete_set().unwrap().time(), T0 + 2000);
        let base = c.incremental_base().unwrap();
        assert_eq!(base.from, T0 + 2000);
        assert_eq!(
            base.signatures.names(None),
            vec![full(T0 + 2000)[2].clone()]
        );
        assert!(c.warnings().is_empty() && c.extraneous_names().is_empty());
        let old: Vec<i64> = c
            .chains_older_than(T0 + 1050)
            .iter()
            .map(|c| c.start)
            .collect();
        assert_eq!(old, [T0]);
        let sigs = &c.sig_chains[0];
        assert_eq!(sigs.names(Some(T0 + 150)).len(), 2);
        assert_eq!(c.sig_chain_at_time(T0 + 150).unwrap().start, T0);
    }

    #[test]
    fn jsonstat_files_join_their_set_or_make_an_incomplete_one() {
        let stat = |from: Option<i64>, to: i64| match from {
            None => format!(
                "duplicity-full.{}.jsonstat.gz",
                timestr::format_timestamp(to)
            ),
            Some(f) => format!(
                "duplicity-inc.{}.to.{}.jsonstat.gpg",
                timestr::format_timestamp(f),
                timestr::format_timestamp(to)
            ),
        };
        let mut names = [full(T0), inc(T0, T0 + 100)].concat();
        names.push(stat(None, T0));
        names.push(stat(Some(T0), T0 + 100));
        // Left behind by a set deleted without it.
        names.push(stat(Some(T0 - 200), T0 - 100));
        let c = Collection::from_names(&names);
        assert_eq!(c.chains.len(), 1);
        let chain = &c.chains[0];
        assert_eq!(
            chain.full.jsonstat.as_deref(),
            Some(names[names.len() - 3].as_str())
        );
        assert_eq!(
            chain.incs[0].jsonstat.as_deref(),
            Some(names[names.len() - 2].as_str())
        );
        assert_eq!(
            chain.full.file_names().last(),
            Some(&names[names.len() - 3])
        );
        assert_eq!(c.incomplete_sets.len(), 1);
        assert_eq!(c.extraneous_names(), vec![names[names.len() - 1].clone()]);
        assert!(c.primary.is_some());
    }

    #[test]
    fn orphans_incomplete_and_conflicts() {
        let mut names = [full(T0), inc(T0, T0 + 100)].concat();
        // An inc from a time no chain ends at.
        names.extend(inc(T0 + 50, T0 + 60));
        // Volumes without a manifest.
        names.push(format(
            &NameKind::IncVolume {
                from: T0 + 100,
                to: T0 + 300,
                vol: 1,
            },
            Storage::Gzip,
        ));
        names.push(format(
            &NameKind::IncVolume {
                from: T0 + 100,
                to: T0 + 300,
                vol: 2,
            },
            Storage::Gzip,
        ));
        // The same volume twice.
        names.push(format(
            &NameKind::FullVolume { time: T0, vol: 1 },
            Storage::Gpg,
        ));
        let c = Collection::from_names(&names);
        assert_eq!(c.chains.len(), 1);
        assert_eq!(c.chains[0].end, T0 + 100);
        assert_eq!(c.orphaned_sets.len(), 1);
        assert_eq!(
            c.orphaned_sets[0].kind,
            SetKind::Inc {
                from: T0 + 50,
                to: T0 + 60
            }
        );
        assert_eq!(c.incomplete_sets.len(), 1);
        assert_eq!(c.incomplete_sets[0].num_volumes(), 2);
        assert_eq!(c.orphaned_sig_names, vec![inc(T0 + 50, T0 + 60)[2].clone()]);
        assert_eq!(c.conflicts.len(), 1);
        assert!(c.primary.is_some());
        let extra = c.extraneous_names();
        assert_eq!(extra.len(), 5, "{extra:?}");
        assert!(!extra.iter().any(|n| n.contains("full")));
        let w = c.warnings();
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("Warning, found the following remote orphaned signature file:\n"));
    }

    #[test]
    fn later_inc_with_same_from_replaces_the_last() {
        let names = [full(T0), inc(T0, T0 + 10), inc(T0, T0 + 20)].concat();
        let c = Collection::from_names(&names);
        let ch = &c.chains[0];
        assert_eq!(ch.incs.len(), 1);
        assert_eq!(ch.incs[0].time(), T0 + 20);
        assert_eq!(ch.end, T0 + 20);
        assert_eq!(c.superseded_sets.len(), 1);
        assert!(c.orphaned_sets.is_empty());
        // The signature chain took the first new-signatures file; the other is orphaned, so the
        // backup chain (ending at +20) has no matching signatures.
        assert_eq!(c.sig_chains[0].end, T0 + 10);
        assert!(c.primary.is_none());
    }

    #[test]
    fn missing_last_signatures_discard_the_last_inc() {
        let mut names = [full(T0), inc(T0, T0 + 10), inc(T0 + 10, T0 + 20)].concat();
        names.retain(|n| {
            !n.contains("new-signatures")
                || !n.contains(&crate::engine::timestr::format_timestamp(T0 + 20))
        });
        let c = Collection::from_names(&names);
        assert!(c.discarded_last_inc);
        assert_eq!(c.primary, Some(0));
        assert_eq!(c.chains[0].incs.len(), 1);
        assert_eq!(c.chains[0].end, T0 + 20); // unchanged, as in duplicity
        assert_eq!(c.incomplete_sets.len(), 1);
        // With only the full's signatures and one inc, nothing matches (duplicity compares with the
        // full set's missing end time).
        let names = [full(T0), inc(T0, T0 + 10)]
            .concat()
            .into_iter()
            .filter(|n| !n.contains("new-signatures"))
            .collect::<Vec<_>>();
        let c = Collection::from_names(&names);
        assert!(c.primary.is_none() && !c.discarded_last_inc);
        assert!(c.incremental_base().is_none());
    }

    #[test]
    fn empty_listing() {
        let c = Collection::from_names(&[]);
        assert_eq!(c.chain_at_time(T0), Err(CollectionError::NoChains));
        assert_eq!(c.last_full_time(), None);
        assert!(c.incremental_base().is_none());
    }
}
