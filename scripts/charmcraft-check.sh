#!/usr/bin/env bash
# Validates the charm with charmcraft: `charmcraft expand-extensions` on the repository (the project model:
# charmcraft.yaml with metadata/config/actions.yaml) and `charmcraft analyse` on the packed .charm.
# Both must exit 0 (analyse: 0 = no warnings or errors). charmcraft comes from PyPI into a cached venv
# (CHARMCRAFT_VENV, default /var/cache/duplicity-charm-ci/charmcraft-venv) and runs with HOME and the XDG
# dirs in a temp dir, since it writes logs and caches there.
#   scripts/charmcraft-check.sh [CHARM]    (CHARM defaults to build/duplicity.charm)
set -euo pipefail
cd "$(dirname "$0")/.."

CHARM=${1:-build/duplicity.charm}
VERSION=4.5.0
VENV=${CHARMCRAFT_VENV:-/var/cache/duplicity-charm-ci/charmcraft-venv}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
[ -f "$CHARM" ] || { echo "charmcraft-check: $CHARM not found (run scripts/pack-charm.sh first)" >&2; exit 1; }

HOME_DIR=$(mktemp -d "${TMPDIR:-/tmp}/charmcraft-home.XXXXXX")
trap 'rm -rf "$HOME_DIR"' EXIT
mkdir -m 0700 "$HOME_DIR/run"
cc() {
    env HOME="$HOME_DIR" XDG_RUNTIME_DIR="$HOME_DIR/run" XDG_CACHE_HOME="$HOME_DIR/cache" \
        XDG_STATE_HOME="$HOME_DIR/state" XDG_CONFIG_HOME="$HOME_DIR/config" XDG_DATA_HOME="$HOME_DIR/data" \
        "$VENV/bin/charmcraft" "$@"
}

if [ "$(cc version 2>/dev/null | awk '{print $2}')" != "$VERSION" ]; then
    echo "charmcraft-check: installing charmcraft $VERSION into $VENV"
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q "charmcraft==$VERSION"
fi
echo "charmcraft-check: $(cc version)"

echo "charmcraft-check: charmcraft expand-extensions"
if ! out=$(cc expand-extensions 2>&1); then
    echo "$out" >&2
    echo "charmcraft-check: expand-extensions failed" >&2
    exit 1
fi

# expand-extensions does not check option types (`type: integer` passes it); charmcraft's own model of
# config.yaml does: each type, and a `type: secret` option's default (none, or secret:<20 chars>).
echo "charmcraft-check: config.yaml against charmcraft's JujuConfig model"
if ! out=$(env HOME="$HOME_DIR" XDG_CACHE_HOME="$HOME_DIR/cache" XDG_STATE_HOME="$HOME_DIR/state" \
        "$VENV/bin/python" - config.yaml 2>&1 <<'PY'
import sys
import yaml
from charmcraft.models.config import JujuConfig
with open(sys.argv[1]) as f:
    JujuConfig.model_validate(yaml.safe_load(f))
PY
); then
    echo "$out" >&2
    echo "charmcraft-check: config.yaml does not validate" >&2
    exit 1
fi

echo "charmcraft-check: charmcraft analyse $CHARM"
rc=0
# naming-conventions is ignored as charmcraft.yaml's analysis.ignore says (analyse of a .charm file does not
# read it): the snake_case option names are the Python charm's and must stay. No --format: in charmcraft
# 4.5.0 `analyse --format json` drops --ignore.
out=$(cc analyse --ignore naming-conventions "$CHARM" 2>&1) || rc=$?
echo "$out"
if [ "$rc" -ne 0 ]; then
    echo "charmcraft-check: analyse exited $rc (3 = warnings, 2 = errors, 1 = fatal)" >&2
    exit 1
fi
echo "charmcraft-check: ok"
