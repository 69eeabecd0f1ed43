#!/usr/bin/env python3
"""Prints the README's table of duplicity 3.2.1's options: every option its `--help` and per-command
`--help-*` screens list (read from the real program, installed by scripts/duplicity3.sh), with what this
program does with it. Fails when the help lists an option the table does not place, or the other way
round, so the table cannot drift from duplicity's own list.

    python3 scripts/duplicity-options-table.py > /tmp/table.md
"""
import re
import subprocess
import sys
from pathlib import Path

YES, NA = "supported", "not applicable"

# option -> (status, note). Notes say what differs, which backends honour it, or why it does not apply.
STATUS = {
    "--allow-source-mismatch": (YES, ""),
    "--archive-dir": (YES, ""),
    "--asynchronous-upload": (YES, "always on: volumes are sealed and uploaded on worker threads while the next is built"),
    "--azure-blob-tier": (YES, "the tier is set with each upload; with Archive, manifests and signatures keep the account's default tier (duplicity archives them too, which breaks incrementals)"),
    "--azure-max-block-size": (YES, "the block size of uploads above --azure-max-single-put-size (duplicity 3.2.1 passes the single-put size here instead, a bug)"),
    "--azure-max-connections": (YES, "blocks of one file sent at once; each is held in memory"),
    "--azure-max-single-put-size": (YES, "default 8 MiB"),
    "--b2-hide-files": (NA, "no b2 backend"),
    "--backend-retry-delay": (YES, "a fixed pause between attempts, as duplicity's; without it 2 s, doubled after each attempt"),
    "--cf-backend": (NA, "no cloudfiles backend"),
    "--check-remote": (YES, "the default: the archive dir follows the target, and before an incremental the target's last manifest is compared with the cached copy (as duplicity: volume numbers, host, directory; exit 5 on a difference)"),
    "--compare-data": (YES, ""),
    "--compression": (YES, "the default"),
    "--concurrency": (YES, "up to N volume uploads at once (threads, not processes; default and minimum 2); memory stays bounded"),
    "--config-dir": (YES, "accepted and checked; duplicity 3.2.1 only records the path and reads nothing from it, and neither do we"),
    "--copy-blocksize": (YES, "KiB per read when file://, sftp:// and ftp:// copy a file and when verify --compare-data compares contents (duplicity: also when restoring files; restore's writes here follow the tar stream); 1 to 1048576"),
    "--copy-links": (YES, "backups and verify follow symlinks; dangling links, loops of links and links to a directory above them are left out as duplicity does, but each with a warning (duplicity: silently, and it descends into the last until the path is too long)"),
    "--dry-run": (YES, ""),
    "--encrypt-key": (YES, ""),
    "--encrypt-secret-keyring": (YES, "also spelled --secret-keyring"),
    "--encrypt-sign-key": (YES, ""),
    "--encryption": (YES, "the default; overrides an earlier --no-encryption"),
    "--exclude": (YES, "also on restore, relative to the archive root"),
    "--exclude-device-files": (YES, "also on restore (the backed-up type and mtime)"),
    "--exclude-filelist": (YES, "also on restore, relative to the archive root"),
    "--exclude-if-present": (YES, "backup and verify; refused on restore, as by duplicity 3.2.1"),
    "--exclude-older-than": (YES, "also on restore (the backed-up type and mtime)"),
    "--exclude-other-filesystems": (YES, "backup and verify; refused on restore, as by duplicity 3.2.1"),
    "--exclude-regexp": (YES, "also on restore, relative to the archive root"),
    "--file-changed": (YES, "collection-status; prints the path and change as plain text where 3.2.1 prints Python byte strings (File: b'a.txt', b'New')"),
    "--file-prefix": (YES, "only files with exactly the given prefixes are read; the archive dir of a prefixed collection is a folder of its own"),
    "--file-prefix-archive": (YES, ""),
    "--file-prefix-jsonstat": (YES, ""),
    "--file-prefix-manifest": (YES, ""),
    "--file-prefix-signature": (YES, ""),
    "--files-changed": (YES, "the default"),
    "--files-from": (YES, "backup and verify; refused on restore, as by duplicity 3.2.1"),
    "--filter-globbing": (YES, ""),
    "--filter-ignorecase": (YES, ""),
    "--filter-literal": (YES, ""),
    "--filter-regexp": (YES, ""),
    "--filter-strictcase": (YES, ""),
    "--force": (YES, ""),
    "--ftp-passive": (YES, "our ftp client always uses passive mode"),
    "--ftp-regular": (YES, "refused with a message: our ftp client has no active mode"),
    "--full-if-n-inc": (YES, ""),
    "--full-if-older-than": (YES, ""),
    "--gpg-binary": (NA, "gpg is not run: OpenPGP is built in"),
    "--gpg-options": (YES, "honoured: --cipher-algo, --compress-algo (zip, zlib, bzip2, none), -z, --digest-algo, --s2k-*, --throw-keyids, --homedir, --keyring, --secret-keyring; harmless options (--batch, --pinentry-mode, ...) accepted, others refused by name"),
    "--help": (YES, "our own help"),
    "--help-backup": (YES, "ours: the options of backup"),
    "--help-cleanup": (YES, "ours: the options of cleanup"),
    "--help-collection-status": (YES, "ours: the options of collection-status"),
    "--help-full": (YES, "ours: the options of full"),
    "--help-inc": (YES, "ours: the options of inc"),
    "--help-list-current-files": (YES, "ours: the options of list-current-files"),
    "--help-remove-all-but-n-full": (YES, "ours: the options of remove-all-but-n-full"),
    "--help-remove-all-inc-of-but-n-full": (YES, "ours: the options of remove-all-inc-of-but-n-full"),
    "--help-remove-older-than": (YES, "ours: the options of remove-older-than"),
    "--help-restore": (YES, "ours: the options of restore"),
    "--help-urls": (YES, "ours: the URL forms we support"),
    "--help-verify": (YES, "ours: the options of verify"),
    "--hidden-encrypt-key": (YES, ""),
    "--idr-fakeroot": (NA, "no idrive backend"),
    "--ignore-errors": (YES, "restore: a missing or damaged volume is skipped and failed chown/chmod/utime are warnings, exit 0 as 3.2.1; each file it costs is left out (never cut or half-patched) and named on stderr"),
    "--imap-full-address": (NA, "no imap backend"),
    "--imap-mailbox": (NA, "no imap backend"),
    "--include": (YES, "also on restore, relative to the archive root"),
    "--include-filelist": (YES, "also on restore, relative to the archive root"),
    "--include-regexp": (YES, "also on restore, relative to the archive root"),
    "--jsonstat": (YES, "backups: the same keys as 3.2.1 (nulls included); remove-* and cleanup delete the jsonstat files with their sets, and collection-status --show-changes-in-set N --jsonstat prints them, as 3.2.1"),
    "--log-fd": (YES, "duplicity's machine-readable records (`LEVEL CODE`, `. ` message lines)"),
    "--log-file": (YES, "appended, duplicity's machine-readable records"),
    "--log-timestamp": (YES, "time and level before each message on stderr"),
    "--max-blocksize": (YES, "with it, 3.2.1's block size (square root of the file size, rounded up to 512, capped at N); without it, 0.8.22's (512 to 2048)"),
    "--metadata-sync-mode": (YES, "partial (the default, as duplicity 3) fetches only the metadata of the chain at -t (now for backups); full fetches all. The charm keeps full"),
    "--mf-purge": (NA, "no mediafire backend"),
    "--mp-segment-size": (YES, "accepted without effect: duplicity uses it for swift only, a backend we do not have"),
    "--name": (YES, ""),
    "--no-check-remote": (YES, "the archive dir is used as it is: nothing fetched or dropped, no manifest compared. The target is still listed (duplicity lists the archive dir instead); an incremental whose chain the archive dir lacks starts a new full, as duplicity's"),
    "--no-compression": (YES, "unencrypted files stored as they are (.difftar, .sigtar); encrypted ones without compression inside"),
    "--no-encryption": (YES, ""),
    "--no-files-changed": (YES, "the manifest's file list is empty (Filelist 0)"),
    "--no-print-statistics": (YES, ""),
    "--no-restore-ownership": (YES, "also 0.8's --do-not-restore-ownership"),
    "--null-separator": (YES, ""),
    "--num-retries": (YES, "attempts of each backend operation (default 5)"),
    "--numeric-owner": (YES, ""),
    "--par2-options": (NA, "no par2 wrapper"),
    "--par2-redundancy": (NA, "no par2 wrapper"),
    "--par2-volumes": (NA, "no par2 wrapper"),
    "--path-to-restore": (YES, "also -r and 0.8's --file-to-restore"),
    "--print-statistics": (YES, "the default; the same block, fields and counts as duplicity 3.2.1"),
    "--progress": (YES, "a bar on a terminal, a line per volume otherwise; restores too"),
    "--progress-rate": (YES, ""),
    "--rename": (YES, "paths that would leave the target (.., absolute) are refused"),
    "--restore-ownership": (YES, "as root only, as duplicity"),
    "--restore-time": (YES, "also -t and --time"),
    "--rsync-options": (YES, "options that would break the backend are refused"),
    "--s3-endpoint-url": (YES, ""),
    "--s3-kms-grant": (YES, "sent as x-amz-grant-full-control with KMS encryption"),
    "--s3-kms-key-id": (YES, ""),
    "--s3-multipart-chunk-size": (YES, "MiB, at least 5; files above it go up in parts of that size (default here: 32 MiB threshold, 16 MiB parts)"),
    "--s3-multipart-max-procs": (YES, "parts sent at once over one connection pool (default 1)"),
    "--s3-region-name": (YES, ""),
    "--s3-unencrypted-connection": (YES, ""),
    "--s3-use-deep-archive": (YES, "volumes only; manifests and signatures stay in STANDARD, as duplicity"),
    "--s3-use-glacier": (YES, "volumes only; manifests and signatures stay in STANDARD, as duplicity; a restore says to restore the volumes on the S3 side first"),
    "--s3-use-glacier-ir": (YES, "volumes only; manifests and signatures stay in STANDARD, as duplicity"),
    "--s3-use-ia": (YES, "when several --s3-use-* are given, duplicity's order picks one: rrs, ia, onezone-ia, glacier, glacier-ir, deep-archive"),
    "--s3-use-onezone-ia": (YES, ""),
    "--s3-use-rrs": (YES, ""),
    "--s3-use-server-side-encryption": (YES, "AES256 (S3-managed keys)"),
    "--s3-use-server-side-kms-encryption": (YES, "needs --s3-kms-key-id (refused without it, before anything is stored)"),
    "--scp-command": (YES, "accepted without effect: sftp/scp use an in-process SSH client, no command is run"),
    "--sftp-command": (YES, "as --scp-command"),
    "--show-changes-in-set": (YES, "collection-status; a set the chain does not have is an error naming the range (3.2.1 crashes); with --jsonstat, the sets' statistics as JSON, text for text as 3.2.1 (a negative N: every set)"),
    "--sign-key": (YES, ""),
    "--skip-if-no-change": (YES, "incrementals; nothing is stored, the jsonstat is printed with skipped_inc true"),
    "--ssh-askpass": (YES, "accepted: the password comes from the URL or FTP_PASSWORD (no terminal prompt in an in-process client)"),
    "--ssh-options": (YES, ""),
    "--ssl-cacert-file": (YES, "s3 trusts these CA certificates besides the system's (duplicity uses it for webdav and lftp, backends we do not have); azure uses the system's roots"),
    "--ssl-cacert-path": (YES, "as --ssl-cacert-file, every PEM file in the directory"),
    "--ssl-no-check-certificate": (YES, "accepted with a warning, certificates are still checked: duplicity uses it for webdav and lftp only"),
    "--swift-storage-policy": (NA, "no swift backend"),
    "--tempdir": (YES, "checked first; volumes in progress stay in the archive dir"),
    "--time-separator": (YES, "in the time strings given (-t, remove-older-than); file names with another separator are not read"),
    "--timeout": (YES, "sftp/scp, rsync (its --timeout/--contimeout, ssh's ConnectTimeout), ftp's control connection, s3, azure; file:// has none"),
    "--use-agent": (NA, "gpg is not run: keys are unlocked with PASSPHRASE / SIGN_PASSPHRASE"),
    "--use-gpgsm": (NA, "gpgsm's PKCS#7 format is not written"),
    "--verbosity": (YES, "also -v; 0-9, e/w/n/i/d or the level's name"),
    "--version": (YES, "also -V; prints our version"),
    "--volsize": (YES, ""),
    "--webdav-headers": (NA, "no webdav backend"),
}

