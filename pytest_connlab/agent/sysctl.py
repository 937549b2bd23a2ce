"""Sysctl role: read and write /proc/sys keys of the namespace the agent runs in.

The controller checks every key against its grammar; the agent checks again, on its
own, before it opens anything: a key must be dotted parts of ``[a-z0-9_-]``, and its
path must resolve under ``/proc/sys/net/`` (writes; also ``fs/`` on a host whose kernel is the
lab's own, with ``--kernel-wide``) or ``/proc/sys/`` (reads). No key
of any shape can name a file elsewhere.
"""
from __future__ import annotations

import os
import re

PROC_SYS = "/proc/sys"
WRITABLE_ROOTS = ("net",)  # a lab shares the host's kernel: only its network namespace is its own
OWN_KERNEL_ROOTS = ("net", "fs")  # a lab host with a kernel of its own (a VM): its file limits too
_PART = re.compile(r"[a-z0-9_-]+")


def path_of(key: str, roots: tuple[str, ...] | None = None) -> str:
    """``net.core.somaxconn`` -> ``/proc/sys/net/core/somaxconn``; ValueError for anything that is
    not a sysctl key, or (with ``roots``) not under one of those subtrees."""
    parts = key.split(".") if isinstance(key, str) else []
    if len(parts) < 2 or not all(_PART.fullmatch(p) for p in parts):
        raise ValueError(f"not a sysctl key: {key!r}")
    if roots is not None and parts[0] not in roots:
        raise ValueError(f"refused: {key!r} is not under {', '.join(r + '.' for r in roots)}")
    path = os.path.join(PROC_SYS, *parts)
    real = os.path.realpath(path)
    allowed = [os.path.join(PROC_SYS, r) for r in roots] if roots is not None else [PROC_SYS]
    if not any(real.startswith(a + os.sep) for a in allowed):
        raise ValueError(f"refused: {key!r} resolves to {real}, outside {' or '.join(allowed)}")
    return real


def _read_path(path: str) -> str:
    with open(path) as f:
        return " ".join(f.read().split())


def _write_path(key: str, path: str, value: str) -> None:
    if not isinstance(value, str) or "\n" in value.strip() or len(value) > 4096:
        raise ValueError(f"refused: value for {key!r} must be one line of text")
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "w") as f:
        f.write(value)


def read(key: str) -> str:
    """The value as the kernel prints it, whitespace folded to single spaces."""
    return _read_path(path_of(key))


def apply(assignments: dict[str, str], roots: tuple[str, ...] = WRITABLE_ROOTS) -> dict[str, object]:
    """Set each key (only under /proc/sys/<root> for ``roots``; the kernel validates the value); return the
    previous values, or the first error naming its key. A refused key is refused before
    anything is read or written."""
    previous: dict[str, str] = {}
    for key, value in assignments.items():
        try:
            path = path_of(key, roots)
            previous[key] = _read_path(path)
            _write_path(key, path, value)
            now = _read_path(path)
            if now != " ".join(value.split()):
                return {"previous": previous, "error": {"key": key, "message":
                        f"kernel kept {now!r} after writing {value!r}"}}
        except (OSError, ValueError, TypeError) as exc:
            return {"previous": previous, "error": {"key": key, "message": str(exc)}}
    return {"previous": previous, "error": None}


def read_or_none(key: str) -> str | None:
    """The value of ``key``, or None where it does not exist or is not a key."""
    try:
        return read(key)
    except (OSError, ValueError):
        return None


def exchange(assignments: dict[str, str], keys: list[str], roots: tuple[str, ...] = WRITABLE_ROOTS
             ) -> dict[str, object]:
    """The ``sysctl`` role's event: set ``assignments`` (see apply), then read ``keys``."""
    result = apply(assignments, roots) if assignments else {}
    return {"event": "sysctl", "values": {k: read_or_none(k) for k in keys}, **result}
