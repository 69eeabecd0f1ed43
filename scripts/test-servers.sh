#!/usr/bin/env bash
# Real storage servers on 127.0.0.1 for the backend conformance tests.
#
#   scripts/test-servers.sh install     install what is missing (apt; a venv and npm packages cached under
#                                       $DC_CI_CACHE, default /var/cache/duplicity-charm-ci)
#   scripts/test-servers.sh start DIR   install if needed, start every server under DIR on free loopback ports,
#                                       write DIR/servers.env (connection facts, sourced or parsed by the tests)
#                                       and DIR/servers.pids ("name pid starttime")
#   scripts/test-servers.sh stop DIR    stop exactly the pids in DIR/servers.pids (TERM, KILL after 10 s)
#
# Servers: sshd (sftp/scp/rsync over ssh; a key user and a password), rsync daemon (module "backup"),
# FTP (pyftpdlib), S3 (moto, SigV4 with an IAM key enforced), Azure Blob (azurite).
# Append-only targets (create and read, never delete, rename or replace): a second SSH user whose
# sftp is `internal-sftp -u 0222 -P remove,rename,…` (SSH_AO_*), an rsync module "appendonly" in a
# `chattr +a` directory written as that user with `incoming chmod = Fa-w` (RSYNCD_AO_*), and an FTP
# server whose user has no delete/rename/append rights and may not STOR onto an existing file (FTP_AO_*).
# Needs root: apt-get, the test user (useradd/chpasswd), /run/sshd. Nothing listens on another address.
set -Eeuo pipefail

HOST=127.0.0.1
CACHE=${DC_CI_CACHE:-/var/cache/duplicity-charm-ci}
VENV=$CACHE/test-servers-venv
NODE=$CACHE/test-servers-node
PIP_PKGS="moto[s3]==5.2.5 flask==3.1.3 flask-cors==6.0.5 pyftpdlib==2.2.0 boto3==1.44.5"
NPM_PKGS="azurite@3.37.0"
# Each server set has its own SSH test user (dcb-<random>), so sets started side by side (parallel
# sessions on one machine) do not change each other's password or home; `stop` deletes it.
SSH_USER_PREFIX=dcb-
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
export PIP_CACHE_DIR=$CACHE/pip-cache npm_config_cache=$CACHE/npm-cache PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '[test-servers %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
rand() { tr -dc 'A-Za-z0-9' </dev/urandom | head -c "${1:-24}" || true; }

do_install() {
    [ "$(id -u)" = 0 ] || die "install needs root"
    local p miss=()
    for p in openssh-server openssh-client rsync curl iproute2 python3-venv; do
        dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || miss+=("$p")
    done
    # node may come from elsewhere than Debian (the image has one); only install it if absent.
    command -v node >/dev/null && command -v npm >/dev/null || miss+=(nodejs npm)
    if [ ${#miss[@]} -gt 0 ]; then
        log "apt: installing ${miss[*]}"
        # The image's policy-rc.d keeps postinst from starting a system sshd on 0.0.0.0; add one if missing.
        local made=0
        if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod 755 /usr/sbin/policy-rc.d; made=1; fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${miss[@]}" >/dev/null 2>&1 || {
            apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
            apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${miss[@]}" >/dev/null; }
        [ $made = 1 ] && rm -f /usr/sbin/policy-rc.d
    fi
    mkdir -p "$CACHE"
    if [ "$(cat "$VENV/.pkgs" 2>/dev/null)" != "$PIP_PKGS" ]; then
        log "venv: $PIP_PKGS"
        rm -rf "$VENV"; /usr/bin/python3 -m venv "$VENV"
        # shellcheck disable=SC2086
        "$VENV/bin/pip" install -q $PIP_PKGS
        echo "$PIP_PKGS" >"$VENV/.pkgs"
    fi
    if [ "$(cat "$NODE/.pkgs" 2>/dev/null)" != "$NPM_PKGS" ]; then
        log "npm: $NPM_PKGS"
        mkdir -p "$NODE"
        # shellcheck disable=SC2086
        npm install --prefix "$NODE" --no-audit --no-fund --loglevel=error $NPM_PKGS >/dev/null
        echo "$NPM_PKGS" >"$NODE/.pkgs"
    fi
}

# A free TCP port on 127.0.0.1 (random, so parallel runs on one machine do not collide).
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 20000))
        [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] && ! grep -q " $p\$" "$DIR/ports" 2>/dev/null && break
    done
    echo "x $p" >>"$DIR/ports"; echo "$p"
}
starttime() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; set -- $s; echo "${20}"; }
record() { echo "$1 $2 $(starttime "$2")" >>"$DIR/servers.pids"; }
envw() { printf "%s=%s\n" "$1" "$2" >>"$DIR/servers.env"; }
wait_ready() { # name pid seconds cmd...
    local name=$1 pid=$2 n=$(($3 * 10)); shift 3
    until "$@" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || { tail -20 "$DIR/$name.log" >&2; die "$name died"; }
        n=$((n - 1)); [ $n -gt 0 ] || die "$name not ready"
        sleep 0.1
    done
    log "$name ready (pid $pid)"
}

