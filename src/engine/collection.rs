//! Sets and chains found in a backend listing, and which of them a time selects.

use std::collections::BTreeMap;

use super::archive::names::{self, NameKind};

/// All files of one backup set (same kind and times).
#[derive(Debug, Clone, Default)]
pub struct BackupSet {
    pub full: bool,
    /// The full's time, or the incremental's `from`.
    pub start: i64,
    /// The set's own time (the full's time, or the incremental's `to`).
    pub end: i64,
    pub manifest: Option<String>,
    pub volumes: BTreeMap<u32, String>,
}

/// A full set and the incrementals that continue it.
#[derive(Debug, Clone)]
pub struct Chain {
    pub sets: Vec<BackupSet>,
}

impl Chain {
    pub fn start_time(&self) -> i64 {
        self.sets[0].end
    }
    pub fn end_time(&self) -> i64 {
        self.sets.last().expect("chain has a full").end
    }
    pub fn last_manifest_kind(&self) -> NameKind {
        let s = self.sets.last().expect("chain has a full");
        if s.full {
            NameKind::FullManifest { time: s.end }
        } else {
            NameKind::IncManifest {
                from: s.start,
                to: s.end,
            }
        }
    }
}

/// A set to apply on restore.
pub struct RestoreSet {
    pub time: i64,
    pub manifest: String,
    pub volumes: BTreeMap<u32, String>,
}

pub struct Collection {
    pub chains: Vec<Chain>,
    signatures: Vec<NameKind>,
}

impl Collection {
    pub fn from_names(list: &[String]) -> Collection {
        let mut sets: BTreeMap<(bool, i64, i64), BackupSet> = BTreeMap::new();
        let mut signatures = Vec::new();
        for n in list {
            let Some(p) = names::parse(n) else { continue };
            if p.partial {
                continue;
            }
            let (full, start, end) = match p.kind {
                NameKind::FullVolume { time, .. } | NameKind::FullManifest { time } => {
                    (true, time, time)
                }
                NameKind::IncVolume { from, to, .. } | NameKind::IncManifest { from, to } => {
                    (false, from, to)
                }
                k @ (NameKind::FullSignatures { .. } | NameKind::NewSignatures { .. }) => {
                    signatures.push(k);
                    continue;
                }
            };
            let set = sets
                .entry((!full, end, start))
                .or_insert_with(|| BackupSet {
                    full,
                    start,
                    end,
                    ..Default::default()
                });
            match p.kind.volume() {
                Some(v) => {
                    set.volumes.insert(v, n.clone());
                }
                None => set.manifest = Some(n.clone()),
            }
        }
        let mut complete: Vec<BackupSet> = sets
            .into_values()
            .filter(|s| s.manifest.is_some())
            .collect();
        complete.sort_by_key(|s| (s.end, !s.full));
        let mut chains: Vec<Chain> = Vec::new();
        for s in complete {
            if s.full {
                chains.push(Chain { sets: vec![s] });
            } else if let Some(c) = chains.iter_mut().rev().find(|c| c.end_time() == s.start) {
                c.sets.push(s);
            }
        }
        chains.sort_by_key(|c| c.start_time());
        Collection { chains, signatures }
    }

    pub fn last_full_time(&self) -> Option<i64> {
        self.chains.last().map(|c| c.start_time())
    }

    /// The newest chain, if its signatures are all present.
    pub fn chain_to_continue(&self) -> Option<&Chain> {
        let c = self.chains.last()?;
        self.signature_kinds_for(c).map(|_| c)
    }

    /// The signature files covering `chain`, oldest first.
    pub fn signature_kinds_for(&self, chain: &Chain) -> Option<Vec<NameKind>> {
        let mut out = Vec::new();
        for s in &chain.sets {
            let want = if s.full {
                NameKind::FullSignatures { time: s.end }
            } else {
                NameKind::NewSignatures {
                    from: s.start,
                    to: s.end,
                }
            };
            if !self.signatures.contains(&want) {
                return None;
            }
            out.push(want);
        }
        Some(out)
    }

    /// The sets to apply to restore the state as of `time`, full first.
    pub fn sets_for_restore(&self, time: i64) -> Option<Vec<RestoreSet>> {
        let chain = self
            .chains
            .iter()
            .find(|c| c.start_time() <= time && time <= c.end_time())
            .or_else(|| self.chains.iter().rev().find(|c| c.end_time() < time))
            .or_else(|| self.chains.first())?;
        Some(
            chain
                .sets
                .iter()
                .filter(|s| s.full || s.end <= time)
                .map(|s| RestoreSet {
                    time: s.end,
                    manifest: s.manifest.clone().expect("complete"),
                    volumes: s.volumes.clone(),
                })
                .collect(),
        )
    }
}
