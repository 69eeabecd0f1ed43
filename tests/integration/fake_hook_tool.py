# A fake Juju hook tool (and fake systemctl/apt-get) for the charm's end-to-end tests. One script, linked under
# each tool's name. It answers like jujuc (juju-contract.md §2): JSON with sorted keys for --format=json,
# "ERROR <msg>" on stderr with rc 2 for flag/argument misuse and rc 1 for runtime errors. Every call is
# appended to <state>/calls.jsonl; <state> is ../juju next to this script's directory.
import json
import os
import re
import sys

TOOL = os.path.basename(sys.argv[0])
STATE = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "juju")

# tool -> (flags taking a value, boolean flags)
SPEC = {
    "config-get": ({"--format", "-o", "--output"}, {"-a", "--all"}),
    "status-set": (set(), {"--application"}),
    "application-version-set": (set(), set()),
    "juju-log": ({"-l", "--log-level", "--format"}, {"--debug"}),
    "is-leader": ({"--format", "-o", "--output"}, set()),
    "action-get": ({"--format", "-o", "--output"}, set()),
    "action-set": (set(), set()),
    "action-log": (set(), set()),
    "action-fail": (set(), set()),
    "relation-ids": ({"--format", "-o", "--output"}, set()),
    "relation-list": ({"--format", "-o", "--output", "-r", "--relation"}, {"--app"}),
    "relation-get": ({"--format", "-o", "--output", "-r", "--relation"}, {"--app"}),
    "relation-set": ({"-r", "--relation", "--file", "--format"}, {"--app"}),
    "secret-get": ({"--format", "-o", "--output", "--label"}, {"--peek", "--refresh"}),
}


def load(name, default):
    try:
        with open(os.path.join(STATE, name)) as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def save(name, value):
    with open(os.path.join(STATE, name), "w") as f:
        json.dump(value, f, sort_keys=True)


def append(name, value):
    with open(os.path.join(STATE, name), "a") as f:
        f.write(json.dumps(value, sort_keys=True) + "\n")


def fail(msg, rc):
    sys.stderr.write("ERROR %s\n" % msg)
    sys.exit(rc)


def parse(args):
    with_value, boolean = SPEC[TOOL]
    flags, pos, i = {}, [], 0
    while i < len(args):
        a = args[i]
        if a == "--":
            pos.extend(args[i + 1:])
            break
        if a.startswith("-") and a != "-":
            name, eq, val = a.partition("=")
            if name in with_value:
                if not eq:
                    i += 1
                    if i >= len(args):
                        fail("option needs an argument: %s" % name, 2)
                    val = args[i]
                flags[name] = val
            elif name in boolean:
                if eq and val.lower() not in ("true", "false", "1", "0", "t", "f"):
                    fail('invalid boolean value "%s" for %s' % (val, name), 2)
                flags[name] = (val.lower() in ("true", "1", "t")) if eq else True
            else:
                fail("option provided but not defined: %s" % name, 2)
        else:
            pos.append(a)
        i += 1
    fmt = flags.get("--format", "smart")
    if fmt not in ("smart", "yaml", "json"):
        fail('invalid value "%s" for option --format: unknown format "%s"' % (fmt, fmt), 2)
    return flags, pos


def out(flags, value):
    if flags.get("--format", "smart") != "json":
        # The charm must always ask for JSON; anything else is a bug the tests should see.
        fail("fake %s: only --format=json is implemented" % TOOL, 3)
    sys.stdout.write(json.dumps(value, sort_keys=True, separators=(",", ":")) + "\n")


def extra(pos, allowed):
    if len(pos) > allowed:
        fail("unrecognized args: [%s]" % " ".join('"%s"' % p for p in pos[allowed:]), 2)


def in_action():
    if not os.environ.get("JUJU_ACTION_NAME"):
        fail("not running an action", 1)


