#!/usr/bin/env bash
# Installs the Debian packages the build, the tests, the demo and the benchmark need, and nothing else.
# Idempotent: skips what is installed, runs `apt-get update` only when something must be installed.
# Needs root (or sudo) on Debian 12 with the Rust toolchain already present.
#   cmake                                  libz-ng-sys (flate2 zlib-ng)
#   libclang1-14 libclang-common-14-dev    bindgen in nettle-sys (sequoia crypto-nettle)
#   duplicity rdiff gnupg                  stock duplicity 0.8.22 for the interop tests and the benchmark
#   librsync-dev                           headers for stock duplicity 3.2.1 (scripts/duplicity3.sh), the selection reference
#   time                                   /usr/bin/time -f for the benchmark's CPU time and peak RSS
#   python3-paramiko                       duplicity 0.8's sftp:// backend, for the sftp interop tests
#   lftp                                   duplicity 0.8's ftp:// backend, for the ftp interop tests
#   python3-boto3                          duplicity 0.8's boto3+s3:// backend, for the S3 interop tests
#   prometheus                             promtool and prometheus for the COS tests (tests/integration/charm_cos.rs);
#                                          the package enables and starts a system prometheus on :9090, which we
#                                          stop and disable (the tests run their own on a free port)
set -euo pipefail

PKGS=(cmake libclang1-14 libclang-common-14-dev duplicity rdiff gnupg librsync-dev time python3-paramiko lftp python3-boto3 prometheus)

missing=()
for p in "${PKGS[@]}"; do
    if [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" != "ii " ]; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup-deps: all present: ${PKGS[*]}"
else
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "setup-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
        SUDO=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    APT=("${SUDO[@]}" apt-get -y -q -o DPkg::Lock::Timeout=600)
    echo "setup-deps: installing: ${missing[*]}"
    # Refresh the package lists only if apt cannot find a candidate for every missing package.
    need_update=0
    for p in "${missing[@]}"; do
        cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
        if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then need_update=1; fi
    done
    if [ "$need_update" -eq 1 ]; then
        echo "setup-deps: apt-get update"
        "${APT[@]}" update
    fi
    # Recommends are not needed: paramiko and lftp are listed, pexpect is not used; rsync comes with the test servers.
    if ! "${APT[@]}" install --no-install-recommends "${missing[@]}"; then
        echo "setup-deps: install failed; retrying after apt-get update" >&2
        "${APT[@]}" update
        "${APT[@]}" install --no-install-recommends "${missing[@]}"
    fi
fi

# The Debian package starts a prometheus service on :9090 where systemd runs (in containers policy-rc.d
# usually stops it from starting): the tests need only the binaries.
if [ -d /run/systemd/system ] && systemctl is-enabled --quiet prometheus 2>/dev/null; then
    stop=(systemctl disable --now prometheus)
    [ "$(id -u)" -eq 0 ] || stop=(sudo "${stop[@]}")
    "${stop[@]}" || echo "setup-deps: could not stop the prometheus service" >&2
fi

# Fail loudly if anything the tests rely on does not run.
for c in duplicity rdiff gpg python3 /usr/bin/time lftp cargo promtool prometheus; do
    command -v "$c" >/dev/null || { echo "setup-deps: '$c' not found after install" >&2; exit 1; }
done
ver=$(duplicity --version 2>&1) || { echo "setup-deps: 'duplicity --version' failed: $ver" >&2; exit 1; }
echo "setup-deps: ok ($ver; $(gpg --version | head -1); $(rdiff --version 2>&1 | head -1))"
