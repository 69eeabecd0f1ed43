#!/usr/bin/env bash
# Benchmark (issue 15): duplicity-charm (release build) vs duplicity 0.8.22, restic 0.14 and borg 1.2.4, side by
# side on one dataset: full / incremental (~1%) / restore of the chain to a file target, full + restore over SFTP
# (loopback sshd) and S3 (loopback moto), and 200,000 files of 1 KiB (full, no-change incremental). Encryption
# on for every tool; each restore into a fresh loop-mounted ext4. Prints wall / CPU / peak-RSS tables and the
# ratios against issue 15's targets, and writes bench/results.md (not committed). Not part of the tests.
# Needs root (apt-get, mount -o loop, the test servers' SSH user).
#   bench/run.sh [--quick]    --quick: a 10x smaller dataset, to check the script itself
#   BENCH_RUNS=3              runs per measure (medians)
#   BENCH_DIR=/var/tmp/duplicity-charm-bench   datasets (kept between runs), work dirs and the restore images
#   BENCH_ONLY=job,job        a subset: full,incr,restore,sftp_full,sftp_restore,s3_full,s3_restore,
#                             small_full,small_incr (default: all)
#   BENCH_TOOLS=ours,restic   a subset of ours,duplicity,restic,borg (default: all; ours always)
#   BENCH_BIN=path            use this binary instead of building a release one (e.g. target/debug/... to
#                             check the script; its timings then mean nothing)
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=()
for a in "$@"; do
    case "$a" in
        --quick) QUICK=(--quick) ;;
        *) echo "usage: bench/run.sh [--quick]   (env: BENCH_RUNS BENCH_DIR BENCH_ONLY BENCH_TOOLS BENCH_BIN)" >&2; exit 2 ;;
    esac
done
RUNS=${BENCH_RUNS:-3}
DIR=${BENCH_DIR:-/var/tmp/duplicity-charm-bench}
ONLY=${BENCH_ONLY:-}
TOOLS=${BENCH_TOOLS:-ours,duplicity,restic,borg}
[ "$(id -u)" = 0 ] || { echo "bench: needs root (apt-get, mount -o loop, test servers)" >&2; exit 1; }

bash scripts/setup-deps.sh
missing=()
for p in restic borgbackup e2fsprogs; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
        apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
fi

if [ -n "${BENCH_BIN:-}" ]; then
    BIN=$(readlink -f "$BENCH_BIN")
    echo "bench: using $BIN (no release build)"
else
    echo "bench: cargo build --release"
    cargo build --release --locked --bin duplicity-charm
    BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/duplicity-charm"
fi
[ -x "$BIN" ] || { echo "bench: no binary at $BIN" >&2; exit 1; }

mkdir -p "$DIR"
avail_kib=$(df -Pk "$DIR" | awk 'NR==2 {print $4}')
need_kib=$(( ${#QUICK[@]} ? 1500000 : 11000000 ))
[ "$avail_kib" -ge "$need_kib" ] || { echo "bench: need $((need_kib / 1024)) MiB free in $DIR, have $((avail_kib / 1024))" >&2; exit 1; }

# The SFTP and S3 jobs run against this run's own loopback servers, stopped on exit.
SERVERS=()
if [ -z "$ONLY" ] || [[ ",$ONLY," == *,sftp_* ]] || [[ ",$ONLY," == *,s3_* ]]; then
    SRV="$DIR/servers"
    [ -e "$SRV/servers.pids" ] && bash scripts/test-servers.sh stop "$SRV"
    rm -rf "$SRV"
    trap 'bash scripts/test-servers.sh stop "$SRV"' EXIT
    bash scripts/test-servers.sh start "$SRV"
    SERVERS=(--servers-env "$SRV/servers.env")
fi

python3 bench/bench.py --bin "$BIN" --dir "$DIR" --runs "$RUNS" "${QUICK[@]}" --only "$ONLY" --tools "$TOOLS" \
    "${SERVERS[@]}" --out bench/results.md
