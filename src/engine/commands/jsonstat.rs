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
use crate::engine::archive::container::{self, ContainerWriter, Sealing};
use crate::engine::archive::names::{self, Storage};
use crate::engine::cache::Cache;
use crate::engine::collection::{BackupChain, BackupSet, SetKind};
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

/// duplicity 3's `BackupSet.get_jsonstat`: a set's statistics from its jsonstat file, the archive
/// dir's gzipped copy first, else the target's (decoded as its name says); an empty object when the
/// set has no jsonstat file.
pub fn read_set(
    backend: &dyn Backend,
    cache_dir: &Path,
    decryptor: &crate::engine::crypto::Decryptor,
    set: &BackupSet,
) -> Result<OrderedJson> {
    use std::io::Read;
    let Some(remote) = &set.jsonstat else {
        return Ok(OrderedJson::Object(Vec::new()));
    };
    let local = cache_dir.join(file_name(set.kind, Storage::Gzip));
    let mut text = String::new();
    if local.is_file() {
        flate2::read::GzDecoder::new(File::open(&local)?)
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read {}", local.display()))?;
    } else {
        let storage = names::parse_jsonstat(remote).map_or(Storage::Plain, |j| j.storage);
        let file = crate::engine::stored::fetch(backend, remote)?;
        container::decode(file, storage, decryptor)
            .and_then(|mut r| r.read_to_string(&mut text))
            .with_context(|| format!("cannot read the jsonstat file {remote}"))?;
    }
    serde_json::from_str(&text).with_context(|| format!("the jsonstat file {remote} is not JSON"))
}

/// duplicity 3's key for a set in `collection-status --show-changes-in-set N --jsonstat`:
/// `full-T` or `inc-T` (the set's end time).
pub fn set_key(set: &BackupSet) -> String {
    key_of(set.is_full(), set.time())
}

/// [`set_key`] from a set's kind and time (the full's time, or the incremental's end).
pub fn key_of(full: bool, time: i64) -> String {
    let kind = if full { "full" } else { "inc" };
    format!("{kind}-{}", timestr::format_timestamp(time))
}

/// One set of the primary chain for [`changes_in_set_json`]: its key ([`set_key`]), its statistics
/// ([`read_set`]) and the files its manifest lists as changed, as (path, "new"|"changed"|"deleted").
pub struct SetStats {
    pub key: String,
    pub stats: OrderedJson,
    pub files_changed: Vec<(String, String)>,
}

/// duplicity 3's `collection-status --show-changes-in-set N --jsonstat` (`get_changes_in_set_json`):
/// `sets` oldest first as the chain has them; `index` counts from the newest (0), None for every set
/// (duplicity's -1). Each set as `{"json_stat": …, "files_changed": {path: action}}`, printed as its
/// `json.dumps(…, indent=4)`.
pub fn changes_in_set_json(sets: &[SetStats], index: Option<usize>) -> Result<String> {
    let newest_first: Vec<&SetStats> = sets.iter().rev().collect();
    let chosen: Vec<&SetStats> = match index {
        None => newest_first,
        Some(n) => vec![*newest_first.get(n).with_context(|| {
            format!(
                "--show-changes-in-set {n}: the primary chain has {} set(s); give 0 (the newest) to {}",
                sets.len(),
                sets.len().saturating_sub(1)
            )
        })?],
    };
    let doc = OrderedJson::Object(
        chosen
            .into_iter()
            .map(|s| {
                let files = s
                    .files_changed
                    .iter()
                    .map(|(p, a)| (p.clone(), OrderedJson::String(a.clone())))
                    .collect();
                let body = OrderedJson::Object(vec![
                    ("json_stat".to_string(), s.stats.clone()),
                    ("files_changed".to_string(), OrderedJson::Object(files)),
                ]);
                (s.key.clone(), body)
            })
            .collect(),
    );
    Ok(python_json(&doc))
}

/// A JSON document with its objects' keys in the order read or built, as Python's `json` keeps them
/// (serde_json's `Value` sorts them).
#[derive(Debug, Clone, PartialEq)]
pub enum OrderedJson {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<OrderedJson>),
    Object(Vec<(String, OrderedJson)>),
}

