"""Sysctl role: read and write /proc/sys keys of the namespace the agent runs in."""
from __future__ import annotations

import os


def path_of(key: str) -> str:
    """``net.core.somaxconn`` -> ``/proc/sys/net/core/somaxconn``."""
    if not key or ".." in key or key.startswith(("/", ".")):
        raise ValueError(f"not a sysctl key: {key!r}")
    return os.path.join("/proc/sys", *key.split("."))


def read(key: str) -> str:
    """The value as the kernel prints it, whitespace folded to single spaces."""
    with open(path_of(key)) as f:
        return " ".join(f.read().split())


def write(key: str, value: str) -> None:
    """Write one value; the kernel validates it."""
    with open(path_of(key), "w") as f:
        f.write(value)


def apply(assignments: dict[str, str]) -> dict[str, object]:
    """Set each key; return the previous values, or the first error naming its key."""
    previous: dict[str, str] = {}
    for key, value in assignments.items():
        try:
            previous[key] = read(key)
            write(key, value)
            if read(key) != " ".join(value.split()):
                return {"previous": previous, "error": {"key": key, "message":
                        f"kernel kept {read(key)!r} after writing {value!r}"}}
        except (OSError, ValueError) as exc:
            return {"previous": previous, "error": {"key": key, "message": str(exc)}}
    return {"previous": previous, "error": None}
