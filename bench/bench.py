#!/usr/bin/env python3
"""duplicity-charm vs duplicity 0.8.22, restic and borg, side by side in one run (called by bench/run.sh).

Jobs (BENCH_ONLY / --only picks a subset; all by default):
  full, incr, restore         mixed ~0.83 GiB dataset to a file target: full, incremental after the ~1% mutation,
                              restore of the chain (full + incremental)
  sftp_full, sftp_restore     full to / restore from the loopback sshd of scripts/test-servers.sh
  s3_full, s3_restore         full to / restore from the loopback moto S3 server
  small_full, small_incr      200,000 files of 1 KiB: full, no-change incremental
Encryption is on for every tool (passphrases through the environment only). Every restore goes into a fresh,
empty, loop-mounted ext4 filesystem (made on a sparse image, unmounted after), so no tool pays for inodes that
an earlier step freed, and every restore is compared with its source (diff -r): a wrong result fails the run.
Each job is measured with os.wait4 on the tool's process: wall time, user+sys CPU of the process and the
children it waited for (duplicity's gpg, restic's and borg's ssh), peak RSS of the largest single process.
Not measured: the servers (sshd, moto, and borg's `borg serve` on the SSH side, which does borg's repository
work over SFTP). Medians of BENCH_RUNS runs; the tools alternate order between runs.
"""

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PASSPHRASE = "benchmark passphrase"
ALL_JOBS = ["full", "incr", "restore", "sftp_full", "sftp_restore", "s3_full", "s3_restore", "small_full", "small_incr"]
TOOLS = ["ours", "duplicity", "restic", "borg"]
S3_VENV_PY = os.path.join(os.environ.get("DC_CI_CACHE", "/var/cache/duplicity-charm-ci"), "test-servers-venv/bin/python")


def sh(cmd, **kw):
    r = subprocess.run(cmd, **kw)
    if r.returncode != 0:
        sys.exit("bench: failed (exit %d): %s" % (r.returncode, " ".join(map(str, cmd))))
    return r


