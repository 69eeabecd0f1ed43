//! duplicity 3's `--jsonstat`: after a backup, its statistics as JSON in a file of their own beside the
//! set (`duplicity-full.T.jsonstat.gz|.gpg`, `duplicity-inc.T1.to.T2.jsonstat…`), sealed as the set's
//! signatures are, with a gzipped copy in the archive dir; the same text is printed. The keys, their
//! order and layout (4-space indent) are duplicity 3.2.1's (its `statistics.get_stats_json`), including
//! its quirks: `Filename` and `TotalDestinationSizeChange` are null (it renders the JSON before it
//! knows the bytes written), and `backup_meta` describes the chain as it was before this set, except
//! for a full, whose chain is itself.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::backend::Backend;
use crate::engine::archive::container::{ContainerWriter, Sealing};
use crate::engine::archive::names::Storage;
use crate::engine::cache::Cache;
use crate::engine::collection::{BackupChain, SetKind};
use crate::engine::commands::backup::BackupStats;
use crate::engine::timestr;

/// What `--jsonstat` records besides the statistics: the target and source as typed.
#[derive(Debug, Clone, Default)]
pub struct JsonStatRequest {
    pub target: String,
    pub source: String,
}

#[allow(non_snake_case)] // duplicity's key names
#[derive(Serialize)]
struct JsonStat<'a> {
    Filename: Option<&'a str>,
    StartTime: f64,
    EndTime: f64,
    ElapsedTime: f64,
    Errors: u64,
    TotalDestinationSizeChange: Option<u64>,
    SourceFiles: u64,
    SourceFileSize: u64,
    NewFiles: u64,
    NewFileSize: u64,
    DeletedFiles: u64,
    ChangedFiles: u64,
    ChangedFileSize: u64,
    ChangedDeltaSize: u64,
    DeltaEntries: u64,
    RawDeltaSize: u64,
    StartTime_str: String,
    EndTime_str: String,
    backup_meta: BackupMeta<'a>,
}

#[derive(Serialize)]
struct BackupMeta<'a> {
    action: &'static str,
    skipped_inc: bool,
    time_full_bkp: i64,
    time_full_bkp_str: String,
    no_of_inc: usize,
    /// duplicity's `--concurrency` (0: uploads in line), which we do not have as an option.
    concurrency: u32,
    target: &'a str,
    source: &'a str,
    /// The archive dir's jsonstat file of each set of the chain before this one ("N/A" where none).
    local_json_stat: Vec<String>,
}

/// The name of a set's jsonstat file: `duplicity-full.T.jsonstat` or `duplicity-inc.T1.to.T2.jsonstat`,
/// then `.gz` or `.gpg` as stored.
pub fn file_name(kind: SetKind, storage: Storage) -> String {
    let ts = timestr::format_timestamp;
    let body = match kind {
        SetKind::Full { time } => format!("duplicity-full.{}.jsonstat", ts(time)),
        SetKind::Inc { from, to } => {
            format!("duplicity-inc.{}.to.{}.jsonstat", ts(from), ts(to))
        }
    };
    let suffix = match storage {
        Storage::Plain => "",
        Storage::Gzip => ".gz",
        Storage::Gpg => ".gpg",
    };
    format!("{body}{suffix}")
}