start_sshd() {
    local d=$DIR/sshd home=$DIR/home port pw; rm -rf "$d"; mkdir -p "$d" /run/sshd; port=$(free_port); pw=$(rand)
    remove_stale_users
    SSH_USER=$SSH_USER_PREFIX$(rand 8 | tr 'A-Z' 'a-z')
    useradd -M -s /bin/bash -d "$home" "$SSH_USER"
    echo "$SSH_USER" >"$DIR/ssh_user"
    echo "$SSH_USER:$pw" | chpasswd
    install -d -o $SSH_USER -g $SSH_USER -m 0755 "$home" "$DIR/sftp-abs"
    # The append-only user: same keys and password, sftp only (ForceCommand below).
    AO_USER=${SSH_USER}a
    useradd -M -s /usr/sbin/nologin -d "$DIR/home-ao" "$AO_USER"
    echo "$AO_USER" >"$DIR/ssh_user_ao"
    echo "$AO_USER:$pw" | chpasswd
    install -d -o $AO_USER -g $AO_USER -m 0755 "$DIR/home-ao"
    ssh-keygen -q -t ed25519 -N '' -f "$d/host_ed25519"
    ssh-keygen -q -t ed25519 -N '' -f "$d/other_host_ed25519"
    # Client keys in each format the backend must read: OpenSSH ed25519, OpenSSH RSA, PEM RSA.
    ssh-keygen -q -t ed25519 -N '' -f "$d/id_ed25519"
    ssh-keygen -q -t rsa -b 3072 -N '' -f "$d/id_rsa"
    ssh-keygen -q -t rsa -b 3072 -m PEM -N '' -f "$d/id_rsa_pem"
    cat "$d/id_ed25519.pub" "$d/id_rsa.pub" "$d/id_rsa_pem.pub" >"$d/authorized_keys"
    local hk; hk=$(cut -d' ' -f1,2 "$d/host_ed25519.pub")
    echo "[$HOST]:$port $hk" >"$d/known_hosts"
    cp "$d/known_hosts" "$d/known_hosts_hashed"; ssh-keygen -q -H -f "$d/known_hosts_hashed" >/dev/null 2>&1; rm -f "$d/known_hosts_hashed.old"
    echo "[$HOST]:$port $(cut -d' ' -f1,2 "$d/other_host_ed25519.pub")" >"$d/known_hosts_wrong"
    cat >"$d/sshd_config" <<EOF
ListenAddress $HOST:$port
HostKey $d/host_ed25519
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
AllowUsers $SSH_USER $AO_USER
StrictModes no
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
MaxStartups 50:30:100
MaxSessions 50
Subsystem sftp internal-sftp
# Append-only: files are created read-only (-u 0222, and no setstat to change that), so they cannot
# be reopened for writing; remove, rename and links are refused; no shell, no forwarding.
Match User $AO_USER
    ForceCommand internal-sftp -u 0222 -P remove,rename,posix-rename,rmdir,setstat,fsetstat,lsetstat,symlink,hardlink
EOF
    /usr/sbin/sshd -D -e -f "$d/sshd_config" >"$DIR/sshd.log" 2>&1 &
    local pid=$!; record sshd $pid
    wait_ready sshd $pid 15 bash -c "ssh-keyscan -T 2 -p $port $HOST 2>/dev/null | grep -qF '$(cut -d' ' -f2 "$d/host_ed25519.pub")'"
    envw SSH_PORT "$port"; envw SSH_USER $SSH_USER; envw SSH_PASSWORD "$pw"; envw SSH_HOME "$home"
    envw SSH_ABS_DIR "$DIR/sftp-abs"
    envw SSH_KEY_ED25519 "$d/id_ed25519"; envw SSH_KEY_RSA "$d/id_rsa"; envw SSH_KEY_RSA_PEM "$d/id_rsa_pem"
    envw SSH_KNOWN_HOSTS "$d/known_hosts"; envw SSH_KNOWN_HOSTS_HASHED "$d/known_hosts_hashed"
    envw SSH_KNOWN_HOSTS_WRONG "$d/known_hosts_wrong"
    envw SSH_AO_USER "$AO_USER"; envw SSH_AO_HOME "$DIR/home-ao"
}

