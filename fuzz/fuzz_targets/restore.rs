//! A whole restore from a file:// target holding a full set (and an incremental) whose plain volumes are
//! the input: restore's volume reader and applier (entry names, headers, multivol chunks reassembled
//! across entries, deltas patched onto what the full restored, directories, symlinks, fifos and devices
//! put back, metadata applied). The first two bytes give the length of the full's volume; the rest is the
//! incremental's, if any. The manifests are made to match (right SHA1s), so the volumes are read.
//!
//! It writes real files: run it as an unprivileged user in a directory of its own (scripts/fuzz.sh runs
//! it under `setpriv` as nobody when started as root, in FUZZ_RESTORE_DIR or a fresh /tmp directory).
#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use duplicity_charm::backend::file::FileBackend;
use duplicity_charm::engine::archive::container;
use duplicity_charm::engine::commands::restore::RestoreOptions;
use duplicity_charm::engine::repository::{Encryption, Repository, RepositoryConfig};
use libfuzzer_sys::fuzz_target;

const FULL: &str = "duplicity-full.20240101T000000Z";
const INC: &str = "duplicity-inc.20240101T000000Z.to.20240102T000000Z";

fn work_dir() -> &'static Path {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let base = std::env::var_os("FUZZ_RESTORE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let d = base.join(format!("dc-fuzz-restore.{}", std::process::id()));
        fs::create_dir_all(&d).expect("work dir");
        d
    })
}

/// Stores `volume` as volume 1 of the set `set` with a manifest that lists it (bounds: everything).
fn store_set(remote: &Path, set: &str, volume: &[u8]) {
    let vol = remote.join(format!("{set}.vol1.difftar"));
    fs::write(&vol, volume).expect("volume");
    let sha1 = container::sha1_of(&mut fs::File::open(&vol).expect("volume")).expect("sha1");
    let manifest = format!(
        "Hostname fuzz\nLocaldir src\nVolume 1:\n    StartingPath   .\n    EndingPath     \"\\xff\"\n    Hash SHA1 {sha1}\nFilelist 0\n"
    );
    fs::write(remote.join(format!("{set}.manifest")), manifest).expect("manifest");
}

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let split = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (full, inc) = rest.split_at(split);
    let dir = work_dir();
    let (remote, target) = (dir.join("remote"), dir.join("out"));
    let _ = fs::remove_dir_all(&remote);
    let _ = fs::remove_dir_all(&target);
    fs::create_dir_all(&remote).expect("remote dir");
    store_set(&remote, FULL, full);
    if !inc.is_empty() {
        store_set(&remote, INC, inc);
    }
    let opts = RestoreOptions {
        target: target.clone(),
        time: 4_000_000_000,
        path: None,
        force: false,
        progress: None,
        selection: None,
        ignore_errors: false,
        restore_ownership: true,
        numeric_owner: false,
        rename: Vec::new(),
    };
    let mut config = RepositoryConfig::new(format!("file://{}", remote.display()));
    config.keys.encryption = Encryption::None;
    config.archive_dir = Some(dir.join("cache"));
    let repo = Repository::with_backend(Box::new(FileBackend::new(remote)), config);
    let _ = repo.restore(&opts);
});