COMMANDS = ["backup", "cleanup", "collection-status", "full", "inc", "list-current-files",
            "remove-all-but-n-full", "remove-all-inc-of-but-n-full", "remove-older-than", "restore",
            "verify", "urls"]


def main() -> int:
    root = Path(__file__).resolve().parent
    exe = subprocess.run(["bash", str(root / "duplicity3.sh")], check=True, capture_output=True,
                         text=True).stdout.strip()
    seen = {}
    for flag in ["--help"] + [f"--help-{c}" for c in COMMANDS]:
        out = subprocess.run([exe, flag], capture_output=True, text=True).stdout
        screen = "general" if flag == "--help" else flag[len("--help-"):]
        for line in out.splitlines():
            m = re.match(r"^  (-\w, )?(--[a-z0-9-]+)", line)
            if m:
                seen.setdefault(m.group(2), set()).add(screen)
    missing = sorted(set(seen) - set(STATUS))
    stale = sorted(set(STATUS) - set(seen))
    if missing or stale:
        print(f"not placed: {missing}; not in duplicity's help: {stale}", file=sys.stderr)
        return 1
    counts = {}
    print("| duplicity 3.2.1 option | here | note |")
    print("|---|---|---|")
    for opt in sorted(seen):
        status, note = STATUS[opt]
        counts[status] = counts.get(status, 0) + 1
        print(f"| `{opt}` | {status} | {note} |")
    print()
    print(f"{len(seen)} options: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main())