impl Serialize for OrderedJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            OrderedJson::Null => s.serialize_unit(),
            OrderedJson::Bool(b) => s.serialize_bool(*b),
            OrderedJson::Number(n) => n.serialize(s),
            OrderedJson::String(t) => s.serialize_str(t),
            OrderedJson::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for x in a {
                    seq.serialize_element(x)?;
                }
                seq.end()
            }
            OrderedJson::Object(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for OrderedJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OrderedJson;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Null)
            }
            fn visit_none<E>(self) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Number(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Number(n.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<OrderedJson, E> {
                serde_json::Number::from_f64(n)
                    .map(OrderedJson::Number)
                    .ok_or_else(|| E::custom("a number JSON cannot hold"))
            }
            fn visit_str<E>(self, t: &str) -> Result<OrderedJson, E> {
                Ok(OrderedJson::String(t.to_string()))
            }
            fn visit_string<E>(self, t: String) -> Result<OrderedJson, E> {
                Ok(OrderedJson::String(t))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<OrderedJson, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(OrderedJson::Array(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<OrderedJson, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = a.next_entry()? {
                    v.push((k, x));
                }
                Ok(OrderedJson::Object(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl OrderedJson {
    /// The value of `key` in an object.
    pub fn get(&self, key: &str) -> Option<&OrderedJson> {
        match self {
            OrderedJson::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// JSON as Python's `json.dumps(obj, indent=4)` writes it: keys in their order, 4-space indent and
/// every character outside ASCII escaped (`\u00fc`, surrogate pairs above the BMP), so the text matches
/// duplicity 3's.
pub fn python_json(v: &OrderedJson) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    v.serialize(&mut ser).expect("plain data serializes");
    let text = String::from_utf8(out).expect("serde_json writes UTF-8");
    let mut ascii = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    ascii
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

    #[test]
    fn python_json_escapes_as_json_dumps() {
        let text = r#"{"full-20261206T032728Z": {"json_stat": {"Filename": null, "StartTime": 1.5, "Errors": 0}, "files_changed": {"naïve ü.txt": "new", "😀": "deleted"}}}"#;
        let v: OrderedJson = serde_json::from_str(text).unwrap();
        let out = python_json(&v);
        assert!(out.is_ascii(), "{out}");
        assert!(
            out.contains("\"na\\u00efve \\u00fc.txt\": \"new\""),
            "{out}"
        );
        assert!(out.contains("\"\\ud83d\\ude00\": \"deleted\""), "{out}");
        // Keys in the order read (json_stat first; Filename before StartTime), as Python keeps them.
        assert!(
            out.contains("{\n    \"full-20261206T032728Z\": {\n        \"json_stat\": {\n            \"Filename\": null,\n            \"StartTime\": 1.5,\n"),
            "{out}"
        );
        let back: OrderedJson = serde_json::from_str(&out).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn changes_in_set_json_newest_first_as_duplicity_3() {
        let set = |key: &str, errors: u64, files: &[(&str, &str)]| SetStats {
            key: key.to_string(),
            stats: OrderedJson::Object(vec![("Errors".into(), OrderedJson::Number(errors.into()))]),
            files_changed: files
                .iter()
                .map(|(p, a)| (p.to_string(), a.to_string()))
                .collect(),
        };
        let sets = [
            set("full-20261206T000000Z", 0, &[("a", "new")]),
            set(
                "inc-20261207T000000Z",
                1,
                &[("a", "changed"), ("b", "deleted")],
            ),
        ];
        let one = changes_in_set_json(&sets, Some(0)).unwrap();
        assert_eq!(
            one,
            "{\n    \"inc-20261207T000000Z\": {\n        \"json_stat\": {\n            \"Errors\": 1\n        },\n        \"files_changed\": {\n            \"a\": \"changed\",\n            \"b\": \"deleted\"\n        }\n    }\n}"
        );
        let all = changes_in_set_json(&sets, None).unwrap();
        assert!(
            all.find("inc-2026").unwrap() < all.find("full-2026").unwrap(),
            "{all}"
        );
        let err = changes_in_set_json(&sets, Some(2)).unwrap_err().to_string();
        assert!(err.contains("has 2 set(s)"), "{err}");
    }
}
