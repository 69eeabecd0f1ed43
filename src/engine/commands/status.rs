//! collection-status: what chains and sets a target holds, in duplicity's words.
//!
//! The text is duplicity 0.8.22's (warnings, "Last full backup date", then the status block), line for
//! line, with two differences: "Connecting with backend:" names the target URL (password removed)
//! instead of duplicity's Python class name `BackendWrapper`, and duplicity's "Archive dir:" line is
//! left out because this command reads only the remote listing. Times are local, in `asctime` form.
//!
//! With `json`, one JSON object carries the same facts (times as epoch seconds and as UTC
//! `YYYYMMDDTHHMMSSZ`); it is written by hand to keep the dependency set small.

use std::io::Write;

use super::json;
use crate::engine::archive::manifest::{quote, FileAction};
use crate::engine::collection::{plural, BackupChain, BackupSet, Collection, SetKind};
use crate::engine::error::Error;
use crate::engine::index::Index;
use crate::engine::repository::Repository;
use crate::engine::timestr::asctime_local;
use serde_json::{json, Value};

/// Lists the target and prints its collection status as duplicity does (or as JSON).
pub fn collection_status(repo: &Repository, out: &mut dyn Write, json: bool) -> Result<(), Error> {
    let col = repo.collection()?;
    let text = if json {
        render_json(&col, &repo.describe())
    } else {
        render_text(&col, &repo.describe())
    };
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::classify(e.into()))
}

/// One set of the primary chain and the regular files its manifest lists (duplicity's `Filelist`).
#[derive(Debug, Clone)]
pub struct SetChanges {
    pub full: bool,
    /// The full's time, or the incremental's end.
    pub time: i64,
    pub files: Vec<(FileAction, Index)>,
}

/// duplicity 3's `collection-status --file-changed PATH`: the primary chain's sets that list `path`,
/// oldest first, and what happened to it in each. duplicity 3.2.1 prints the path and the change as
/// Python byte strings (`File: b'a.txt'`, `b'New'`); here they are plain text.
pub fn file_changed_text(path: &Index, sets: &[SetChanges]) -> String {
    let row = |a: &str, b: &str, c: &str| format!("{a:>20}   {b:>30}  {c:>20}");
    let hits: Vec<(&SetChanges, FileAction)> = sets
        .iter()
        .filter_map(|s| {
            s.files
                .iter()
                .find(|(_, p)| p == path)
                .map(|(a, _)| (s, *a))
        })
        .collect();
    let mut l = vec![
        "-------------------------".to_string(),
        format!("File: {path}"),
        format!("Total number of backup: {}", hits.len()),
        row("Type of backup set:", "Time:", "Type of file change:"),
    ];
    for (set, action) in hits {
        let kind = if set.full { "Full" } else { "Incremental" };
        let a = action.as_str();
        let title = format!("{}{}", a[..1].to_ascii_uppercase(), &a[1..]);
        l.push(row(kind, &asctime_local(set.time), &title));
    }
    l.push("-------------------------".into());
    l.join("\n") + "\n"
}

