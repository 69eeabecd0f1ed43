#!/usr/bin/env bash
# Benchmark: duplicity 0.8.22 vs duplicity-charm (release build) on a ~1 GiB mixed dataset (full, incremental
# after a ~1% change, restore) and on 200,000 files of 1 KiB (full, no-change incremental).
# Prints a table with ratios and writes bench/results.md (not committed). Not part of the tests.
#   bench/run.sh [--quick]    --quick: a 10x smaller dataset, to check the script itself
#   BENCH_RUNS=3              runs per measure (medians)
#   BENCH_DIR=/var/tmp/duplicity-charm-bench   datasets (kept between runs) and work dirs; ~11 GiB free needed
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=()
for a in "$@"; do
    case "$a" in
        --quick) QUICK=(--quick) ;;
        *) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
    esac
done
RUNS=${BENCH_RUNS:-3}
DIR=${BENCH_DIR:-/var/tmp/duplicity-charm-bench}

bash scripts/setup-deps.sh
echo "bench: cargo build --release"
cargo build --release --locked --bin duplicity-charm
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/duplicity-charm"
[ -x "$BIN" ] || { echo "bench: no binary at $BIN" >&2; exit 1; }

mkdir -p "$DIR"
avail_kib=$(df -Pk "$DIR" | awk 'NR==2 {print $4}')
need_kib=$(( ${#QUICK[@]} ? 1500000 : 11000000 ))
[ "$avail_kib" -ge "$need_kib" ] || { echo "bench: need $((need_kib / 1024)) MiB free in $DIR, have $((avail_kib / 1024))" >&2; exit 1; }

exec python3 bench/bench.py --bin "$BIN" --dir "$DIR" --runs "$RUNS" "${QUICK[@]}" --out bench/results.md
