"""``connlab probe``, ``connlab sheet`` and ``connlab up``: labs outside pytest.

``probe`` runs one limit's probe on a fresh lab and prints the same table (and, with
``--json``, the same JSON row) as a pytest run; ``sheet`` runs every probe that can take
a target against your program, one lab each, and prints one table: the limit sheet of
that server under that profile. ``up`` keeps a lab standing until Ctrl-C or
``connlab down``.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

from .errors import ConnlabError
from .lab.rundir import LOCK_DIR, private_dir
from .profiles.limits import CATALOG
from .report import baseline, jsonfile, plots, table
from .scripted import standalone_lab

UP_DIR = LOCK_DIR / "up"  # connlab up: one record per standing lab (its pid), for connlab down
UP_BOUND_S = 24 * 3600  # a lab kept up by `connlab up` comes down by itself after a day


def _target_argv(command: str | None, port: int | None) -> list[str] | None:
    if command is None:
        if port is not None:
            raise SystemExit("connlab: --port goes with --target CMD (the program that listens on it)")
        return None
    if port is None or not 1 <= port <= 65535:
        raise SystemExit("connlab: --target needs --port P (1..65535): the TCP port your program listens on")
    argv = shlex.split(command)
    if not argv:
        raise SystemExit("connlab: --target is empty")
    return argv


def probe_row(profile: str, limit: str, target: list[str] | None = None, port: int | None = None,
              extra_dirs: list[Path] | None = None, provider: str = "netns") -> dict[str, Any]:
    """Run ``limit``'s probe on a new lab of ``profile`` (against your program when ``target``);
    return its row as a pytest run's results hold it."""
    entry = CATALOG.get(limit)
    if entry is None:
        raise SystemExit(f"connlab: {limit!r} is not a limit; known: {', '.join(sorted(CATALOG))}")
    if target is not None and not entry.takes_target:
        raise SystemExit(f"connlab: {limit} cannot take your program as target "
                         f"(those that can: {', '.join(n for n, e in CATALOG.items() if e.takes_target)})")
    clients, ips, router = entry.hosts
    with standalone_lab(profile, clients=clients, ips_per_client=ips, router=router, extra_dirs=extra_dirs,
                        provider=provider) as lab:
        probe = getattr(lab.probe, limit)
        if target is not None:
            assert port is not None
            obs = probe(target=lab.server.start(target, port=port))
        else:
            obs = probe()
        return baseline.result_row(obs, f"connlab probe {limit} --lab {profile}", lab.profile)


def _print_rows(rows: list[dict[str, Any]]) -> None:
    for line in table.render(rows) + table.notes(rows):
        print(line)


def _plots(rows: list[dict[str, Any]], folder: str | None) -> None:
    if folder is None:
        return
    if not plots.available():
        raise SystemExit("connlab: --plots needs matplotlib: pip install 'pytest-connlab[report]'")
    for path in plots.write_all(Path(folder), rows):
        print(f"plot: {path}", file=sys.stderr)


def cmd_probe(args: Any) -> int:
    target = _target_argv(args.target, args.port)
    row = probe_row(args.lab, args.limit, target, args.port, [Path(d) for d in args.labs], args.provider)
    if args.json:
        print(json.dumps(jsonfile.entry(row), indent=2))
    else:
        _print_rows([row])
    _plots([row], args.plots)
    return 0 if row["verdict"] in ("ok", "not emulable") else 1


def cmd_sheet(args: Any) -> int:
    target = _target_argv(args.target, args.port)
    if target is None:
        raise SystemExit("connlab sheet: --target CMD --port P: the program whose limits the sheet lists")
    rows = []
    for limit, entry in CATALOG.items():
        if entry.takes_target:
            print(f"connlab sheet: {limit} ...", file=sys.stderr, flush=True)
            rows.append(probe_row(args.lab, limit, target, args.port, [Path(d) for d in args.labs], args.provider))
    if args.json:
        print(json.dumps([jsonfile.entry(r) for r in rows], indent=2))
    else:
        _print_rows(rows)
    _plots(rows, args.plots)
    return 0


class _Down(Exception):
    pass


def _come_down(signum: int, frame: Any) -> None:
    raise _Down()


def cmd_up(args: Any) -> int:
    """Build a lab and keep it standing (its lab-wide watchers running) until Ctrl-C, SIGTERM,
    ``connlab down LAB`` or a day."""
    signal.signal(signal.SIGTERM, _come_down)
    clients, ips, router = args.clients, args.ips_per_client, args.router
    record: Path | None = None
    try:
        with standalone_lab(args.name, clients=clients, ips_per_client=ips, router=router,
                            extra_dirs=[Path(d) for d in args.labs], provider=args.provider) as lab:
            private_dir(UP_DIR)
            record = UP_DIR / lab.name
            fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"lab": lab.name, "pid": os.getpid(), "profile": args.name}, f)
            print(f"lab {lab.name} ({args.name}) is up; lab-wide watchers: {', '.join(lab.watchers) or 'none'}")
            for line in lab.describe_access():
                print(f"  {line}")
            print(f"take it down with Ctrl-C here or: connlab down {lab.name}", flush=True)
            deadline = time.monotonic() + UP_BOUND_S
            while time.monotonic() < deadline:
                time.sleep(1)
    except (KeyboardInterrupt, _Down):
        pass
    finally:
        if record is not None:
            record.unlink(missing_ok=True)
    print("lab down", flush=True)
    return 0


def _running(pid: int) -> bool:
    """True while ``pid`` runs (a zombie whose parent has not reaped it has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def down_up_lab(name: str, bound_s: float = 60.0) -> bool:
    """Bring down a lab that ``connlab up`` holds: SIGTERM to its process (checked: a connlab up
    of that lab), wait until it has torn the lab down. False when no live ``up`` holds ``name``."""
    record = UP_DIR / name
    if "/" in name or not record.is_file() or record.is_symlink():
        return False
    try:
        data = json.loads(record.read_text())
        pid = int(data["pid"])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, KeyError, TypeError):
        record.unlink(missing_ok=True)
        return False
    if data.get("lab") != name or b"up" not in cmdline or not any(b"connlab" in part for part in cmdline):
        raise ConnlabError(f"{record}: pid {pid} is not the `connlab up` of {name}; nothing done")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + bound_s
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _running(pid):
        raise ConnlabError(f"connlab up (pid {pid}) did not come down within {bound_s:.0f} s")
    return True