start_rsyncd() {
    local d=$DIR/rsyncd port pw; mkdir -p "$d" "$DIR/rsync-module"; port=$(free_port); pw=$(rand)
    # Append-only module: written as the (non-root) append-only user, files made read-only on arrival
    # (so --inplace cannot reopen them), in an append-only directory (so no rename over a file and no
    # unlink, whatever the client asks), and delete options refused outright.
    install -d -o "$AO_USER" -g "$AO_USER" -m 0755 "$DIR/rsync-ao"
    chattr +a "$DIR/rsync-ao"
    cat >"$d/rsyncd.conf" <<EOF
pid file = $d/rsyncd.pid
log file = $DIR/rsyncd.log
use chroot = no
uid = root
gid = root
[backup]
    path = $DIR/rsync-module
    read only = no
    auth users = rsuser
    secrets file = $d/secrets
[appendonly]
    path = $DIR/rsync-ao
    read only = no
    uid = $AO_USER
    gid = $AO_USER
    auth users = rsuser
    secrets file = $d/secrets
    incoming chmod = Fa-w
    refuse options = delete remove-source-files
EOF
    echo "rsuser:$pw" >"$d/secrets"; chmod 600 "$d/secrets"
    rsync --daemon --no-detach --config="$d/rsyncd.conf" --address=$HOST --port="$port" >>"$DIR/rsyncd.log" 2>&1 &
    local pid=$!; record rsyncd $pid
    wait_ready rsyncd $pid 15 rsync "rsync://$HOST:$port/"
    envw RSYNCD_PORT "$port"; envw RSYNCD_USER rsuser; envw RSYNCD_PASSWORD "$pw"; envw RSYNCD_MODULE backup
    envw RSYNCD_DIR "$DIR/rsync-module"
    envw RSYNCD_AO_MODULE appendonly; envw RSYNCD_AO_DIR "$DIR/rsync-ao"
}

start_ftp() {
    local port pw pmin; port=$(free_port); pw=$(rand); pmin=$(free_port); mkdir -p "$DIR/ftp-root"
    "$VENV/bin/python" -m pyftpdlib -i $HOST -p "$port" -w -d "$DIR/ftp-root" -u ftpuser -P "$pw" \
        -r "$pmin-$((pmin + 20))" >"$DIR/ftp.log" 2>&1 &
    local pid=$!; record ftp $pid
    wait_ready ftp $pid 15 bash -c "exec 3<>/dev/tcp/$HOST/$port; head -c 3 <&3 | grep -q 220"
    envw FTP_PORT "$port"; envw FTP_USER ftpuser; envw FTP_PASSWORD "$pw"; envw FTP_ROOT "$DIR/ftp-root"
    start_ftp_ao
}

# An FTP account that may list, read, store new files and make directories ("elrwm": no delete,
# rename, append or chmod), on a server that refuses STOR onto an existing file, as ProFTPD's
# `AllowOverwrite off` does.
start_ftp_ao() {
    local port pw pmin; port=$(free_port); pw=$(rand); pmin=$(free_port); mkdir -p "$DIR/ftp-ao"
    printf '%s' "$pw" >"$DIR/ftp-ao.pw"; chmod 600 "$DIR/ftp-ao.pw"
    "$VENV/bin/python" - "$HOST" "$port" "$DIR/ftp-ao" "$DIR/ftp-ao.pw" "$pmin" <<'PY' >"$DIR/ftp-ao.log" 2>&1 &
import os, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
host, port, root, pwfile, pmin = sys.argv[1:]
class NoOverwrite(FTPHandler):
    def ftp_STOR(self, file, mode="w"):
        if os.path.lexists(file):
            self.respond("550 %s exists: overwriting is not allowed." % os.path.basename(file))
            return None
        return super().ftp_STOR(file, mode)
auth = DummyAuthorizer()
auth.add_user("ftpao", open(pwfile).read(), root, perm="elrwm")
NoOverwrite.authorizer = auth
NoOverwrite.passive_ports = range(int(pmin), int(pmin) + 21)
FTPServer((host, int(port)), NoOverwrite).serve_forever()
PY
    local pid=$!; record ftp-ao $pid
    wait_ready ftp-ao $pid 15 bash -c "exec 3<>/dev/tcp/$HOST/$port; head -c 3 <&3 | grep -q 220"
    rm -f "$DIR/ftp-ao.pw"
    envw FTP_AO_PORT "$port"; envw FTP_AO_USER ftpao; envw FTP_AO_PASSWORD "$pw"; envw FTP_AO_ROOT "$DIR/ftp-ao"
}

