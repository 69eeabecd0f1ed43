#!/usr/bin/env bash
# Checks that a built duplicity-charm binary holds none of the test-only hooks (cargo feature `test-hooks`):
# no DUPLICITY_CHARM_TEST_* variable name, no FakeHookTools, no FakeSystem. scripts/test.sh runs it on the
# debug binary built without the feature (the one it packs), `make charm` on the release binary it ships.
set -euo pipefail
bin=${1:?usage: check-no-test-hooks.sh BINARY}
[ -f "$bin" ] || { echo "check-no-test-hooks: no such file: $bin" >&2; exit 2; }
found=$(strings -a "$bin" | grep -oE 'DUPLICITY_CHARM_TEST_[A-Z_]*|FakeHookTools|FakeSystem' | sort -u || true)
if [ -n "$found" ]; then
    echo "check-no-test-hooks: $bin holds test-only names (built with --features test-hooks?):" >&2
    echo "$found" | sed 's/^/  /' >&2
    exit 1
fi
echo "check-no-test-hooks: $bin holds no test hook"
