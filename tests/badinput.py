"""A seeded generator of malformed lab profiles, and a snapshot of what the host must keep.

Each case is a file (or a thing in a profile folder) with the part of the message that
must name where the problem is: ``settings.<key>``, ``line N``, ``file`` and so on.
"""
import os
import random
from dataclasses import dataclass
from pathlib import Path

import yaml

BASE = {
    "title": "Generated",
    "os": "linux",
    "description": "a generated profile",
    "sources": {"S": "a source"},
    "settings": {"net.core.somaxconn": {"value": 128, "source": "S"}},
    "linux": {"net.ipv4.tcp_fin_timeout": {"value": 30, "why": "a pin"}},
    "expect": {"listen_backlog": {"value": 129, "source": "S"}},
}
# keys that must never reach a file: each escapes /proc/sys/net, or is not a key at all
ESCAPING_KEYS = [
    "net./tmp/connlab-canary", "net.core/../../kernel/domainname", "net../../kernel/hostname",
    "net.core..somaxconn", "net.", ".net.core.somaxconn", "net.core.somaxconn.", "net/core/somaxconn",
    "net.core/somaxconn", "net.core.somaxconn/../../../../tmp/x", "net.\u2024core", "NET.core.somaxconn",
    "net.core.SOMAXCONN", "net.core.some maxconn", "net.core.x\ny", "net.core.x\x01", "net..", "net.~root",
    "net.$(touch /tmp/x)", "net.core.*", "net.core.`id`", "net.core.a;b", "kernel.domainname",
    "kernel.hostname", "fs.protected_regular", "vm.overcommit_memory", "net", "", " ", "net. core",
    "net.core.%2e%2e", "net.ipv4." + "a" * 300, "fs.nr_open/../../kernel/hostname", "fs..nr_open",
    "net.core.somaxconn\\..",
]
# kernel-wide keys: settings of a lab whose hosts have their own kernel (vm); a namespace provider refuses
# them when the lab is made, and the agent without --kernel-wide refuses the fs.* ones itself
KERNEL_WIDE_KEYS = ["fs.file-max", "fs.nr_open", "net.netfilter.nf_conntrack_max", "net.ipv4.tcp_mem",
                    "net.ipv4.tcp_max_orphans", "net.core.netdev_max_backlog"]
BAD_VALUES = [
    None, True, [], {}, [1, "x"], {"a": 1}, [[1]], 1.5, "", "   ", "a\nb", "x" * 5000, 10 ** 30, -10 ** 30,
    [True], ["1", "2"],
]
BAD_TEXT = [None, 1, True, [], {}, ["x"], {"a": "b"}, 2.5, "x" * 5000]
TOP_SHAPES = [[], "a string", 1, None, True, [{"title": "x"}]]


@dataclass
class Case:
    """One malformed input: how to make it, and the start of the place its error must name."""

    name: str
    where: str
    text: str | None = None
    data: bytes | None = None
    kind: str = "file"  # file | fifo | devzero | folder | loop | big


def _dump(doc: object) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=10 ** 6)


def _with(path: list, value: object) -> dict:
    doc = yaml.safe_load(_dump(BASE))
    node = doc
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node.get(key), dict) or key not in node else node[key]
    node[path[-1]] = value
    return doc


def _key_in(section: str, key: object, entry: dict) -> dict:
    doc = yaml.safe_load(_dump(BASE))
    doc[section] = {key: entry}
    return doc


