#!/usr/bin/env bash
# A real encrypted backup and restore of a sample directory to a local file:// target:
# full, change, incremental, collection-status, restore into a new directory, diff -r.
# Env: DEMO_DIR (default: a new temp dir, kept for a look afterwards),
#      DUPLICITY_CHARM_BIN (default: install the build's packages with scripts/setup-deps.sh, then
#      `cargo build`, the same debug profile as the tests, so `make test` reuses the build).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DUPLICITY_CHARM_BIN:-}" ]; then
    # A fresh machine needs the build's Debian packages (cmake, libclang) first.
    bash scripts/setup-deps.sh
    echo "demo: cargo build"
    cargo build --quiet --bin duplicity-charm
    DUPLICITY_CHARM_BIN="${CARGO_TARGET_DIR:-target}/debug/duplicity-charm"
fi
BIN=$(readlink -f "$DUPLICITY_CHARM_BIN")
[ -x "$BIN" ] || { echo "demo: no binary at $BIN" >&2; exit 1; }

DIR=${DEMO_DIR:-$(mktemp -d /tmp/duplicity-charm-demo.XXXXXX)}
mkdir -p "$DIR"
DIR=$(readlink -f "$DIR")
SRC=$DIR/source
URL=file://$DIR/backups
CACHE=$DIR/cache
OUT=$DIR/restored
[ ! -e "$SRC" ] && [ ! -e "$DIR/backups" ] && [ ! -e "$OUT" ] || { echo "demo: $DIR is not empty; pick another DEMO_DIR" >&2; exit 1; }

export PASSPHRASE="demo passphrase, not a secret"

run() {
    echo "+ duplicity-charm $*"
    "$BIN" "$@"
}

echo "demo: sample directory $SRC"
mkdir -p "$SRC/docs" "$SRC/empty dir"
printf 'hello from duplicity-charm\n' > "$SRC/hello.txt"
printf 'naïve ü\n' > "$SRC/docs/naïve ü.txt"
seq 1 200000 > "$SRC/docs/numbers.txt"
head -c 3000000 /dev/urandom > "$SRC/random.bin"
ln -s hello.txt "$SRC/link-to-hello"
chmod 600 "$SRC/docs/numbers.txt"

run full "$SRC" "$URL" --archive-dir "$CACHE"

echo "demo: changing the source"
sleep 1 # a new second, so the incremental's time differs from the full's
printf 'a change\n' >> "$SRC/hello.txt"
printf 'new file\n' > "$SRC/docs/new.txt"
rm "$SRC/random.bin"

run incremental "$SRC" "$URL" --archive-dir "$CACHE"
run collection-status "$URL" --archive-dir "$CACHE"
run restore "$URL" "$OUT" --archive-dir "$CACHE"

echo "+ diff -r $SRC $OUT"
diff -r --no-dereference "$SRC" "$OUT"
echo "demo: backups in $DIR/backups:"
ls -l "$DIR/backups"
echo "demo: OK: restored tree equals the source (files in $DIR)"
