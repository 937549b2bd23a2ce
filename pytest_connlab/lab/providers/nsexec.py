"""Start processes inside a named network namespace, tied to the life of their parent."""
from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable
from pathlib import Path

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
LIBC = ctypes.CDLL(None, use_errno=True)  # setns, unshare, mount, prctl: shared by nsexec and nsthread


def entering(ns_fd: int) -> Callable[[], None]:
    """A preexec function: join the namespace, and die with SIGKILL when the parent dies."""
    def preexec() -> None:
        if LIBC.setns(ns_fd, CLONE_NEWNET) != 0:
            os.write(2, b"connlab: setns failed\n")
            os._exit(127)
        LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    return preexec


def namespace_id(path: Path | str) -> tuple[int, int]:
    """(device, inode) of a namespace file, the same for /run/netns/X and /proc/PID/ns/net."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


def pids_in(ns_path: Path) -> list[int]:
    """Every process whose network namespace is ``ns_path``."""
    return pids_by_namespace([ns_path]).get(ns_path, [])


def pids_by_namespace(ns_paths: list[Path]) -> dict[Path, list[int]]:
    """The processes in each of ``ns_paths``, from one scan of /proc."""
    targets = {}
    for path in ns_paths:
        try:
            targets[namespace_id(path)] = path
        except FileNotFoundError:
            continue
    found: dict[Path, list[int]] = {}
    if not targets:
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            match = targets.get(namespace_id(f"/proc/{entry}/ns/net"))
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
        if match is not None:
            found.setdefault(match, []).append(int(entry))
    return found


def kill_all_in(*ns_paths: Path) -> int:
    """SIGKILL every process in the namespaces; return how many were signalled."""
    pids = [p for found in pids_by_namespace(list(ns_paths)).values() for p in found if p != os.getpid()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)
