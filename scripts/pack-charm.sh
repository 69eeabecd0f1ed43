#!/usr/bin/env bash
# Packs the charm without charmcraft (which cannot pack on this Debian host): a deflate zip of dispatch,
# bin/duplicity-charm (debug info stripped), metadata/config/actions.yaml, manifest.yaml, README.md and
# icon.svg, with their Unix modes, as charmcraft pack would lay it out.
#   scripts/pack-charm.sh BINARY [OUT]     (OUT defaults to build/duplicity.charm)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:?usage: scripts/pack-charm.sh BINARY [OUT]}
OUT=${2:-build/duplicity.charm}
[ -x "$BIN" ] || { echo "pack-charm: $BIN is not an executable" >&2; exit 1; }
command -v strip >/dev/null || { echo "pack-charm: strip (binutils) is needed" >&2; exit 1; }

PRIME=$(mktemp -d "${TMPDIR:-/tmp}/duplicity-charm-prime.XXXXXX")
trap 'rm -rf "$PRIME"' EXIT
mkdir -p "$PRIME/bin"
install -m 0755 dispatch "$PRIME/dispatch"
strip --strip-debug -o "$PRIME/bin/duplicity-charm" "$BIN"
chmod 0755 "$PRIME/bin/duplicity-charm"
install -m 0644 metadata.yaml config.yaml actions.yaml README.md icon.svg "$PRIME/"

# Juju reads the bases from the manifest (series in metadata.yaml is deprecated).
cat >"$PRIME/manifest.yaml" <<MANIFEST
analysis:
  attributes:
  - name: language
    result: unknown
  - name: framework
    result: unknown
bases:
- architectures:
  - amd64
  channel: '22.04'
  name: ubuntu
- architectures:
  - amd64
  channel: '24.04'
  name: ubuntu
charmcraft-started-at: '$(date -u +%Y-%m-%dT%H:%M:%S.000000Z)'
charmcraft-version: 4.5.0
MANIFEST

mkdir -p "$(dirname "$OUT")"
rm -f "$OUT"
python3 - "$PRIME" "$OUT" <<'PY'
import os, sys, zipfile
prime, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for d, dirs, files in os.walk(prime):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            z.write(p, os.path.relpath(p, prime))  # ZipInfo.from_file keeps the Unix mode
PY
echo "pack-charm: wrote $OUT ($(du -h "$OUT" | cut -f1))"