def cases(seed: int = 20261202) -> list[Case]:
    """Every generated case (more than 300), in a fixed order for ``seed``."""
    rng = random.Random(seed)
    out: list[Case] = []
    for key in ESCAPING_KEYS:  # each key in a setting, in a pin
        setting = {"value": 1, "source": "S"}
        out.append(Case(f"setting {key!r}", "settings.", _dump(_key_in("settings", key, setting))))
        out.append(Case(f"pin {key!r}", "linux.", _dump(_key_in("linux", key, {"value": 1, "why": "w"}))))
    for key in (1, 2.5, True, None):  # keys that are not strings
        setting = {"value": 1, "source": "S"}
        out.append(Case(f"setting key {key!r}", "settings.", _dump(_key_in("settings", key, setting))))
        out.append(Case(f"top key {key!r}", "", _dump({**BASE, key: 1})))
    for value in BAD_VALUES:
        out.append(Case(f"setting value {value!r:.40}", "settings.net.core.somaxconn",
                        _dump(_with(["settings", "net.core.somaxconn", "value"], value))))
        out.append(Case(f"pin value {value!r:.40}", "linux.net.ipv4.tcp_fin_timeout",
                        _dump(_with(["linux", "net.ipv4.tcp_fin_timeout", "value"], value))))
        out.append(Case(f"expect value {value!r:.40}", "expect.listen_backlog",
                        _dump(_with(["expect", "listen_backlog", "value"], value))))
    for value in BAD_TEXT:
        for field in ("title", "os", "description"):
            out.append(Case(f"{field} {value!r:.40}", field, _dump(_with([field], value))))
        out.append(Case(f"source {value!r:.40}", "settings.net.core.somaxconn",
                        _dump(_with(["settings", "net.core.somaxconn", "source"], value))))
        out.append(Case(f"sources entry {value!r:.40}", "sources.S", _dump(_with(["sources", "S"], value))))
        out.append(Case(f"why {value!r:.40}", "linux.net.ipv4.tcp_fin_timeout",
                        _dump(_with(["linux", "net.ipv4.tcp_fin_timeout", "why"], value))))
        if value is not None:  # ended_by: null is the same as leaving it out
            out.append(Case(f"ended_by {value!r:.40}", "expect.listen_backlog",
                            _dump(_with(["expect", "listen_backlog", "ended_by"], value))))
        out.append(Case(f"note {value!r:.40}", "expect.listen_backlog",
                        _dump(_with(["expect", "listen_backlog", "note"], value))))
    for section in ("settings", "linux", "expect", "sources"):
        for value in ([1, 2], "text", 3, [{"a": 1}]):
            out.append(Case(f"{section} as {value!r}", section, _dump(_with([section], value))))
    for shape in TOP_SHAPES:
        out.append(Case(f"top level {shape!r}", "top level", _dump(shape)))
    out += [
        Case("unknown top key", "colour", _dump({**BASE, "colour": "blue"})),
        Case("name differs", "name", _dump({**BASE, "name": "other"})),
        Case("windows setting unknown", "settings.Tcpip.Nope",
             _dump({**BASE, "os": "windows", "settings": {"Tcpip.Nope": {"value": 1, "source": "S"}}})),
        Case("rlimit unknown", "settings.rlimit.stack",
             _dump(_key_in("settings", "rlimit.stack", {"value": 100, "source": "S"}))),
        Case("rlimit too small", "settings.rlimit.nofile",
             _dump(_key_in("settings", "rlimit.nofile", {"value": 1, "source": "S"}))),
        Case("rlimit huge", "settings.rlimit.nofile",
             _dump(_key_in("settings", "rlimit.nofile", {"value": 10 ** 20, "source": "S"}))),
        Case("unknown limit", "expect.warp", _dump(_with(["expect", "warp"], {"value": 1, "source": "S"}))),
        Case("entry missing source", "settings.net.core.somaxconn",
             _dump(_key_in("settings", "net.core.somaxconn", {"value": 1}))),
        Case("entry unknown key", "settings.net.core.somaxconn.extra",
             _dump(_key_in("settings", "net.core.somaxconn", {"value": 1, "source": "S", "extra": 1}))),
    ]
    text = _dump(BASE)
    raw = [  # shapes only raw YAML text (or bytes) can give
        ("duplicate top key", "line", text + "title: again\n"),
        ("duplicate setting", "line",
         text.replace("settings:\n", "settings:\n  net.core.somaxconn: {value: 1, source: S}\n", 1)),
        ("int tag", "line", text.replace("value: 128", "value: !!int abc")),
        ("float tag", "line", text.replace("value: 128", "value: !!float abc")),
        ("timestamp tag", "line", text.replace("value: 128", "value: !!timestamp 2020-99-99")),
        ("python tag", "line", text.replace("value: 128", "value: !!python/object/apply:os.system [id]")),
        ("binary tag", "settings.net.core.somaxconn", text.replace("value: 128", "value: !!binary aGk=")),
        ("set tag", "settings.net.core.somaxconn", text.replace("value: 128", "value: !!set {a, b}")),
        ("unknown tag", "line", text.replace("value: 128", "value: !nope 1")),
        ("source list", "settings.net.core.somaxconn.source", text.replace("source: S", "source: [S]", 1)),
        ("source map", "settings.net.core.somaxconn.source", text.replace("source: S", "source: {S: 1}", 1)),
        ("list key", "line", text + "? [a, b]\n: 1\n"),
        ("map key", "line", text + "? {a: 1}\n: 1\n"),
        ("deep list", "line", "title: x\nos: linux\nsettings: " + "[" * 5000 + "]" * 5000 + "\n"),
        ("deep map", "line", "title: x\nos: linux\nsettings: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n"),
        ("deep block", "line",
         "title: x\nos: linux\ndescription:\n" + "".join("  " * i + "- \n" for i in range(1, 80))),
        ("alias bomb", "line", "title: x\nos: linux\n" + "".join(
            f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}" if i else "lol"] * 9) + "]\n" for i in range(9))),
        ("many aliases", "line", "a: &a x\nb: [" + ", ".join(["*a"] * 100) + "]\n"),
        ("recursive alias", "line", "title: &t [*t]\nos: linux\n"),
        ("unclosed", "line", "title: T\nos: [unclosed\n"),
        ("bad indent", "line", "title: T\n  os: linux\n bad: 1\n"),
        ("tab indent", "line", "title: T\nsettings:\n\tnet.core.somaxconn: 1\n"),
        ("two documents", "line", text + "---\ntitle: second\n"),
        ("NUL", "line", text.replace("Generated", "Gen\x00erated")),
        ("control char", "line", text.replace("Generated", "Gen\x07erated")),
        ("merge of scalar", "line", text + "extra:\n  <<: 1\n"),
        ("anchor missing", "line", "title: *nope\nos: linux\n"),
        ("empty", "top level", ""),
        ("only comment", "top level", "# nothing\n"),
    ]
    out += [Case(name, where, t) for name, where, t in raw]
    out += [
        Case("latin-1", "line", data=text.encode() + "description: caf\u00e9\n".encode("latin-1")),
        Case("utf-16", "line", data=text.encode("utf-16")),
        Case("random bytes", "line", data=bytes(rng.randrange(256) for _ in range(300)) + b"\xff"),
        Case("cut in a multibyte char", "line", data=text.encode() + "x: \u00e9".encode()[:-1]),
        Case("FIFO", "file", kind="fifo"),
        Case("link to /dev/zero", "file", kind="devzero"),
        Case("a folder", "file", kind="folder"),
        Case("a link loop", "file", kind="loop"),
        Case("2 MB", "file", text=text + "description: " + "x" * (2 << 20) + "\n", kind="big"),
    ]
    # random combinations: a bad key and a bad value in random places, seeded
    sections = ["settings", "linux", "expect", "sources"]
    while len(out) < 340:
        section = rng.choice(sections)
        key = rng.choice(ESCAPING_KEYS + ["net.core.somaxconn", "listen_backlog", "S"])
        value = rng.choice(BAD_VALUES + BAD_TEXT)
        doc = yaml.safe_load(_dump(BASE))
        doc[section] = {key: value} if rng.random() < 0.5 else {key: {"value": value, "source": "S", "why": value}}
        # a random change may break the profile elsewhere first (a source no longer listed): any place
        out.append(Case(f"random {len(out)}: {section}.{key!r:.30} = {value!r:.30}", "", _dump(doc)))
    return out


