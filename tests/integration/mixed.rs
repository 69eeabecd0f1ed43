//! Mixed chains: sets of one chain written alternately by duplicity and by us (traps 9, 10 and 12), then
//! restored by both tools and checked with duplicity's own `collection-status`.

use crate::chains::check_chain_names;
use crate::support::*;

/// full by `writers[0]`, then two incrementals by `writers[1]` and `writers[2]`; both tools restore the
/// latest state and the state at t(1)+50; duplicity must see one chain of 3 sets and nothing orphaned.
fn mixed_chain(name: &str, writers: [Tool; 3], enc: Enc, shared_cache: bool) {
    let mut ws = Ws::new(name);
    if shared_cache {
        ws = ws.share_cache();
    }
    let src = ws.p("src");
    build_sample(&src);
    ws.backup(writers[0], "full", enc, &src, "repo", t(0), &[]);
    mutate(&src, 1);
    ws.backup(writers[1], "incremental", enc, &src, "repo", t(1), &[]);
    mutate(&src, 2);
    ws.backup(writers[2], "incremental", enc, &src, "repo", t(2), &[]);
    check_chain_names(&ws, "repo", enc, &[t(0), t(1), t(2)], false);

    let st = ws
        .run(
            Tool::Duplicity,
            enc,
            &["collection-status", &ws.url("repo")],
        )
        .ok();
    assert!(
        st.stdout.contains("Number of contained backup sets: 3"),
        "duplicity does not see one chain of 3 sets:\n{}",
        st.output()
    );
    for good in [
        "Found 0 secondary backup chains.",
        "No orphaned or incomplete backup sets found.",
    ] {
        assert!(
            st.stdout.contains(good),
            "duplicity collection-status lacks `{good}`:\n{}",
            st.output()
        );
    }

    sample_at(&ws.p("expect1"), 1);
    for reader in [Tool::Duplicity, Tool::Ours] {
        let latest = ws.p(&format!("latest-{reader:?}"));
        ws.restore(reader, enc, "repo", &latest, None, &[]);
        assert_same_tree(
            &src,
            &latest,
            &format!("{writers:?} chain, {reader:?} restore of the latest set"),
        );
        let at1 = ws.p(&format!("at1-{reader:?}"));
        ws.restore(reader, enc, "repo", &at1, Some(t(1) + 50), &[]);
        assert_same_tree(
            &ws.p("expect1"),
            &at1,
            &format!("{writers:?} chain, {reader:?} restore -t t1+50"),
        );
    }
}

#[test]
fn mixed_duplicity_full_then_ours_inc_then_duplicity_inc() {
    mixed_chain(
        "mix-dod",
        [Tool::Duplicity, Tool::Ours, Tool::Duplicity],
        Enc::Pass(PASS),
        true,
    );
}

#[test]
fn mixed_ours_full_then_duplicity_inc_then_ours_inc() {
    mixed_chain(
        "mix-odo",
        [Tool::Ours, Tool::Duplicity, Tool::Ours],
        Enc::Pass(PASS),
        true,
    );
}

/// Each tool with its own cache: each must fetch the other's manifests and signatures from the remote.
#[test]
fn mixed_duplicity_full_then_ours_inc_separate_caches() {
    mixed_chain(
        "mix-dod-sep",
        [Tool::Duplicity, Tool::Ours, Tool::Duplicity],
        Enc::Plain,
        false,
    );
}

#[test]
fn mixed_ours_full_then_duplicity_inc_separate_caches() {
    mixed_chain(
        "mix-odo-sep",
        [Tool::Ours, Tool::Duplicity, Tool::Ours],
        Enc::Plain,
        false,
    );
}
