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
_libc = ctypes.CDLL(None, use_errno=True)


def entering(ns_fd: int) -> Callable[[], None]:
    """A preexec function: join the namespace, and die with SIGKILL when the parent dies."""
    def preexec() -> None:
        if _libc.setns(ns_fd, CLONE_NEWNET) != 0:
            os.write(2, b"connlab: setns failed\n")
            os._exit(127)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    return preexec


def namespace_id(path: Path | str) -> tuple[int, int]:
    """(device, inode) of a namespace file, the same for /run/netns/X and /proc/PID/ns/net."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


def pids_in(ns_path: Path) -> list[int]:
    """Every process whose network namespace is ``ns_path``."""
    try:
        target = namespace_id(ns_path)
    except FileNotFoundError:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if namespace_id(f"/proc/{entry}/ns/net") == target:
                pids.append(int(entry))
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return pids


def kill_all_in(ns_path: Path) -> int:
    """SIGKILL every process in the namespace; return how many were signalled."""
    pids = [p for p in pids_in(ns_path) if p != os.getpid()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)
