#!/usr/bin/env python3
"""duplicity 0.8.22 vs duplicity-charm, side by side in one run (called by bench/run.sh).

Scenario 1 (mixed ~1 GiB): full backup, incremental after the ~1% mutation, full restore.
Scenario 2 (200,000 files of 1 KiB): full backup, incremental with nothing changed.
Each measured with /usr/bin/time (wall, user+sys CPU, peak RSS of the largest process in the tree),
plus the repository size; medians of BENCH_RUNS runs; the tools alternate which goes first.
Every restore is compared with its source (diff -r): a wrong result fails the benchmark.
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


class Tool:
    def __init__(self, name, argv0, work):
        self.name = name
        self.argv0 = argv0
        self.work = work

    def env(self):
        e = dict(os.environ)
        e["PASSPHRASE"] = PASSPHRASE
        e["GNUPGHOME"] = os.path.join(self.work, "gnupg")
        e["HOME"] = os.path.join(self.work, "home")
        e["TMPDIR"] = os.path.join(self.work, "tmp")
        e["LC_ALL"] = "C.UTF-8"
        return e

    def reset(self):
        if os.path.isdir(self.work):
            subprocess.run(["gpgconf", "--kill", "all"], env=self.env(), stderr=subprocess.DEVNULL)
            shutil.rmtree(self.work)
        for d in ("gnupg", "home", "tmp"):
            os.makedirs(os.path.join(self.work, d), mode=0o700)

    @property
    def repo(self):
        return os.path.join(self.work, "repo")

    @property
    def url(self):
        return "file://" + self.repo

    def timed(self, args, label):
        """Run `tool args` under /usr/bin/time; returns (wall s, cpu s, peak RSS MiB)."""
        out = os.path.join(self.work, "time.txt")
        log = os.path.join(self.work, "log-%s.txt" % label)
        cmd = ["/usr/bin/time", "-f", "%e %U %S %M", "-o", out, self.argv0, args[0],
               "--archive-dir", os.path.join(self.work, "cache")] + args[1:]
        with open(log, "wb") as f:
            r = subprocess.run(cmd, env=self.env(), stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            sys.stdout.write(open(log, errors="replace").read()[-3000:])
            sys.exit("bench: %s %s failed (exit %d); log: %s" % (self.name, label, r.returncode, log))
        wall, user, sys_, rss = open(out).read().split()[-4:]
        return float(wall), float(user) + float(sys_), int(rss) / 1024.0


def warm(path):
    """Read the whole tree once so both tools start from the same (warm) page cache."""
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


def scenario_mixed(tools, base, src_base, scale, runs, results):
    # Every run gets its own copy of the source and its own restore directory, all deleted at the end:
    # ext4 makes file creation slow for ~30 s after a mass deletion (it skips recently freed inodes), which
    # would otherwise land on whichever tool restores next.
    leftovers = []
    for run in range(runs):
        order = tools if run % 2 == 0 else tools[::-1]
        for tool in order:
            tool.reset()
            src = "%s-%d-%s" % (src_base, run, tool.name)
            leftovers.append(src)
            sh(["cp", "-a", base, src])
            warm(src)
            r = results.setdefault(tool.name, {})
            r.setdefault("full", []).append(tool.timed(["full", src, tool.url], "full"))
            r.setdefault("size_full", []).append(du(tool.repo))
            sh([sys.executable, os.path.join(HERE, "make_dataset.py"), "mutate", src, "--scale", str(scale)])
            time.sleep(1)
            warm(src)
            r.setdefault("incr", []).append(tool.timed(["incremental", src, tool.url], "incr"))
            r.setdefault("size_incr", []).append(du(tool.repo) - r["size_full"][-1])
            dst = "%s-restored-%d-%s" % (src_base, run, tool.name)
            leftovers.append(dst)
            r.setdefault("restore", []).append(tool.timed(["restore", tool.url, dst], "restore"))
            ok, diff = same_tree(src, dst)
            if not ok:
                sys.exit("bench: %s restore differs from the source:\n%s" % (tool.name, diff))
            print("bench: run %d %-10s full %.1f s, incr %.1f s, restore %.1f s" % (
                run + 1, tool.name, r["full"][-1][0], r["incr"][-1][0], r["restore"][-1][0]), flush=True)
    for d in leftovers:
        shutil.rmtree(d, ignore_errors=True)


def scenario_small(tools, src, runs, results):
    warm(src)
    for run in range(runs):
        order = tools if run % 2 == 0 else tools[::-1]
        for tool in order:
            tool.reset()
            r = results.setdefault(tool.name, {})
            r.setdefault("small_full", []).append(tool.timed(["full", src, tool.url], "small-full"))
            time.sleep(1)
            r.setdefault("small_incr", []).append(tool.timed(["incremental", src, tool.url], "small-incr"))
            print("bench: run %d %-10s small files: full %.1f s, no-change incr %.1f s" % (
                run + 1, tool.name, r["small_full"][-1][0], r["small_incr"][-1][0]), flush=True)


def med(xs, i=None):
    return statistics.median([x[i] for x in xs] if i is not None else xs)


def table(results, src_size, small_n, args):
    d, o = results["duplicity"], results["ours"]
    rows = []

    def row(what, dv, ov, unit, ratio, target=""):
        rows.append("| %s | %.2f %s | %.2f %s | %.2f× | %s |" % (what, dv, unit, ov, unit, ratio, target))

    def safe(a, b):
        return a / b if b else float("inf")

    for key, label, tgt in (("full", "full backup", "≥ 5×"), ("incr", "incremental (~1% changed)", "≥ 2.7×"),
                            ("restore", "full restore", "≥ 3.4×"),
                            ("small_full", "%d × 1 KiB: full" % small_n, "ours ≤ 12 s"),
                            ("small_incr", "%d × 1 KiB: no-change incremental" % small_n, "ours ≤ 2 s")):
        if key not in d:
            continue
        dw, ow = med(d[key], 0), med(o[key], 0)
        row(label + " — wall", dw, ow, "s", safe(dw, ow), tgt)
        dc, oc = med(d[key], 1), med(o[key], 1)
        row(label + " — CPU (user+sys)", dc, oc, "s", safe(dc, oc))
        dr, orss = med(d[key], 2), med(o[key], 2)
        row(label + " — peak RSS", dr, orss, "MiB", safe(orss, dr), "ours ≤ 40 MiB" if key in ("full", "incr", "restore") else "")
    if "size_full" in d:
        df, of = med(d["size_full"]) / 2**20, med(o["size_full"]) / 2**20
        row("repository after full", df, of, "MiB", safe(of, df), "≤ 1.05×")
        di, oi = med(d["size_incr"]) / 2**20, med(o["size_incr"]) / 2**20
        row("incremental set size", di, oi, "MiB", safe(oi, di))
    head = [
        "# duplicity-charm vs duplicity 0.8.22",
        "",
        "%s; %s; %d run(s), medians; source %.0f MiB; symmetric encryption, file:// target on the same disk; "
        "warm page cache for both." % (time.strftime("%Y-%m-%d %H:%M"), "QUICK (10× smaller)" if args.quick else "full size",
                                       args.runs, src_size / 2**20),
        "Ratios: duplicity / ours for time (higher = ours faster), ours / duplicity for RSS and size (lower = ours smaller).",
        "Peak RSS is GNU time's: the largest single process of the tree (duplicity's gpg children are separate).",
        "",
        "| measure | duplicity 0.8.22 | ours | ratio | target |",
        "|---|---|---|---|---|",
    ]
    if "size_full" in d:
        head.insert(4, "Repository / source: duplicity %.2f, ours %.2f." % (
            med(d["size_full"]) / src_size, med(o["size_full"]) / src_size))
    return "\n".join(head + rows) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    scale = 10 if args.quick else 1
    os.makedirs(args.dir, exist_ok=True)
    tag = "quick" if args.quick else "full"
    base = os.path.join(args.dir, "mixed-" + tag)
    smalld = os.path.join(args.dir, "small-" + tag)
    src_size = make("mixed", base, scale)
    make("small", smalld, scale)
    small_n = 200000 // scale

    tools = [Tool("duplicity", "duplicity", os.path.join(args.dir, "w-duplicity")),
             Tool("ours", os.path.abspath(args.bin), os.path.join(args.dir, "w-ours"))]
    results = {}
    scenario_mixed(tools, base, os.path.join(args.dir, "src"), scale, args.runs, results)
    scenario_small(tools, smalld, args.runs, results)
    for t in tools:
        t.reset()
        shutil.rmtree(t.work)

    md = table(results, src_size, small_n, args)
    with open(args.out, "w") as f:
        f.write(md)
    print()
    print(md)
    print("bench: written to %s" % args.out)


if __name__ == "__main__":
    main()
