//! `collection-status` of a chain made by stock duplicity, human and `--json`.

use crate::support::*;

#[test]
fn collection_status_of_duplicity_chain() {
    let ws = Ws::new("status");
    let src = ws.p("src");
    let enc = Enc::Pass(PASS);
    build_sample(&src);
    ws.backup(Tool::Duplicity, "full", enc, &src, "repo", t(0), &[]);
    mutate(&src, 1);
    ws.backup(Tool::Duplicity, "incremental", enc, &src, "repo", t(1), &[]);
    mutate(&src, 2);
    ws.backup(Tool::Duplicity, "incremental", enc, &src, "repo", t(2), &[]);

    let r = ws
        .run(Tool::Ours, enc, &["collection-status", &ws.url("repo")])
        .ok();
    let text = r.stdout.to_lowercase();
    assert!(text.contains("full"), "no full set listed:\n{}", r.output());
    assert_eq!(
        text.matches("incremental").count(),
        2,
        "want 2 incrementals listed:\n{}",
        r.output()
    );

    let j = ws
        .run(
            Tool::Ours,
            enc,
            &["collection-status", "--json", &ws.url("repo")],
        )
        .ok();
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap_or_else(|e| {
        panic!(
            "collection-status --json is not JSON ({e}):\n{}",
            j.output()
        )
    });
    let flat = v.to_string();
    for k in 0..3 {
        let (epoch, st) = (t(k).to_string(), stamp(t(k)));
        let iso = chrono::DateTime::from_timestamp(t(k), 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string();
        assert!(
            flat.contains(&epoch) || flat.contains(&st) || flat.contains(&iso),
            "set time {st} ({epoch}) not in the JSON:\n{flat}"
        );
    }
}