start_s3() {
    local port; port=$(free_port)
    "$VENV/bin/moto_server" -H $HOST -p "$port" >"$DIR/s3.log" 2>&1 &
    local pid=$!; record s3 $pid
    wait_ready s3 $pid 30 curl -fsS -o /dev/null "http://$HOST:$port/moto-api/"
    local keys
    keys=$("$VENV/bin/python" - "http://$HOST:$port" <<'PY'
import sys, json, urllib.request, boto3
ep = sys.argv[1]
kw = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **kw)
iam.create_user(UserName="backup")
iam.put_user_policy(UserName="backup", PolicyName="s3", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
k = iam.create_access_key(UserName="backup")["AccessKey"]
# From here on every request must carry a valid SigV4 signature by that key.
urllib.request.urlopen(urllib.request.Request(ep + "/moto-api/reset-auth", data=b"0", method="POST",
                                              headers={"Content-Type": "text/plain"})).read()
print(k["AccessKeyId"], k["SecretAccessKey"])
PY
)
    envw S3_ENDPOINT "http://$HOST:$port"; envw S3_REGION us-east-1
    envw S3_ACCESS_KEY_ID "${keys% *}"; envw S3_SECRET_ACCESS_KEY "${keys#* }"
}

start_azure() {
    local port; port=$(free_port); mkdir -p "$DIR/azure"
    # --skipApiVersionCheck: SDKs send newer API versions than azurite knows; telemetry off.
    "$NODE/node_modules/.bin/azurite-blob" --blobHost $HOST --blobPort "$port" --location "$DIR/azure" \
        --skipApiVersionCheck --disableTelemetry --silent >"$DIR/azure.log" 2>&1 &
    local pid=$!; record azure $pid
    wait_ready azure $pid 30 bash -c "curl -s -o /dev/null -w '%{http_code}' 'http://$HOST:$port/devstoreaccount1?comp=list' | grep -q 403"
    envw AZURE_CONNECTION_STRING "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$AZ_KEY;BlobEndpoint=http://$HOST:$port/devstoreaccount1;"
}

do_start() {
    [ "$(id -u)" = 0 ] || die "start needs root (test user, /run/sshd)"
    [ -e "$DIR/servers.pids" ] && die "$DIR/servers.pids exists: stop first"
    do_install
    mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd); chmod 755 "$DIR"
    : >"$DIR/servers.pids"; : >"$DIR/ports"
    printf '# test-servers.sh start %s\n' "$(date -Is)" >"$DIR/servers.env"
    envw HOST $HOST
    trap 'log "start failed; stopping what was started"; do_stop' ERR
    local s; for s in sshd rsyncd ftp s3 azure; do "start_$s"; done
    trap - ERR
    chmod 600 "$DIR/servers.env"
    log "started; env file $DIR/servers.env"
}

# Test users whose server set is gone (its home deleted without a stop).
remove_stale_users() {
    local u home
    while IFS=: read -r u _ _ _ _ home _; do
        case "$u" in "$SSH_USER_PREFIX"*) [ -d "$home" ] || userdel "$u" 2>/dev/null || true ;; esac
    done </etc/passwd
}

do_stop() {
    local f=$DIR/servers.pids name pid st n
    [ -f "$f" ] || { log "nothing to stop in $DIR"; remove_user; return 0; }
    while read -r name pid st; do
        [ "$(starttime "$pid" || true)" = "$st" ] || continue   # gone, or the pid was reused
        kill -TERM "$pid" 2>/dev/null || true
        n=100
        while [ $n -gt 0 ] && [ "$(starttime "$pid" || true)" = "$st" ] && ! grep -q '^State:.Z' "/proc/$pid/status" 2>/dev/null; do
            sleep 0.1; n=$((n - 1))
        done
        [ $n = 0 ] && kill -KILL "$pid" 2>/dev/null
        log "$name (pid $pid) stopped"
    done <"$f"
    rm -f "$f"
    remove_user
}

# This set's test users, once its sshd (and so its sessions) is gone. The append-only directories lose
# their `chattr +a` so that DIR can be removed.
remove_user() {
    local f
    for f in "$DIR/rsync-ao" "$DIR/home-ao"; do [ -d "$f" ] && chattr -R -a "$f" 2>/dev/null || true; done
    for f in "$DIR/ssh_user" "$DIR/ssh_user_ao"; do
        [ -f "$f" ] || continue
        userdel "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
}

cmd=${1:-}; DIR=${2:-}
case "$cmd" in
install) do_install ;;
start) [ -n "$DIR" ] || die "usage: $0 start DIR"; do_start ;;
stop) [ -n "$DIR" ] || die "usage: $0 stop DIR"; do_stop ;;
*) sed -n '2,14p' "$0"; exit 2 ;;
esac