def main():
    args = sys.argv[1:]
    stdin = None
    if TOOL == "relation-set" and "-" in args:
        stdin = sys.stdin.read()
    append("calls.jsonl", {"tool": TOOL, "args": args, "stdin": stdin})
    if TOOL in load("failing.json", []):
        fail("%s: injected failure" % TOOL, 1)

    if TOOL == "systemctl":
        enabled = set(load("enabled.json", []))
        active = set(load("active.json", []))
        cmd = [a for a in args if not a.startswith("-")]
        now = "--now" in args
        if cmd and cmd[0] == "is-enabled":
            sys.exit(0 if cmd[1] in enabled else 1)
        if cmd and cmd[0] == "is-active":
            sys.exit(0 if cmd[1] in active else 3)
        if cmd and cmd[0] == "enable":
            enabled.add(cmd[1])
            if now:
                active.add(cmd[1])
        if cmd and cmd[0] == "disable":
            enabled.discard(cmd[1])
            if now:
                active.discard(cmd[1])
        if cmd and cmd[0] in ("start", "restart"):
            active.add(cmd[1])
        if cmd and cmd[0] == "stop":
            active.discard(cmd[1])
        save("enabled.json", sorted(enabled))
        save("active.json", sorted(active))
        return
    if TOOL == "apt-get":
        return

    flags, pos = parse(args)
    if TOOL == "config-get":
        extra(pos, 1)
        config = load("config.json", {})
        if pos and flags.get("-a") or pos and flags.get("--all"):
            fail('cannot use argument --all together with key "%s"' % pos[0], 2)
        out(flags, config.get(pos[0]) if pos else config)
    elif TOOL == "status-set":
        if not pos:
            fail("invalid args, require <status> [message]", 2)
        extra(pos, 2)
        if pos[0] not in ("maintenance", "blocked", "waiting", "active"):
            fail('invalid status "%s", expected one of [maintenance blocked waiting active]' % pos[0], 2)
        if flags.get("--application") and not load("leader.json", False):
            fail("this unit is not the leader", 1)
        append("status.jsonl", {"status": pos[0], "message": pos[1] if len(pos) > 1 else ""})
    elif TOOL == "application-version-set":
        if not pos:
            fail("no version specified", 2)
        extra(pos, 1)
        save("version.json", pos[0])
    elif TOOL == "juju-log":
        if not pos:
            fail("no message specified", 2)
        level = flags.get("-l", flags.get("--log-level", "INFO"))
        if flags.get("--debug"):
            level = "DEBUG"
        append("logs.jsonl", {"level": level, "message": " ".join(pos)})
    elif TOOL == "is-leader":
        extra(pos, 0)
        out(flags, bool(load("leader.json", False)))
    elif TOOL == "action-get":
        in_action()
        extra(pos, 1)
        params = load("action-params.json", {})
        out(flags, params.get(pos[0]) if pos else params)
    elif TOOL == "action-set":
        in_action()
        results = load("action-results.json", {})
        for p in pos:
            k, eq, v = p.partition("=")
            if not eq:
                fail('argument "%s" must be of the form key...=value' % p, 2)
            for seg in k.split("."):
                if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", seg):
                    fail('key "%s" must start and end with lowercase alphanumeric, and contain only '
                         'lowercase alphanumeric, hyphens and periods' % k, 2)
                if seg in ("stdout", "stdout-encoding", "stderr", "stderr-encoding"):
                    fail('cannot set reserved action key "%s"' % seg, 2)
            results[k] = v
        save("action-results.json", results)
    elif TOOL == "action-log":
        in_action()
        if not pos:
            fail("no message specified", 2)
        append("action-log.jsonl", " ".join(pos))
    elif TOOL == "action-fail":
        in_action()
        extra(pos, 1)
        save("action-failed.json", pos[0] if pos else "action failed without reason given, check action for errors")
    elif TOOL == "relation-ids":
        extra(pos, 1)
        if not pos and not os.environ.get("JUJU_RELATION"):
            fail("no endpoint name specified", 2)
        ep = pos[0] if pos else os.environ["JUJU_RELATION"]
        out(flags, sorted(r for r in load("relations.json", {}) if r.split(":")[0] == ep))
    elif TOOL in ("relation-list", "relation-get", "relation-set"):
        rid = flags.get("-r", flags.get("--relation", os.environ.get("JUJU_RELATION_ID", "")))
        if not rid:
            fail("no relation id specified", 2)
        rels = load("relations.json", {})
        if rid not in rels:
            fail('invalid value "%s" for option -r: relation not found' % rid, 2)
        if TOOL == "relation-list":
            extra(pos, 0)
            out(flags, rels[rid])
        elif TOOL == "relation-get":
            out(flags, {})
        else:
            append("relation-set.jsonl", {"id": rid, "data": json.loads(stdin) if stdin else {}, "args": pos})
    elif TOOL == "secret-get":
        # secrets.json holds each secret's newest revision; secret-denied.json the IDs not granted to us.
        # Like Juju, the first read pins the revision it saw (secret-pinned.json) and later reads answer
        # that one until --refresh pins the newest; --peek reads the newest once without pinning.
        if not pos:
            fail("require either a secret URI or label", 2)
        extra(pos, 2)
        if flags.get("--peek") and flags.get("--refresh"):
            fail("specify one of --peek or --refresh but not both", 2)
        if not pos[0].startswith("secret:"):
            fail('secret URI "%s" not valid' % pos[0], 2)
        if pos[0] in load("secret-denied.json", []):
            fail("permission denied", 1)
        secrets = load("secrets.json", {})
        if pos[0] not in secrets:
            fail('secret "%s" not found' % pos[0].split(":", 1)[1], 1)
        pinned = load("secret-pinned.json", {})
        content = secrets[pos[0]]
        if not flags.get("--peek"):
            if pos[0] in pinned and not flags.get("--refresh"):
                content = pinned[pos[0]]
            pinned[pos[0]] = content
            save("secret-pinned.json", pinned)
        if len(pos) > 1:
            content = content.get(pos[1])
        out(flags, content)


main()
