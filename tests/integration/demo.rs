//! The README's `make demo` stays true: run `scripts/demo.sh` against the binary cargo built for the tests.

use crate::support::*;
use std::process::Command;

#[test]
fn demo_script_runs() {
    let ws = Ws::new("demo");
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("scripts/demo.sh"))
        .current_dir(repo_root())
        .env("DUPLICITY_CHARM_BIN", ours_bin())
        .env("DEMO_DIR", ws.p("demo"));
    ws.env(&mut cmd);
    let r = run_cmd(cmd, "bash scripts/demo.sh").ok();
    assert!(
        r.stdout.contains("demo: OK"),
        "demo did not report success:\n{}",
        r.output()
    );
}