/// duplicity 3's `collection-status --show-changes-in-set N`: the files set N lists (0 the newest set
/// of the primary chain, 1 the one before, ...), paths quoted as in the manifest.
pub fn changes_in_set_text(sets: &[SetChanges], n: usize) -> Result<String, Error> {
    let Some(set) = sets.iter().rev().nth(n) else {
        return Err(Error::bad_input(anyhow::anyhow!(
            "--show-changes-in-set {n}: the primary chain has {} set(s); give 0 (the newest) to {}",
            sets.len(),
            sets.len().saturating_sub(1)
        )));
    };
    let quoted: Vec<(String, &str)> = set
        .files
        .iter()
        .map(|(a, p)| {
            (
                String::from_utf8_lossy(&quote(p.as_bytes())).into_owned(),
                a.as_str(),
            )
        })
        .collect();
    let width = quoted
        .iter()
        .map(|(p, _)| p.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut l = vec![
        "-------------------------".to_string(),
        format!(" Backup set time: {}", asctime_local(set.time)),
        format!("Total number of changes: {}", quoted.len()),
        format!("{:<width$}  {:>20}", "File:", "Type of file change:"),
    ];
    for (p, a) in &quoted {
        l.push(format!("{p:<width$}  {a:>20}"));
    }
    l.push("-------------------------".into());
    Ok(l.join("\n") + "\n")
}

/// duplicity's status text for a collection.
pub fn render_text(col: &Collection, target: &str) -> String {
    let mut l: Vec<String> = col.warnings();
    l.push(match col.last_full_time() {
        Some(t) => format!("Last full backup date: {}", asctime_local(t)),
        None => "Last full backup date: none".to_string(),
    });
    l.push("Collection Status".into());
    l.push("-----------------".into());
    l.push(format!("Connecting with backend: {target}"));

    let secondary: Vec<&BackupChain> = col.secondary_chains().collect();
    l.push(format!(
        "\nFound {} secondary backup {}",
        secondary.len(),
        plural(secondary.len(), "chain.", "chains.")
    ));
    for (i, chain) in secondary.iter().enumerate() {
        l.push(format!("Secondary chain {} of {}:", i + 1, secondary.len()));
        l.push(chain_text(chain));
        l.push(String::new());
    }
    match col.primary_chain() {
        Some(chain) => {
            l.push("\nFound primary backup chain with matching signature chain:".into());
            l.push(chain_text(chain));
        }
        None => l.push("No backup chains with active signatures found".into()),
    }
    let (orphaned, incomplete) = (col.orphaned_sets.len(), col.incomplete_sets.len());
    if orphaned > 0 || incomplete > 0 {
        l.push(format!(
            "Also found {orphaned} backup {} not part of any chain,",
            plural(orphaned, "set", "sets")
        ));
        l.push(format!(
            "and {incomplete} incomplete backup {}",
            plural(incomplete, "set.", "sets.")
        ));
        l.push("These may be deleted by running duplicity with the \"cleanup\" command.".into());
    } else {
        l.push("No orphaned or incomplete backup sets found.".into());
    }
    let mut s = l.join("\n");
    s.push('\n');
    s
}

/// duplicity's `str(BackupChain)`; the table columns are right-aligned to 20, 30 and 15.
fn chain_text(chain: &BackupChain) -> String {
    let row = |a: &str, b: &str, c: &str| format!("{a:>20}   {b:>30}   {c:>15}");
    let mut l = vec![
        "-------------------------".to_string(),
        format!("Chain start time: {}", asctime_local(chain.start)),
        format!("Chain end time: {}", asctime_local(chain.end)),
        format!("Number of contained backup sets: {}", chain.incs.len() + 1),
        format!("Total number of contained volumes: {}", chain.num_volumes()),
        row("Type of backup set:", "Time:", "Num volumes:"),
    ];
    for set in chain.sets() {
        let kind = if set.is_full() { "Full" } else { "Incremental" };
        l.push(row(
            kind,
            &asctime_local(set.time()),
            &set.num_volumes().to_string(),
        ));
    }
    l.push("-------------------------".into());
    l.join("\n")
}

/// The same facts as one JSON object.
pub fn render_json(col: &Collection, target: &str) -> String {
    let primary = col.primary_chain().map(|chain| {
        let sigs = col
            .primary_signatures()
            .map(|sc| sc.names(None))
            .unwrap_or_default();
        let mut c = chain_json(chain);
        c["signatures"] = sigs.into();
        c
    });
    json::line(&json!({
        "target": target,
        "last_full": json::opt_time(col.last_full_time()),
        "primary_chain": primary,
        "secondary_chains": col.secondary_chains().map(chain_json).collect::<Vec<_>>(),
        "orphaned_sets": col.orphaned_sets.iter().map(set_json).collect::<Vec<_>>(),
        "incomplete_sets": col.incomplete_sets.iter().map(set_json).collect::<Vec<_>>(),
        "orphaned_signatures": col.orphaned_sig_names,
        "conflicting_names": col.conflicts,
        "warnings": col.warnings(),
        "breaks": col.breaks.iter().map(|b| json!({
            "chain_start": json::time(b.chain_start),
            "chain_end": json::time(b.chain_end),
            "lost_from": json::time(b.lost_from),
            "missing": b.missing,
            "stranded": b.stranded,
        })).collect::<Vec<_>>(),
        "missing_volumes": col.missing_volumes.iter().map(|(t, v)| json!({
            "set": json::time(*t),
            "volumes": v,
        })).collect::<Vec<_>>(),
    }))
}

fn chain_json(chain: &BackupChain) -> Value {
    json!({
        "start": json::time(chain.start),
        "end": json::time(chain.end),
        "num_sets": chain.incs.len() + 1,
        "num_volumes": chain.num_volumes(),
        "sets": chain.sets().map(set_json).collect::<Vec<_>>(),
    })
}

fn set_json(set: &BackupSet) -> Value {
    let (kind, from) = match set.kind {
        SetKind::Full { .. } => ("full", Value::Null),
        SetKind::Inc { from, .. } => ("incremental", json::time(from)),
    };
    json!({
        "type": kind,
        "time": json::time(set.time()),
        "from": from,
        "num_volumes": set.num_volumes(),
        "encrypted": set.encrypted,
        "complete": set.is_complete(),
        "files": set.file_names(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::file::FileBackend;

    // Real names from a duplicity 0.8.22 target: two chains, an orphaned inc, an incomplete inc and
    // an orphaned new-signatures file (see the expected text, taken from duplicity's output).
    const NAMES: &[&str] = &[
        "duplicity-full-signatures.20261123T071245Z.sigtar.gz",
        "duplicity-full-signatures.20261123T071253Z.sigtar.gz",
        "duplicity-full.20261123T071245Z.manifest",
        "duplicity-full.20261123T071245Z.vol1.difftar.gz",
        "duplicity-full.20261123T071253Z.manifest",
        "duplicity-full.20261123T071253Z.vol1.difftar.gz",
        "duplicity-inc.20261123T071200Z.to.20261123T071201Z.manifest",
        "duplicity-inc.20261123T071200Z.to.20261123T071201Z.vol1.difftar.gz",
        "duplicity-inc.20261123T071245Z.to.20261123T071246Z.manifest",
        "duplicity-inc.20261123T071245Z.to.20261123T071246Z.vol1.difftar.gz",
        "duplicity-inc.20261123T071246Z.to.20261123T071250Z.vol1.difftar.gz",
        "duplicity-inc.20261123T071246Z.to.20261123T071250Z.vol2.difftar.gz",
        "duplicity-inc.20261123T071253Z.to.20261123T071254Z.manifest",
        "duplicity-inc.20261123T071253Z.to.20261123T071254Z.vol1.difftar.gz",
        "duplicity-new-signatures.20261123T071100Z.to.20261123T071101Z.sigtar.gz",
        "duplicity-new-signatures.20261123T071245Z.to.20261123T071246Z.sigtar.gz",
        "duplicity-new-signatures.20261123T071253Z.to.20261123T071254Z.sigtar.gz",
        "notduplicity.txt",
    ];

    fn backend_with(names: &[&str]) -> (tempfile::TempDir, Repository) {
        let dir = tempfile::tempdir().unwrap();
        for n in names {
            std::fs::write(dir.path().join(n), b"").unwrap();
        }
        let b = FileBackend::new(dir.path().to_path_buf());
        let mut c = crate::engine::repository::RepositoryConfig::new("file:///status-test");
        c.archive_dir = Some(dir.path().join("no-archive-dir"));
        (dir, Repository::with_backend(Box::new(b), c))
    }

    fn at(s: &str) -> String {
        asctime_local(crate::engine::timestr::parse_timestamp(s).unwrap())
    }

    #[test]
    fn text_matches_duplicity() {
        let (_dir, b) = backend_with(NAMES);
        let mut out = Vec::new();
        collection_status(&b, &mut out, false).unwrap();
        let (t45, t46, t53, t54) = (
            at("20261123T071245Z"),
            at("20261123T071246Z"),
            at("20261123T071253Z"),
            at("20261123T071254Z"),
        );
        let expected = format!(
            "Warning, found the following remote orphaned signature file:
duplicity-new-signatures.20261123T071100Z.to.20261123T071101Z.sigtar.gz
Warning, found incomplete backup sets, probably left from aborted session
Warning, found the following orphaned backup file:
[duplicity-inc.20261123T071200Z.to.20261123T071201Z.manifest, duplicity-inc.20261123T071200Z.to.20261123T071201Z.vol1.difftar.gz]
Last full backup date: {t53}
Collection Status
-----------------
Connecting with backend: {}

Found 1 secondary backup chain.
Secondary chain 1 of 1:
-------------------------
Chain start time: {t45}
Chain end time: {t46}
Number of contained backup sets: 2
Total number of contained volumes: 2
 Type of backup set:                            Time:      Num volumes:
                Full         {t45}                 1
         Incremental         {t46}                 1
-------------------------


Found primary backup chain with matching signature chain:
-------------------------
Chain start time: {t53}
Chain end time: {t54}
Number of contained backup sets: 2
Total number of contained volumes: 2
 Type of backup set:                            Time:      Num volumes:
                Full         {t53}                 1
         Incremental         {t54}                 1
-------------------------
Also found 1 backup set not part of any chain,
and 1 incomplete backup set.
These may be deleted by running duplicity with the \"cleanup\" command.
",
            b.describe()
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn empty_target_text() {
        let (_dir, b) = backend_with(&[]);
        let mut out = Vec::new();
        collection_status(&b, &mut out, false).unwrap();
        let expected = format!(
            "Last full backup date: none\nCollection Status\n-----------------\nConnecting with backend: {}\n\nFound 0 secondary backup chains.\nNo backup chains with active signatures found\nNo orphaned or incomplete backup sets found.\n",
            b.describe()
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn json_has_the_same_facts() {
        let (_dir, b) = backend_with(NAMES);
        let mut out = Vec::new();
        collection_status(&b, &mut out, true).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with('{') && s.ends_with("}\n"));
        let v: Value = serde_json::from_str(&s).expect("valid JSON");
        assert_eq!(
            v["last_full"],
            json!({"epoch": 1795417973, "utc": "20261123T071253Z"})
        );
        assert_eq!(
            v["primary_chain"]["signatures"],
            json!([
                "duplicity-full-signatures.20261123T071253Z.sigtar.gz",
                "duplicity-new-signatures.20261123T071253Z.to.20261123T071254Z.sigtar.gz"
            ])
        );
        assert_eq!(v["secondary_chains"][0]["start"]["epoch"], 1795417965);
        assert_eq!(v["incomplete_sets"][0]["type"], "incremental");
        let orphan = v["orphaned_signatures"][0].as_str().unwrap();
        assert!(orphan.starts_with("duplicity-new-signatures.20261123T071100Z"));
        assert_eq!(v["primary_chain"]["num_sets"], 2);
    }
}

#[cfg(test)]
mod change_tests {
    use super::*;

    fn ix(s: &str) -> Index {
        Index::parse(s.as_bytes()).unwrap()
    }

    fn sets() -> Vec<SetChanges> {
        vec![
            SetChanges {
                full: true,
                time: 1_000,
                files: vec![
                    (FileAction::New, ix("a.txt")),
                    (FileAction::New, ix("d/b c")),
                ],
            },
            SetChanges {
                full: false,
                time: 2_000,
                files: vec![
                    (FileAction::Changed, ix("a.txt")),
                    (FileAction::Deleted, ix("d/b c")),
                    (FileAction::New, ix("new")),
                ],
            },
        ]
    }

    #[test]
    fn file_changed_lists_each_set_that_names_the_file() {
        let t = file_changed_text(&ix("a.txt"), &sets());
        let want = format!(
            "-------------------------\nFile: a.txt\nTotal number of backup: 2\n Type of backup set:                            Time:  Type of file change:\n{:>20}   {:>30}  {:>20}\n{:>20}   {:>30}  {:>20}\n-------------------------\n",
            "Full",
            asctime_local(1_000),
            "New",
            "Incremental",
            asctime_local(2_000),
            "Changed"
        );
        assert_eq!(t, want);
        assert!(file_changed_text(&ix("nothere"), &sets()).contains("Total number of backup: 0\n"));
    }

    #[test]
    fn changes_in_set_counts_from_the_newest_and_quotes_paths() {
        // Byte for byte what duplicity 3.2.1 printed for the same two sets.
        let t = changes_in_set_text(&sets(), 0).unwrap();
        let want = format!(
            "-------------------------\n Backup set time: {}\nTotal number of changes: 3\nFile:       Type of file change:\na.txt                    changed\n\"d/b\\x20c\"               deleted\nnew                          new\n-------------------------\n",
            asctime_local(2_000)
        );
        assert_eq!(t, want);
        let t = changes_in_set_text(&sets(), 1).unwrap();
        assert!(t.contains("Total number of changes: 2\n"), "{t}");
        assert!(t.contains("\na.txt                        new\n"), "{t}");
        let e = changes_in_set_text(&sets(), 2).unwrap_err().to_string();
        assert!(e.contains("has 2 set(s)"), "{e}");
    }
}