def du(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            total += os.lstat(os.path.join(root, f)).st_size
    return total


def read_env(path):
    env = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    return env


class Skip(Exception):
    """This tool cannot do this job (e.g. borg has no S3); shown as '–'."""


class Tool:
    """One tool's work dir and how it runs each job. Targets: 'file', 'sftp', 's3'."""

    def __init__(self, name, argv0, work, servers):
        self.name = name
        self.argv0 = argv0
        self.work = work
        self.srv = servers
        self.serial = 0

    def env(self):
        e = dict(os.environ)
        for k in ("PASSPHRASE", "RESTIC_PASSWORD", "BORG_PASSPHRASE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            e.pop(k, None)
        e["GNUPGHOME"] = os.path.join(self.work, "gnupg")
        e["HOME"] = os.path.join(self.work, "home")
        e["TMPDIR"] = os.path.join(self.work, "tmp")
        e["LC_ALL"] = "C.UTF-8"
        if self.name in ("ours", "duplicity"):
            e["PASSPHRASE"] = PASSPHRASE
        elif self.name == "restic":
            e["RESTIC_PASSWORD"] = PASSPHRASE
            e["RESTIC_CACHE_DIR"] = os.path.join(self.work, "cache")
        elif self.name == "borg":
            e["BORG_PASSPHRASE"] = PASSPHRASE
            e["BORG_BASE_DIR"] = os.path.join(self.work, "home")
            e["BORG_RELOCATED_REPO_ACCESS_IS_OK"] = "yes"
            e["BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK"] = "no"
            if self.srv:
                e["BORG_RSH"] = self.ssh_cmd()
        if self.srv and self.srv.get("S3_ENDPOINT"):
            e["AWS_ACCESS_KEY_ID"] = self.srv["S3_ACCESS_KEY_ID"]
            e["AWS_SECRET_ACCESS_KEY"] = self.srv["S3_SECRET_ACCESS_KEY"]
            e["AWS_DEFAULT_REGION"] = self.srv["S3_REGION"]
        return e

    def ssh_cmd(self):
        s = self.srv
        return "ssh -p %s -i %s -o IdentitiesOnly=yes -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes " \
               "-o BatchMode=yes" % (s["SSH_PORT"], s["SSH_KEY_ED25519"], s["SSH_KNOWN_HOSTS"])

    def reset(self):
        if os.path.isdir(self.work):
            subprocess.run(["gpgconf", "--kill", "all"], env=self.env(), stderr=subprocess.DEVNULL)
            shutil.rmtree(self.work)
        for d in ("gnupg", "home", "tmp", "cache"):
            os.makedirs(os.path.join(self.work, d), mode=0o700)
        home = os.path.join(self.work, "home")
        if self.srv:
            # duplicity's paramiko backend reads ~/.ssh (known_hosts, id_*) of this HOME.
            os.makedirs(os.path.join(home, ".ssh"), mode=0o700)
            shutil.copy(self.srv["SSH_KNOWN_HOSTS"], os.path.join(home, ".ssh", "known_hosts"))
            shutil.copy(self.srv["SSH_KEY_ED25519"], os.path.join(home, ".ssh", "id_ed25519"))
        self.serial += 1
        self.targets = {}

    # --- targets -------------------------------------------------------------------------------------
    def target(self, kind):
        """A new, empty repository location of `kind` for this tool (made once per reset)."""
        if kind in self.targets:
            return self.targets[kind]
        tag = "bench-%s-%d-%d" % (self.name, os.getpid(), self.serial)
        s = self.srv
        if kind == "file":
            path = os.path.join(self.work, "repo")
            t = {"file": path, "ours": "file://" + path, "duplicity": "file://" + path, "restic": path, "borg": path}
        elif kind == "sftp":
            if not s:
                raise Skip("no test servers")
            user, port, home = s["SSH_USER"], s["SSH_PORT"], s["SSH_HOME"]
            t = {"cleanup": os.path.join(home, tag),
                 "ours": "sftp://%s@127.0.0.1:%s/%s" % (user, port, tag),
                 "duplicity": "sftp://%s@127.0.0.1:%s/%s" % (user, port, tag),
                 "restic": "sftp:%s@127.0.0.1:%s/%s" % (user, home, tag),
                 "borg": "ssh://%s@127.0.0.1:%s%s/%s" % (user, port, home, tag)}
        elif kind == "s3":
            if not s:
                raise Skip("no test servers")
            if self.name == "borg":
                raise Skip("borg has no S3 backend")
            bucket = tag
            s3_bucket(s, bucket)
            t = {"bucket": bucket, "ours": "s3:///%s/repo" % bucket, "duplicity": "boto3+s3://%s/repo" % bucket,
                 "restic": "s3:%s/%s/repo" % (s["S3_ENDPOINT"], bucket)}
        else:
            raise ValueError(kind)
        t["kind"] = kind
        self.targets[kind] = t
        if self.name == "restic":
            self.untimed(["restic", "-r", t["restic"]] + self.restic_opts(kind) + ["init"], "init-" + kind)
        elif self.name == "borg":
            self.untimed(["borg", "init", "--encryption=repokey", t["borg"]], "init-" + kind)
        return t

    def dup_opts(self, kind):
        """Options ours and duplicity share (same spelling)."""
        s = self.srv
        o = ["--archive-dir", os.path.join(self.work, "cache")]
        if kind == "sftp":
            o.append("--ssh-options=-oIdentityFile=%s -oUserKnownHostsFile=%s" % (
                s["SSH_KEY_ED25519"], s["SSH_KNOWN_HOSTS"]))
        elif kind == "s3":
            o += ["--s3-endpoint-url=" + s["S3_ENDPOINT"], "--s3-region-name=" + s["S3_REGION"]]
        return o

    def restic_opts(self, kind):
        if kind == "sftp":
            s = self.srv
            return ["-o", "sftp.command=%s %s@127.0.0.1 -s sftp" % (self.ssh_cmd(), s["SSH_USER"])]
        return []

    # --- jobs -----------------------------------------------------------------------------------------
    def backup_cmd(self, kind, src, incremental):
        """(argv, cwd) of a backup of src to this tool's `kind` target."""
        t = self.target(kind)
        if self.name in ("ours", "duplicity"):
            return [self.argv0, "incremental" if incremental else "full"] + self.dup_opts(kind) + [src, t[self.name]], None
        if self.name == "restic":
            # `.` from inside src: the snapshot holds src's contents at its root (restores to --target directly).
            return ["restic", "-r", t["restic"]] + self.restic_opts(kind) + ["backup", "-q", "."], src
        return ["borg", "create", "%s::a%d" % (t["borg"], len(self.targets.get("archives", ()))), "."], src

    def after_backup(self, kind):
        if self.name == "borg":
            self.targets.setdefault("archives", []).append(1)

    def restore_cmd(self, kind, dst):
        t = self.target(kind)
        if self.name in ("ours", "duplicity"):
            return [self.argv0, "restore"] + self.dup_opts(kind) + [t[self.name], dst], None
        if self.name == "restic":
            return ["restic", "-r", t["restic"]] + self.restic_opts(kind) + ["restore", "latest", "--target", dst], None
        os.makedirs(dst)
        last = len(self.targets.get("archives", ())) - 1
        return ["borg", "extract", "%s::a%d" % (t["borg"], last)], dst

    def untimed(self, cmd, label, cwd=None):
        log = os.path.join(self.work, "log-%s.txt" % label)
        with open(log, "wb") as f:
            r = subprocess.run(cmd, env=self.env(), cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            sys.stdout.write(open(log, errors="replace").read()[-3000:])
            sys.exit("bench: %s %s failed (exit %d); log: %s" % (self.name, label, r.returncode, log))

    def timed(self, cmd_cwd, label):
        """Runs the command; returns (wall s, cpu s, peak RSS MiB) from os.wait4 on it."""
        cmd, cwd = cmd_cwd
        log = os.path.join(self.work, "log-%s.txt" % label)
        with open(log, "wb") as f:
            t0 = time.monotonic()
            p = subprocess.Popen(cmd, env=self.env(), cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
            _pid, status, ru = os.wait4(p.pid, 0)
            wall = time.monotonic() - t0
            p.returncode = os.waitstatus_to_exitcode(status)
        rc = p.returncode
        # duplicity exits 0; restic exits 3 when some files could not be read (a failure here too).
        if rc != 0:
            sys.stdout.write(open(log, errors="replace").read()[-3000:])
            sys.exit("bench: %s %s failed (exit %d); log: %s" % (self.name, label, rc, log))
        return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0

    def cleanup_targets(self):
        for t in self.targets.values():
            if isinstance(t, dict) and t.get("cleanup"):
                shutil.rmtree(t["cleanup"], ignore_errors=True)
            if isinstance(t, dict) and t.get("bucket"):
                s3_bucket(self.srv, t["bucket"], delete=True)


def s3_bucket(srv, bucket, delete=False):
    """Makes the bucket, or deletes it with its objects (moto keeps them in memory)."""
    code = ("import sys, boto3\n"
            "c = boto3.client('s3', endpoint_url=sys.argv[1], region_name=sys.argv[2])\n"
            "if sys.argv[4] == 'make':\n"
            "    c.create_bucket(Bucket=sys.argv[3])\n"
            "else:\n"
            "    for page in c.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[3]):\n"
            "        for o in page.get('Contents', []):\n"
            "            c.delete_object(Bucket=sys.argv[3], Key=o['Key'])\n"
            "    c.delete_bucket(Bucket=sys.argv[3])\n")
    e = dict(os.environ, AWS_ACCESS_KEY_ID=srv["S3_ACCESS_KEY_ID"], AWS_SECRET_ACCESS_KEY=srv["S3_SECRET_ACCESS_KEY"])
    sh([S3_VENV_PY, "-c", code, srv["S3_ENDPOINT"], srv["S3_REGION"], bucket, "delete" if delete else "make"], env=e)


class FreshFs:
    """An empty ext4 filesystem on a sparse image, loop-mounted for one restore."""

    def __init__(self, base, size_bytes):
        self.img = base + ".img"
        self.mnt = base + ".mnt"
        self.size = size_bytes

    def __enter__(self):
        with open(self.img, "wb") as f:
            f.truncate(self.size)
        sh(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", self.img])
        os.makedirs(self.mnt, exist_ok=True)
        sh(["mount", "-o", "loop", self.img, self.mnt])
        return os.path.join(self.mnt, "restored")

    def __exit__(self, *exc):
        subprocess.run(["umount", self.mnt])
        os.rmdir(self.mnt)
        os.remove(self.img)


def warm(path):
    """Read the whole tree once so every tool starts from the same (warm) page cache."""
    subprocess.run("tar cf - -C %s . | cat > /dev/null" % shlex.quote(path), shell=True, check=True)


def same_tree(a, b):
    r = subprocess.run(["diff", "-r", "-q", "--no-dereference", a, b], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return r.returncode == 0, r.stdout.decode(errors="replace")[:2000]


def make(kind, path, scale):
    if not os.path.isdir(path):
        t = time.time()
        tmp = path + ".part"
        shutil.rmtree(tmp, ignore_errors=True)
        sh([sys.executable, os.path.join(HERE, "make_dataset.py"), kind, tmp, "--scale", str(scale)])
        os.rename(tmp, path)
        print("bench: made %s dataset %s (%.0f MiB) in %.0f s" % (kind, path, du(path) / 2**20, time.time() - t), flush=True)
    return du(path)


def restore_checked(tool, kind, src, dir_, label, fs_size):
    with FreshFs(os.path.join(dir_, "fs-" + tool.name), fs_size) as dst:
        m = tool.timed(tool.restore_cmd(kind, dst), label)
        ok, diff = same_tree(src, dst)
    if not ok:
        sys.exit("bench: %s %s: the restore differs from the source:\n%s" % (tool.name, label, diff))
    return m


def scenario_mixed(tools, base, args, scale, src_size, jobs, results):
    fs_size = max(2 * src_size + 512 * 2**20, 1 << 30)
    leftovers = []
    for run in range(args.runs):
        order = tools if run % 2 == 0 else tools[::-1]
        for tool in order:
            r = results.setdefault(tool.name, {})
            done = []

            def job(key, fn):
                if key not in jobs:
                    return
                try:
                    r.setdefault(key, []).append(fn())
                    done.append("%s %.1f s" % (key, r[key][-1][0]))
                except Skip as e:
                    r[key] = "–"
                    done.append("%s – (%s)" % (key, e))

            tool.reset()
            src = os.path.join(args.dir, "src-%d-%s" % (run, tool.name))
            leftovers.append(src)
            shutil.rmtree(src, ignore_errors=True)
            sh(["cp", "-a", base, src])
            warm(src)
            # Remote targets first (each restores the single full it made), then the local chain.
            for kind in ("sftp", "s3"):
                if kind + "_full" not in jobs and kind + "_restore" not in jobs:
                    continue
                # A restore needs the full before it, which is then run (and shown only if asked for).
                try:
                    m = tool.timed(tool.backup_cmd(kind, src, False), kind + "-full")
                    tool.after_backup(kind)
                except Skip as e:
                    for key in (kind + "_full", kind + "_restore"):
                        if key in jobs:
                            r[key] = "–"
                    done.append("%s – (%s)" % (kind, e))
                    continue
                if kind + "_full" in jobs:
                    r.setdefault(kind + "_full", []).append(m)
                    done.append("%s_full %.1f s" % (kind, m[0]))
                job(kind + "_restore", lambda kind=kind: restore_checked(
                    tool, kind, src, args.dir, kind + "-restore", fs_size))
            if {"full", "incr", "restore"} & jobs:
                m = tool.timed(tool.backup_cmd("file", src, False), "full")
                tool.after_backup("file")
                if "full" in jobs:
                    r.setdefault("full", []).append(m)
                    done.append("full %.1f s" % m[0])
                r.setdefault("size_full", []).append(du(tool.target("file")["file"]))
                if {"incr", "restore"} & jobs:
                    sh([sys.executable, os.path.join(HERE, "make_dataset.py"), "mutate", src, "--scale", str(scale)])
                    time.sleep(1)
                    warm(src)
                    m = tool.timed(tool.backup_cmd("file", src, True), "incr")
                    tool.after_backup("file")
                    if "incr" in jobs:
                        r.setdefault("incr", []).append(m)
                        done.append("incr %.1f s" % m[0])
                    r.setdefault("size_incr", []).append(du(tool.target("file")["file"]) - r["size_full"][-1])
                job("restore", lambda: restore_checked(tool, "file", src, args.dir, "restore", fs_size))
            tool.cleanup_targets()
            print("bench: run %d %-10s %s" % (run + 1, tool.name, ", ".join(done)), flush=True)
    for d in leftovers:
        shutil.rmtree(d, ignore_errors=True)


def scenario_small(tools, src, runs, jobs, results):
    warm(src)
    for run in range(runs):
        order = tools if run % 2 == 0 else tools[::-1]
        for tool in order:
            tool.reset()
            r = results.setdefault(tool.name, {})
            r.setdefault("small_full", []).append(tool.timed(tool.backup_cmd("file", src, False), "small-full"))
            tool.after_backup("file")
            if "small_incr" in jobs:
                time.sleep(1)
                r.setdefault("small_incr", []).append(tool.timed(tool.backup_cmd("file", src, True), "small-incr"))
                tool.after_backup("file")
            print("bench: run %d %-10s small files: full %.1f s%s" % (
                run + 1, tool.name, r["small_full"][-1][0],
                ", no-change incr %.1f s" % r["small_incr"][-1][0] if "small_incr" in jobs else ""), flush=True)
    if "small_full" not in jobs:
        for r in results.values():
            r.pop("small_full", None)


def med(xs, i=None):
    return statistics.median([x[i] for x in xs] if i is not None else xs)


LABELS = {
    "full": "full, file target", "incr": "incremental (~1%)", "restore": "restore (full + incremental chain)",
    "sftp_full": "full over SFTP", "sftp_restore": "restore over SFTP", "s3_full": "full to S3",
    "s3_restore": "restore from S3", "small_full": "small files: full", "small_incr": "small files: no-change incr",
}
# Issue 15's targets: (minimum of best-peer time / ours, minimum of duplicity time / ours, peers that count).
TARGETS = {
    "full": (1.3, 5.0, ("restic", "borg")), "incr": (1.4, None, ("duplicity", "restic", "borg")),
    "restore": (1.3, 3.4, ("duplicity", "restic", "borg")),
    "sftp_full": (1.3, None, ("restic",)), "sftp_restore": (1.3, None, ("restic",)),
    "s3_full": (1.3, None, ("duplicity", "restic")), "s3_restore": (1.3, None, ("duplicity", "restic")),
}
RSS_LIMIT_MIB = 40


def table(results, tools, src_size, small_n, jobs, args):
    names = [t.name for t in tools]
    out = []

    def cell(key, name, i, unit, fmt="%.2f"):
        v = results.get(name, {}).get(key)
        if v is None:
            return ""
        if v == "–":
            return "–"
        return (fmt + " %s") % (med(v, i), unit)

    head_tools = " | ".join(names)
    for title, i, unit in (("Wall time", 0, "s"), ("CPU time (user+sys, with waited-for children)", 1, "s"),
                           ("Peak RSS (largest single process)", 2, "MiB")):
        out += ["", "### " + title, "", "| job | %s |" % head_tools, "|---|" + "---|" * len(names)]
        for key in [k for k in ALL_JOBS if k in jobs]:
            out.append("| %s | %s |" % (LABELS[key], " | ".join(cell(key, n, i, unit, "%.1f" if i == 2 else "%.2f")
                                                             for n in names)))
    # Ratios: peer wall time / ours (higher = ours faster) and the targets.
    out += ["", "### Ratios (peer wall time / ours; > 1 = ours faster) and issue 15's targets", "",
            "| job | %s | target | met |" % " | ".join("vs " + n for n in names if n != "ours"),
            "|---|" + "---|" * (len(names) + 1)]
    ours = results.get("ours", {})
    for key in [k for k in ALL_JOBS if k in jobs]:
        o = ours.get(key)
        if not o or o == "–":
            continue
        ow = med(o, 0)
        ratios = {}
        cells = []
        for n in names:
            if n == "ours":
                continue
            v = results.get(n, {}).get(key)
            if not v or v == "–":
                cells.append("–")
                continue
            ratios[n] = med(v, 0) / ow if ow else float("inf")
            cells.append("%.2f×" % ratios[n])
        tgt, met = "", ""
        if key in TARGETS:
            best_min, dup_min, peers = TARGETS[key]
            have = [ratios[p] for p in peers if p in ratios]
            parts, oks = [], []
            if have:
                parts.append("≥ %.1f× best of %s" % (best_min, "/".join(p for p in peers if p in ratios)))
                oks.append(min(have) >= best_min)
            if dup_min and "duplicity" in ratios:
                parts.append("≥ %.1f× duplicity" % dup_min)
                oks.append(ratios["duplicity"] >= dup_min)
            rss = med(o, 2)
            parts.append("RSS ≤ %d MiB" % RSS_LIMIT_MIB)
            oks.append(rss <= RSS_LIMIT_MIB)
            tgt, met = "; ".join(parts), "yes" if all(oks) else "**no**"
        out.append("| %s | %s | %s | %s |" % (LABELS[key], " | ".join(cells), tgt, met))
    if ours.get("size_full"):
        out += ["", "Repository after the full, MiB: " + ", ".join(
            "%s %.0f" % (n, med(results[n]["size_full"]) / 2**20) for n in names if results.get(n, {}).get("size_full")),
            "Incremental adds, MiB: " + ", ".join(
            "%s %.1f" % (n, med(results[n]["size_incr"]) / 2**20) for n in names if results.get(n, {}).get("size_incr"))]
    vers = []
    for n, cmd in (("duplicity", ["duplicity", "--version"]), ("restic", ["restic", "version"]),
                   ("borg", ["borg", "--version"])):
        if n in names:
            v = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.decode().strip()
            vers.append(v.splitlines()[0] if v else n)
    head = [
        "# duplicity-charm vs duplicity, restic, borg",
        "",
        "%s; %s; %d run(s), medians; mixed source %.0f MiB%s; binary %s." % (
            time.strftime("%Y-%m-%d %H:%M"), "QUICK (10× smaller)" if args.quick else "full size", args.runs,
            src_size / 2**20, ", small files %d × 1 KiB" % small_n if {"small_full", "small_incr"} & jobs else "",
            args.bin),
        "Versions: " + "; ".join(vers) + ".",
        "Encryption on for every tool (ours/duplicity symmetric GnuPG format, restic default, borg repokey); "
        "each restore into a fresh loop-mounted ext4; every restore compared with its source. "
        "SFTP restores and S3 restores restore the single full made by the job before. "
        "Servers' CPU (sshd, moto, borg serve) is not counted; '–': the tool cannot use that target.",
    ]
    return "\n".join(head + out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default="", help="comma-separated jobs (default: all): " + ",".join(ALL_JOBS))
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated tools (default: all)")
    ap.add_argument("--servers-env", default="", help="servers.env of scripts/test-servers.sh (SFTP and S3 jobs)")
    args = ap.parse_args()
    jobs = set(j for j in args.only.split(",") if j) or set(ALL_JOBS)
    bad = jobs - set(ALL_JOBS)
    if bad:
        sys.exit("bench: unknown job(s) %s; jobs are %s" % (",".join(sorted(bad)), ",".join(ALL_JOBS)))
    names = [t for t in args.tools.split(",") if t]
    if "ours" not in names or set(names) - set(TOOLS):
        sys.exit("bench: --tools must include ours and name only %s" % ",".join(TOOLS))
    srv = read_env(args.servers_env) if args.servers_env else None
    if not srv and jobs & {"sftp_full", "sftp_restore", "s3_full", "s3_restore"}:
        sys.exit("bench: SFTP/S3 jobs need --servers-env (bench/run.sh starts the test servers)")
    scale = 10 if args.quick else 1
    os.makedirs(args.dir, exist_ok=True)
    tag = "quick" if args.quick else "full"
    base = os.path.join(args.dir, "mixed-" + tag)
    smalld = os.path.join(args.dir, "small-" + tag)
    src_size = make("mixed", base, scale)
    small_n = 200000 // scale
    if {"small_full", "small_incr"} & jobs:
        make("small", smalld, scale)

    argv0 = {"ours": os.path.abspath(args.bin), "duplicity": "duplicity", "restic": "restic", "borg": "borg"}
    tools = [Tool(n, argv0[n], os.path.join(args.dir, "w-" + n), srv) for n in names]
    results = {}
    scenario_mixed(tools, base, args, scale, src_size, jobs, results)
    if {"small_full", "small_incr"} & jobs:
        scenario_small(tools, smalld, args.runs, jobs, results)
    for t in tools:
        t.reset()
        shutil.rmtree(t.work)

    md = table(results, tools, src_size, small_n, jobs, args)
    with open(args.out, "w") as f:
        f.write(md)
    print()
    print(md)
    print("bench: written to %s" % args.out)


if __name__ == "__main__":
    main()
