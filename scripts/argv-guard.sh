#!/usr/bin/env bash
# Whole-run check that no secret reaches a command line: `install DIR` puts rsync and ssh wrappers in DIR
# that append every argv to DIR/argv.log and exec the real program (put DIR first on PATH for the run);
# `check DIR ENVFILE` fails if any secret of the test servers (ENVFILE) or the tests' passphrase is in it.
set -euo pipefail
cmd=${1:?usage: argv-guard.sh install DIR | check DIR ENVFILE}
dir=${2:?DIR}

case "$cmd" in
install)
    mkdir -p "$dir"
    : >"$dir/argv.log"
    for prog in rsync ssh; do
        real=$(command -v "$prog") || { echo "argv-guard: $prog is not installed" >&2; exit 1; }
        cat >"$dir/$prog" <<WRAP
#!/bin/sh
printf '%s ' $prog "\$@" >>'$dir/argv.log'
echo >>'$dir/argv.log'
exec '$real' "\$@"
WRAP
        chmod 755 "$dir/$prog"
    done
    ;;
check)
    envfile=${3:?ENVFILE}
    secrets=()
    while IFS='=' read -r key value; do
        case "$key" in
        SSH_PASSWORD | RSYNCD_PASSWORD | FTP_PASSWORD | S3_SECRET_ACCESS_KEY) secrets+=("$value") ;;
        AZURE_CONNECTION_STRING) secrets+=("$(sed -n 's/.*AccountKey=\([^;]*\).*/\1/p' <<<"$value")") ;;
        esac
    done <"$envfile"
    secrets+=("correct horse battery staple") # support::PASS
    runs=$(wc -l <"$dir/argv.log")
    [ "$runs" -gt 0 ] || { echo "argv-guard: no rsync/ssh run was recorded: the guard saw nothing" >&2; exit 1; }
    for s in "${secrets[@]}"; do
        [ -n "$s" ] || continue
        if grep -qF -- "$s" "$dir/argv.log"; then
            echo "argv-guard: a secret (${s:0:3}…) appeared in an rsync/ssh command line:" >&2
            grep -nF -- "$s" "$dir/argv.log" | sed "s/$(printf '%s' "$s" | sed 's/[^^]/[&]/g; s/\^/\\^/g')/<secret>/g" | head -5 >&2
            exit 1
        fi
    done
    echo "argv-guard: $runs rsync/ssh command lines, none with a secret (${#secrets[@]} secrets checked)"
    ;;
*)
    echo "usage: argv-guard.sh install DIR | check DIR ENVFILE" >&2
    exit 2
    ;;
esac
