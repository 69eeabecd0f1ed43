//! Interop over the network (issue 5, item 9): stock duplicity 0.8.22 backs up over sftp:// (paramiko)
//! and ftp:// (lftp) and we restore, and the other way round, each a full plus an incremental.
//! duplicity 0.8's ftp backend cannot create a new directory (lftp `mkdir -p dir/` answers 550 on
//! the second MKD), so its ftp target directory is made beforehand.

use std::path::Path;

use crate::backend_conformance::{ftp_target, sftp_target, Target};
use crate::support::*;

/// `writer` backs up `src` (full at t(0), incremental at t(1)) to the target, `reader` restores the
/// latest state; the trees must match.
fn two_tools(target: Target, writer: Tool, reader: Tool) {
    let src = target.ws.p("src");
    build_sample(&src);
    let src_s = src.to_str().unwrap();
    let (t0, t1) = (t(0).to_string(), t(1).to_string());
    target
        .run_tool(writer, &["full", "--current-time", &t0, src_s, &target.url])
        .ok();
    mutate(&src, 1);
    target
        .run_tool(
            writer,
            &["incremental", "--current-time", &t1, src_s, &target.url],
        )
        .ok();
    let dst = target.ws.p("restored");
    target
        .run_tool(reader, &["restore", &target.url, dst.to_str().unwrap()])
        .ok();
    assert_same_tree(
        &src,
        &dst,
        &format!("{writer:?} wrote, {reader:?} restored"),
    );
}

#[test]
fn sftp_duplicity_backs_up_we_restore() {
    two_tools(sftp_target(), Tool::Duplicity, Tool::Ours);
}

#[test]
fn sftp_we_back_up_duplicity_restores() {
    two_tools(sftp_target(), Tool::Ours, Tool::Duplicity);
}

/// An ftp target whose directory exists already (all duplicity 0.8's lftp backend can use).
fn ftp_target_made() -> Target {
    let target = ftp_target();
    let rel = target
        .url
        .split_once(&format!(":{}/", server("FTP_PORT")))
        .expect("ftp URL with a port")
        .1;
    std::fs::create_dir_all(Path::new(server("FTP_ROOT")).join(rel)).unwrap();
    target
}

#[test]
fn ftp_duplicity_backs_up_we_restore() {
    two_tools(ftp_target_made(), Tool::Duplicity, Tool::Ours);
}

#[test]
fn ftp_we_back_up_duplicity_restores() {
    two_tools(ftp_target_made(), Tool::Ours, Tool::Duplicity);
}
