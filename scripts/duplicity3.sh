#!/usr/bin/env bash
# Installs stock duplicity 3.2.1 from PyPI into a cached venv (DUPLICITY3_VENV, default
# /var/cache/duplicity-charm-ci/duplicity3-venv) on first use and prints the path of its `duplicity`
# executable. The reference for behaviour that changed after Debian's 0.8.22 (e.g. file selection).
# Building its C extension needs librsync's headers (`librsync-dev`, see scripts/setup-deps.sh).
#   scripts/duplicity3.sh            -> /var/cache/duplicity-charm-ci/duplicity3-venv/bin/duplicity
set -euo pipefail

VERSION=3.2.1
VENV=${DUPLICITY3_VENV:-/var/cache/duplicity-charm-ci/duplicity3-venv}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
EXE="$VENV/bin/duplicity"

installed() {
    [ -x "$EXE" ] && [ "$("$EXE" --version 2>/dev/null | awk '{print $2}')" = "$VERSION" ]
}

if ! installed; then
    # Two test binaries may ask at once: one installs, the other waits and then finds it installed.
    mkdir -p "$(dirname "$VENV")"
    exec 9>"$VENV.lock"
    flock 9
    if ! installed; then
        if [ "$(dpkg-query -W -f='${db:Status-Abbrev}' librsync-dev 2>/dev/null)" != "ii " ]; then
            echo "duplicity3: librsync-dev is missing (duplicity's C extension needs it): run scripts/setup-deps.sh" >&2
            exit 1
        fi
        echo "duplicity3: installing duplicity $VERSION into $VENV" >&2
        rm -rf "$VENV"
        "$PY" -m venv "$VENV"
        # Without its dependencies: duplicity 3 requires every backend's SDK, some of which no longer
        # build; the core with file:// and --no-encryption needs only fasteners (the archive dir lock).
        "$VENV/bin/pip" install -q --no-deps "duplicity==$VERSION" fasteners >&2
        installed || { echo "duplicity3: $EXE does not report version $VERSION after install" >&2; exit 1; }
    fi
fi
echo "$EXE"