/// The JSON text of a backup's statistics. `continued` is the chain an incremental continues (None for
/// a full, which starts its own at `set`).
pub fn render(
    stats: &BackupStats,
    set: SetKind,
    continued: Option<&BackupChain>,
    cache: Option<&Cache>,
    request: &JsonStatRequest,
) -> String {
    let (action, full_time, incs, local) = match (set, continued) {
        (SetKind::Inc { .. }, Some(chain)) => {
            let local = chain
                .sets()
                .map(|s| {
                    let name = file_name(s.kind, Storage::Gzip);
                    match cache {
                        Some(c) if c.path(&name).is_file() => name,
                        _ => "N/A".to_string(),
                    }
                })
                .collect();
            ("inc", chain.full.time(), chain.incs.len(), local)
        }
        (SetKind::Full { time }, _) | (SetKind::Inc { to: time, .. }, None) => {
            ("full", time, 0, vec!["N/A".to_string()])
        }
    };
    let text = |t: f64| timestr::format_timestamp(t.floor() as i64);
    let doc = JsonStat {
        Filename: None,
        StartTime: stats.start_time,
        EndTime: stats.end_time,
        ElapsedTime: stats.end_time - stats.start_time,
        Errors: stats.errors,
        TotalDestinationSizeChange: None,
        SourceFiles: stats.source_files,
        SourceFileSize: stats.source_file_size,
        NewFiles: stats.new_files,
        NewFileSize: stats.new_file_size,
        DeletedFiles: stats.deleted_files,
        ChangedFiles: stats.changed_files,
        ChangedFileSize: stats.changed_file_size,
        ChangedDeltaSize: stats.changed_delta_size,
        DeltaEntries: stats.delta_entries,
        RawDeltaSize: stats.raw_delta_size,
        StartTime_str: text(stats.start_time),
        EndTime_str: text(stats.end_time),
        backup_meta: BackupMeta {
            action,
            skipped_inc: stats.skipped,
            time_full_bkp: full_time,
            time_full_bkp_str: timestr::format_timestamp(full_time),
            no_of_inc: incs,
            concurrency: 0,
            target: &request.target,
            source: &request.source,
            local_json_stat: local,
        },
    };
    // Python's json.dumps(indent=4): the same layout as serde_json's pretty printer with 4 spaces.
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    doc.serialize(&mut ser).expect("plain data serializes");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Stores the JSON beside the set (sealed as `sealing` says) and its gzipped copy in the archive dir
/// (when there is one).
pub fn store(
    backend: &dyn Backend,
    cache: Option<&Cache>,
    sealing: Sealing,
    set: SetKind,
    json: &str,
    work: &Path,
) -> Result<()> {
    let path = work.join("jsonstat");
    let mut w = ContainerWriter::new(File::create(&path)?, sealing)?;
    w.write_all(json.as_bytes())?;
    w.finish()?;
    let name = file_name(set, sealing.storage());
    backend
        .put_move(&path, &name)
        .with_context(|| format!("cannot upload {name}"))?;
    if let Some(cache) = cache {
        let local = work.join("jsonstat.gz");
        let mut w = ContainerWriter::new(File::create(&local)?, Sealing::Gzip(6))?;
        w.write_all(json.as_bytes())?;
        w.finish()?;
        cache.store_file(&local, &file_name(set, Storage::Gzip))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_duplicity_3_2_1_order_with_its_nulls() {
        let stats = BackupStats {
            start_time: 1796527648.5,
            end_time: 1796527649.75,
            source_files: 3,
            ..Default::default()
        };
        let req = JsonStatRequest {
            target: "file:///t".into(),
            source: "src".into(),
        };
        let json = render(&stats, SetKind::Full { time: 1796527648 }, None, None, &req);
        let keys: Vec<&str> = json
            .lines()
            .filter(|l| l.starts_with("    \"") && !l.starts_with("        "))
            .map(|l| l.trim().split('"').nth(1).unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "Filename",
                "StartTime",
                "EndTime",
                "ElapsedTime",
                "Errors",
                "TotalDestinationSizeChange",
                "SourceFiles",
                "SourceFileSize",
                "NewFiles",
                "NewFileSize",
                "DeletedFiles",
                "ChangedFiles",
                "ChangedFileSize",
                "ChangedDeltaSize",
                "DeltaEntries",
                "RawDeltaSize",
                "StartTime_str",
                "EndTime_str",
                "backup_meta"
            ]
        );
        assert!(json.contains("\n    \"Filename\": null,\n"), "{json}");
        assert!(json.contains("\"ElapsedTime\": 1.25,"), "{json}");
        assert!(
            json.contains("\"StartTime_str\": \"20261206T032728Z\""),
            "{json}"
        );
        assert!(
            json.contains("\"local_json_stat\": [\n            \"N/A\"\n        ]"),
            "{json}"
        );
        assert_eq!(
            file_name(
                SetKind::Inc {
                    from: 1796527648,
                    to: 1796527649
                },
                Storage::Gpg
            ),
            "duplicity-inc.20261206T032728Z.to.20261206T032729Z.jsonstat.gpg"
        );
    }
}
