"""Spread an 'open' role over child processes when one process may not hold them all.

RLIMIT_NOFILE caps each process (20,000 hard on the lab machines, not raisable),
so N held connections need ceil(N / budget) processes.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from typing import Any

from . import proto

BOOT = ("import sys,runpy;sys.path.insert(0,sys.argv.pop(1));"
        "runpy.run_module('agent',run_name='__main__',alter_sys=True)")


def agent_command(python: str, agent_parent: str, args: list[str] | tuple[str, ...]) -> list[str]:
    """The command line that runs the agent found in ``agent_parent``: an isolated interpreter
    (-I) without the site module (-S): the agent is stdlib-only, and a site-packages .pth file
    may import a lot at every start (here one imported certifi: 25 ms of a 60 ms start)."""
    return [python, "-I", "-S", "-c", BOOT, agent_parent, *args]


def split_evenly(count: int, parts: int) -> list[int]:
    """``count`` as ``parts`` near-equal whole numbers."""
    base, rest = divmod(count, parts)
    return [base + (1 if i < rest else 0) for i in range(parts)]


def chunks(count: int, budget: int) -> list[int]:
    """Split ``count`` into near-equal parts of at most ``budget``."""
    return split_evenly(count, max(1, -(-count // budget)))


def _self_argv(agent_parent: str, args: list[str]) -> list[str]:
    return agent_command(sys.executable, agent_parent, args)


def _read_event(proc: subprocess.Popen[str]) -> dict[str, Any]:
    line = proc.stdout.readline() if proc.stdout else ""
    return json.loads(line) if line else {"event": "died", "returncode": proc.poll()}


def _merge(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum counts, concatenate error lists, merge per-source counters."""
    merged: dict[str, Any] = {}
    per_source: Counter[str] = Counter()
    for ev in events:
        for key, value in ev.items():
            if key == "per_source":
                per_source.update(value)
            elif isinstance(value, bool) or key == "event":
                continue
            elif isinstance(value, (int, float)) and key != "first_error_at":
                merged[key] = merged.get(key, 0) + value
            elif isinstance(value, list):
                merged.setdefault(key, []).extend(value)
    merged["per_source"] = dict(per_source)
    merged["workers"] = len(events)
    return merged


def spread(agent_parent: str, role_args: list[str], counts: list[int], hold_s: float) -> None:
    """Run one child per count with ``--count``; relay merged 'opened' and 'released'."""
    procs = [subprocess.Popen(_self_argv(agent_parent, [*role_args, "--count", str(n), "--no-spread"]),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for n in counts]
    opened = [_read_event(p) for p in procs]
    proto.emit("opened", **_merge(opened))
    proto.hold_until_released(hold_s)
    for p in procs:
        if p.stdin:
            p.stdin.close()
    released = [_read_event(p) for p in procs]
    for p in procs:
        p.wait(timeout=30)
    proto.emit("released", **_merge(released))
