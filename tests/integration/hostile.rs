//! A hand-built hostile archive (what a compromised or corrupted repository could hold): entries that
//! climb out with `..`, an absolute path, and a file written through a symlink the archive itself
//! restored. Restore must write nothing outside DST.

use crate::support::*;
use sha1::Digest;
use std::fs;
use std::io::Write;

struct Entry {
    name: Vec<u8>,
    kind: tar::EntryType,
    mode: u32,
    data: Vec<u8>,
    link: Vec<u8>,
}

fn entry(name: &[u8], kind: tar::EntryType, mode: u32, data: &[u8], link: &[u8]) -> Entry {
    Entry {
        name: name.to_vec(),
        kind,
        mode,
        data: data.to_vec(),
        link: link.to_vec(),
    }
}

fn pad(out: &mut Vec<u8>) {
    let r = out.len() % 512;
    if r != 0 {
        out.resize(out.len() + 512 - r, 0);
    }
}

/// One pax record `"<len> key=value\n"`, where len counts the whole record.
fn pax_record(key: &str, val: &[u8]) -> Vec<u8> {
    let body = key.len() + val.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(val);
    r.push(b'\n');
    r
}

fn header(name: &[u8], kind: tar::EntryType, mode: u32, size: u64, link: &[u8]) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    {
        let u = h.as_ustar_mut().unwrap();
        let n = name.len().min(99);
        u.name[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(99);
        u.linkname[..l].copy_from_slice(&link[..l]);
    }
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(size);
    h.set_cksum();
    h
}

/// A raw pax tar (names are taken as given, no normalisation), as Python's tarfile would write it.
fn raw_tar(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        if e.name.len() > 99 || e.link.len() > 99 {
            let mut pax = Vec::new();
            if e.name.len() > 99 {
                pax.extend(pax_record("path", &e.name));
            }
            if e.link.len() > 99 {
                pax.extend(pax_record("linkpath", &e.link));
            }
            let h = header(
                b"././@PaxHeader",
                tar::EntryType::XHeader,
                0o644,
                pax.len() as u64,
                b"",
            );
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(&pax);
            pad(&mut out);
        }
        let h = header(&e.name, e.kind, e.mode, e.data.len() as u64, &e.link);
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&e.data);
        pad(&mut out);
    }
    out
}

#[test]
fn hostile_archive_stays_inside_dst() {
    let ws = Ws::new("hostile");
    let outside = ws.p("outside");
    fs::create_dir_all(&outside).unwrap();
    let abs_target = ws.p("abs-evil");
    let abs_str = abs_target.to_str().unwrap().as_bytes();
    let outside_str = outside.to_str().unwrap().as_bytes();

    let mut abs_name = b"snapshot/".to_vec();
    abs_name.extend_from_slice(abs_str); // "snapshot//tmp/.../abs-evil"
    let dir = tar::EntryType::Directory;
    let reg = tar::EntryType::Regular;
    let entries = vec![
        entry(b"snapshot/./", dir, 0o755, b"", b""),
        entry(b"snapshot/../evil", reg, 0o644, b"climbed out\n", b""),
        entry(&abs_name, reg, 0o644, b"absolute\n", b""),
        entry(
            b"snapshot/link",
            tar::EntryType::Symlink,
            0o777,
            b"",
            outside_str,
        ),
        entry(b"snapshot/link/x", reg, 0o644, b"through the link\n", b""),
        entry(b"snapshot/ok.txt", reg, 0o644, b"ok\n", b""),
    ];
    let tar = raw_tar(&entries);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&tar).unwrap();
    let vol = gz.finish().unwrap();

    let repo = ws.p("repo");
    fs::create_dir_all(&repo).unwrap();
    let st = stamp(t(0));
    fs::write(
        repo.join(format!("duplicity-full.{st}.vol1.difftar.gz")),
        &vol,
    )
    .unwrap();
    let manifest = format!(
        "Hostname evil\nLocaldir src\nVolume 1:\n    StartingPath   .  \n    EndingPath     ok.txt  \n    Hash SHA1 {}\nFilelist 0\n",
        hex::encode(sha1::Sha1::digest(&vol))
    );
    fs::write(repo.join(format!("duplicity-full.{st}.manifest")), manifest).unwrap();

    let dst = ws.p("dst");
    let r = ws.restore_try(Tool::Ours, Enc::Plain, "repo", &dst, None, &[]);
    let report = format!("exit {:?}\n{}", r.code, r.output());

    // Either a clear refusal, or a restore of the benign entry with the hostile ones left out:
    // a tool that does nothing and exits 0 does not pass.
    if r.success() {
        assert_eq!(
            fs::read(dst.join("ok.txt")).ok().as_deref(),
            Some(&b"ok\n"[..]),
            "restore exited 0 but did not restore the benign entry ok.txt\n{report}"
        );
    } else {
        assert!(
            !r.stderr.trim().is_empty(),
            "restore failed without a message\n{report}"
        );
    }

    assert!(
        !ws.p("evil").exists(),
        "`snapshot/../evil` was written outside DST\n{report}"
    );
    assert!(
        !abs_target.exists(),
        "`snapshot//abs` was written to an absolute path\n{report}"
    );
    let through: Vec<_> = fs::read_dir(&outside).unwrap().collect();
    assert!(
        through.is_empty(),
        "a file was written through the restored symlink into {}\n{report}",
        outside.display()
    );
    // Nothing new beside DST in the workspace either.
    let mut names: Vec<String> = fs::read_dir(ws.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in &names {
        assert!(
            [
                "home",
                "tmp",
                "gnupg",
                "outside",
                "repo",
                "dst",
                "cache-ours"
            ]
            .contains(&n.as_str()),
            "unexpected `{n}` outside DST after the restore\n{report}"
        );
    }
}

/// The hand-built volume format is valid: stock duplicity restores a benign entry from the same kind of
/// archive (so the hostile test fails for the hostile entries, not for a malformed file).
#[test]
fn harness_hand_built_archive_is_readable_by_duplicity() {
    let ws = Ws::new("handmade");
    let reg = tar::EntryType::Regular;
    let long = format!("snapshot/{}", "n".repeat(120));
    let entries = vec![
        entry(b"snapshot/./", tar::EntryType::Directory, 0o755, b"", b""),
        entry(long.as_bytes(), reg, 0o600, b"long name\n", b""),
        entry(b"snapshot/ok.txt", reg, 0o644, b"ok\n", b""),
    ];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&raw_tar(&entries)).unwrap();
    let vol = gz.finish().unwrap();
    let repo = ws.p("repo");
    fs::create_dir_all(&repo).unwrap();
    let st = stamp(t(0));
    fs::write(
        repo.join(format!("duplicity-full.{st}.vol1.difftar.gz")),
        &vol,
    )
    .unwrap();
    let manifest = format!(
        "Volume 1:\n    StartingPath   .  \n    EndingPath     ok.txt  \n    Hash SHA1 {}\n",
        hex::encode(sha1::Sha1::digest(&vol))
    );
    fs::write(repo.join(format!("duplicity-full.{st}.manifest")), manifest).unwrap();
    let out = ws.p("out");
    ws.restore(Tool::Duplicity, Enc::Plain, "repo", &out, None, &[]);
    assert_eq!(fs::read(out.join("ok.txt")).unwrap(), b"ok\n");
    assert_eq!(fs::read(out.join("n".repeat(120))).unwrap(), b"long name\n");
}
