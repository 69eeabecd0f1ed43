#!/usr/bin/env bash
# The cargo-fuzz targets of fuzz/ (every parser of bytes that come from a backup target; README, "Fuzzing").
#
#   scripts/fuzz.sh [build|run|all] [TARGET...]     (default: all, every target)
#
# build: installs cargo-fuzz if missing (into ~/.cargo/bin) and builds every target (nightly, ASan,
#        debug assertions and overflow checks).
# run:   runs each TARGET for FUZZ_SECONDS (default 600) on its own, one after the other, starting from the
#        seeds in fuzz/corpus/TARGET (never written to; what the run finds goes to fuzz/target/corpus/TARGET).
#        A crash, panic, timeout or OOM stops that target, leaves its input in fuzz/artifacts/TARGET/
#        and makes the script fail at the end. FUZZ_NICE (default 19) is the nice level of the runs.
# all:   build, then run.
# Leak checks are off: librsync leaks a small struct when a signature fails to load (rs_loadsig_begin),
# and the sigtar reader's threads outlive an input; neither grows with the input.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-all}
case "$mode" in
    build | run | all) shift || true ;;
    *) mode=all ;;
esac
seconds=${FUZZ_SECONDS:-600}
# The nightly ASan build of every dependency costs ~40 CPU-minutes cold: CI keeps it in a cache dir
# (FUZZ_TARGET_DIR) so that only our crate is rebuilt.
target_dir=$(realpath -m "${FUZZ_TARGET_DIR:-fuzz/target}")
export CARGO_TARGET_DIR=$target_dir
nice_level=${FUZZ_NICE:-19}

all_targets=(openpgp_message openpgp_inner elgamal keybox volume_tar sigtar restore rsync_signature rdiff_patch manifest names url timestr)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

# Longest input per target: enough for the real seeds and a few more entries, small enough to stay fast.
max_len() {
    case "$1" in
        openpgp_message | openpgp_inner) echo 4096 ;;
        volume_tar | sigtar) echo 16384 ;;
        restore) echo 32768 ;;
        rsync_signature | rdiff_patch | manifest) echo 4096 ;;
        names | url | elgamal) echo 512 ;;
        keybox) echo 8192 ;;
        timestr) echo 128 ;;
        *) echo 4096 ;;
    esac
}

build() {
    if ! cargo +nightly --version >/dev/null 2>&1; then
        rustup toolchain install nightly --profile minimal
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        cargo install cargo-fuzz --locked
    fi
    # 16 codegen units: a much faster build for a slightly slower fuzzer.
    cargo +nightly fuzz build --codegen-units 16
}

run() {
    # Also at exit (LeakSanitizer runs then too); see above.
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
    local bin_dir=$target_dir/x86_64-unknown-linux-gnu/release failed=()
    mkdir -p "$target_dir/logs"
    for t in "${targets[@]}"; do
        [ -x "$bin_dir/$t" ] || { echo "fuzz: $bin_dir/$t is not built: run scripts/fuzz.sh build" >&2; exit 2; }
        local work=$target_dir/corpus/$t artifacts=fuzz/artifacts/$t log=$target_dir/logs/$t.log rc=0
        mkdir -p "$work" "$artifacts"
        echo "=== fuzz $t for ${seconds}s (max_len $(max_len "$t"); log $log)"
        local as=() restore_dir=
        if [ "$t" = restore ]; then
            restore_dir=$(mktemp -d /tmp/dc-fuzz-restore.XXXXXX)
            export FUZZ_RESTORE_DIR=$restore_dir
            if [ "$(id -u)" -eq 0 ]; then
                # restore writes real files: as root, a bug could write outside its directory with root's
                # rights. Run it as nobody, with its corpus, artifacts and restore directory nobody's.
                as=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
                chown -R nobody:nogroup "$work" "$artifacts" "$restore_dir"
            fi
        fi
        nice -n "$nice_level" "${as[@]}" "$bin_dir/$t" "$work" "fuzz/corpus/$t" \
            -max_total_time="$seconds" -max_len="$(max_len "$t")" -rss_limit_mb=2048 -timeout=25 \
            -print_final_stats=1 -artifact_prefix="$artifacts/" -detect_leaks=0 >"$log" 2>&1 || rc=$?
        [ -z "$restore_dir" ] || rm -rf "$restore_dir"
        grep -E '^#[0-9]+ +(INITED|DONE)|stat::number_of_executed_units' "$log" || true
        if [ "$rc" -ne 0 ]; then
            grep -E -A12 '^==[0-9]+==|panicked|^SUMMARY|Test unit written' "$log" | head -40 >&2 || true
            failed+=("$t")
        fi
    done
    if [ ${#failed[@]} -gt 0 ]; then
        echo "fuzz: FAILED: ${failed[*]} (inputs in fuzz/artifacts/; reproduce with $bin_dir/TARGET FILE)" >&2
        exit 1
    fi
    echo "fuzz: ${#targets[@]} target(s), ${seconds}s each: nothing found"
}

case "$mode" in
    build) build ;;
    run) run ;;
    all) build && run ;;
esac
