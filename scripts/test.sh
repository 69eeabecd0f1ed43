#!/usr/bin/env bash
# THE test command (README, `make test`, .ci/run): install what the tests need, then format check, clippy
# (with and without the test hooks) and every test (unit + integration against stock duplicity) in one debug
# build with the cargo feature `test-hooks`; then the binary is built again without it (as shipped), checked
# to hold no test hook, and the charm is packed from it and checked with charmcraft (expand-extensions on the
# repo, analyse on the .charm); last, every fuzz target runs briefly.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo; echo "=== $* ($(date +%T))"; }

step "setup-deps"
if [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null; then
    bash scripts/setup-deps.sh
else
    echo "test: not root and no sudo: cannot install; checking what is there" >&2
    bash scripts/setup-deps.sh # fails loudly, naming what is missing
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings (as shipped, then with --features test-hooks)"
cargo clippy --all-targets --locked -- -D warnings
cargo clippy --all-targets --locked --features test-hooks -- -D warnings

step "start the loopback test servers (scripts/test-servers.sh; stopped on exit)"
SUDO=(); [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
TS_DIR=$(mktemp -d /tmp/dc-test-servers.XXXXXX)
trap '"${SUDO[@]}" bash scripts/test-servers.sh stop "$TS_DIR" || true; "${SUDO[@]}" rm -rf "$TS_DIR"' EXIT
"${SUDO[@]}" bash scripts/test-servers.sh start "$TS_DIR"
[ ${#SUDO[@]} -eq 0 ] || sudo chown "$(id -u)" "$TS_DIR/servers.env" # throwaway secrets, readable by the tests only
export DC_TEST_SERVERS_ENV=$TS_DIR/servers.env

step "cargo test (every rsync/ssh command line recorded by scripts/argv-guard.sh)"
GUARD=$(mktemp -d /tmp/dc-argv-guard.XXXXXX)
trap '"${SUDO[@]}" bash scripts/test-servers.sh stop "$TS_DIR" || true; "${SUDO[@]}" rm -rf "$TS_DIR" "$GUARD"' EXIT
bash scripts/argv-guard.sh install "$GUARD"
# The integration tests run the binary cargo builds with the same features, so it has the hooks too.
PATH="$GUARD:$PATH" cargo test --locked --features test-hooks --no-fail-fast -- --test-threads="${TEST_THREADS:-2}"

step "no secret in any rsync/ssh command line of the whole run"
bash scripts/argv-guard.sh check "$GUARD" "$TS_DIR/servers.env"

step "build the binary without the test hooks (as shipped) and check that it holds none"
# Debug, so only our crate compiles again; the test-hook code is cfg'd out alike in release (make charm
# runs the same check on its release binary).
cargo build --locked --bin duplicity-charm
bash scripts/check-no-test-hooks.sh "${CARGO_TARGET_DIR:-target}/debug/duplicity-charm"

step "pack the charm (debug binary, without the test hooks) and check it with charmcraft"
bash scripts/pack-charm.sh "${CARGO_TARGET_DIR:-target}/debug/duplicity-charm" build/duplicity.charm
bash scripts/charmcraft-check.sh build/duplicity.charm

step "fuzz: build every cargo-fuzz target (nightly), run each for ${FUZZ_CI_SECONDS:-15}s (scripts/fuzz.sh)"
# Briefly, from the committed seeds: catches a parser change that crashes on them or soon after. Longer runs
# by hand: make fuzz (README, "Fuzzing").
FUZZ_TARGET_DIR=${FUZZ_TARGET_DIR:-/var/cache/duplicity-charm-ci/fuzz-target} \
    FUZZ_SECONDS=${FUZZ_CI_SECONDS:-15} bash scripts/fuzz.sh all

step "all tests passed"