def make(case: Case, folder: Path) -> Path:
    """Put ``case`` into ``folder`` as ``<n>.yaml``; return its path."""
    path = folder / "generated.yaml"
    if case.kind == "fifo":
        os.mkfifo(path)
    elif case.kind == "devzero":
        path.symlink_to("/dev/zero")
    elif case.kind == "folder":
        path.mkdir()
    elif case.kind == "loop":
        path.symlink_to(path)
    elif case.data is not None:
        path.write_bytes(case.data)
    else:
        path.write_text(case.text or "", encoding="utf-8")
    return path


SYSCTL_VOLATILE = {"/proc/sys/kernel/ns_last_pid"}


def host_snapshot(canaries: list[Path]) -> dict[str, str]:
    """Every writable sysctl of the host's namespace, the host and domain name, and the canaries."""
    out: dict[str, str] = {}
    for root, _, files in os.walk("/proc/sys"):
        for name in files:
            path = os.path.join(root, name)
            if path in SYSCTL_VOLATILE:
                continue
            try:
                if os.stat(path).st_mode & 0o200:
                    with open(path) as f:
                        out[path] = f.read()
            except OSError:
                continue
    out["uname"] = " ".join(os.uname())
    for canary in canaries:
        out[str(canary)] = canary.read_text() if canary.exists() else "<absent>"
    return out
