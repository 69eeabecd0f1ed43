#!/usr/bin/env python3
"""Deterministic benchmark datasets (fixed seed), and the ~1% mutation step.

  make_dataset.py mixed DIR [--scale N]    ~20,000 text files of 1-16 KiB, 40 files of 4-16 MiB mixing text and
                                           random bytes, one 256 MiB half-random file (sizes / N with --scale)
  make_dataset.py mutate DIR [--scale N]   200 in-place edits, 5 appends of 1.5 MiB, a 1 MiB rewrite in the
                                           middle of the big file, 50 deletions, 50 additions (counts / N)
  make_dataset.py small DIR [--scale N]    200,000 files of 1 KiB (count / N)

Same arguments -> same bytes. Mutated files get the current time as mtime (the incremental must see them).
"""

import argparse
import os
import random
import sys

KIB = 1024
MIB = 1024 * KIB
SEED = 20240601

WORDS = (
    "backup volume chain restore delta manifest signature juju unit charm relation config action "
    "INFO WARNING ERROR DEBUG cron hourly daily weekly retention s3 azure sftp rsync file gpg"
).split()


def text_corpus(rng, size):
    """Log-like lines, compressible like real logs and source files."""
    out = []
    n = 0
    i = 0
    while n < size:
        line = "2024-06-01T%02d:%02d:%02d.%06d %s [%s] %s\n" % (
            (i // 3600) % 24,
            (i // 60) % 60,
            i % 60,
            rng.randrange(1000000),
            rng.choice(WORDS[12:16]),
            rng.choice(WORDS),
            " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 14))),
        )
        out.append(line)
        n += len(line)
        i += 1
    return "".join(out).encode()[:size]


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def mixed_bytes(rng, corpus, size, seg):
    """Alternating segments of random bytes and text, `seg` bytes each."""
    parts = []
    n = 0
    k = 0
    while n < size:
        m = min(seg, size - n)
        if k % 2 == 0:
            parts.append(rng.randbytes(m))
        else:
            off = rng.randrange(0, len(corpus) - m) if len(corpus) > m else 0
            chunk = corpus[off:off + m]
            while len(chunk) < m:
                chunk += corpus[: m - len(chunk)]
            parts.append(chunk)
        n += m
        k += 1
    return b"".join(parts)


def small_text(rng, corpus, lo, hi):
    size = rng.randrange(lo, hi + 1)
    off = rng.randrange(0, len(corpus) - size)
    return corpus[off:off + size]


def mixed(d, scale):
    rng = random.Random(SEED)
    corpus = text_corpus(rng, 8 * MIB)
    n_small = 20000 // scale
    for i in range(n_small):
        write(os.path.join(d, "small", "d%03d" % (i // 100), "f%05d.txt" % i), small_text(rng, corpus, 1 * KIB, 16 * KIB))
    for i in range(max(1, 40 // scale)):
        size = rng.randrange(4 * MIB, 16 * MIB + 1) // scale
        write(os.path.join(d, "medium", "m%02d.dat" % i), mixed_bytes(rng, corpus, size, max(64 * KIB, MIB // scale)))
    big = 256 * MIB // scale
    path = os.path.join(d, "big", "big.bin")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    seg = 16 * MIB // scale
    with open(path, "wb") as f:
        for k in range(big // seg):
            if k % 2 == 0:
                f.write(rng.randbytes(seg))
            else:
                f.write(mixed_bytes(rng, corpus, seg, seg))  # one text segment
    return n_small


def mutate(d, scale):
    rng = random.Random(SEED + 1)
    corpus = text_corpus(rng, 2 * MIB)
    n_small = 20000 // scale
    names = [os.path.join(d, "small", "d%03d" % (i // 100), "f%05d.txt" % i) for i in range(n_small)]
    picked = rng.sample(range(n_small), (200 + 50) // scale)
    edits, deletions = picked[: 200 // scale], picked[200 // scale:]
    for i in edits:  # in-place edit: overwrite up to 200 bytes somewhere, same size
        p = names[i]
        size = os.path.getsize(p)
        n = min(200, size)
        off = rng.randrange(0, size - n + 1)
        with open(p, "r+b") as f:
            f.seek(off)
            f.write(corpus[rng.randrange(0, len(corpus) - n):][:n])
    for i in deletions:
        os.remove(names[i])
    for k in range(max(1, 50 // scale)):
        write(os.path.join(d, "small", "new", "n%03d.txt" % k), small_text(rng, corpus, 1 * KIB, 16 * KIB))
    mediums = sorted(os.listdir(os.path.join(d, "medium")))
    for name in mediums[: min(5, len(mediums))]:
        with open(os.path.join(d, "medium", name), "ab") as f:
            f.write(mixed_bytes(rng, corpus, (3 * MIB // 2) // scale, 256 * KIB // scale))
    big = os.path.join(d, "big", "big.bin")
    size = os.path.getsize(big)
    with open(big, "r+b") as f:
        f.seek(size // 2)
        f.write(rng.randbytes(MIB // scale))


def small(d, scale):
    rng = random.Random(SEED + 2)
    corpus = text_corpus(rng, 4 * MIB)
    n = 200000 // scale
    for i in range(n):
        off = rng.randrange(0, len(corpus) - KIB)
        write(os.path.join(d, "d%03d" % (i // 1000), "f%06d.txt" % i), corpus[off:off + KIB])
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["mixed", "mutate", "small"])
    ap.add_argument("dir")
    ap.add_argument("--scale", type=int, default=1, help="divide sizes and counts by this (10 = --quick)")
    a = ap.parse_args()
    if a.kind != "mutate" and os.path.exists(a.dir) and os.listdir(a.dir):
        sys.exit("make_dataset: %s is not empty" % a.dir)
    {"mixed": mixed, "mutate": mutate, "small": small}[a.kind](a.dir, a.scale)


if __name__ == "__main__":
    main()
