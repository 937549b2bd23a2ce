"""Work inside a network namespace from a thread of this process: no fork, no helper process.

``setns(CLONE_NEWNET)`` and ``unshare(CLONE_NEWNET)`` change only the calling thread, so a
short-lived thread can enter a lab namespace, open a netlink socket there (the socket stays
in that namespace for its life), read or write its /proc/sys, or make a new namespace and
bind-mount it under /run/netns. The caller's own threads never leave the host's namespace.
"""
from __future__ import annotations

import ctypes
import errno
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from . import nsexec

T = TypeVar("T")
MS_BIND = 0x1000
MNT_DETACH = 0x2


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def run_in(ns_fd: int | None, fn: Callable[[], T]) -> T:
    """``fn()`` on a fresh thread that has joined the namespace ``ns_fd`` (None: stays in this
    process's namespace, which is what ``fn`` may then leave by unsharing); its result or its
    exception. The thread ends with ``fn``, so no thread of the pool is left in a lab."""
    box: dict[str, object] = {}

    def body() -> None:
        try:
            if ns_fd is not None:
                _check(nsexec.LIBC.setns(ns_fd, nsexec.CLONE_NEWNET), "setns")
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=body, name="connlab-netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def create_here(name: str) -> None:
    """On a thread ``run_in`` started: give it a new network namespace (born from the one it
    is in, with that namespace's sysctls read as birth values by the kernel) and name it
    ``/run/netns/<name>``. The name must not exist."""
    nsexec.NETNS_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    path = nsexec.NETNS_DIR / name
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    try:
        _check(nsexec.LIBC.unshare(nsexec.CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        source = b"/proc/thread-self/ns/net"
        _check(nsexec.LIBC.mount(source, str(path).encode(), b"none", MS_BIND, None), f"mount --bind {path}")
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def create(name: str, parent_fd: int | None = None) -> None:
    """Make the named namespace ``name`` (from inside ``parent_fd``'s namespace when given)."""
    run_in(parent_fd, lambda: create_here(name))


def delete(name: str) -> None:
    """Unmount and remove ``/run/netns/<name>``; the namespace ends when nothing holds it."""
    path = nsexec.NETNS_DIR / name
    if nsexec.LIBC.umount2(str(path).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):  # not a mount point (a half-made name), or gone
            raise OSError(err, f"umount {path}: {os.strerror(err)}")
    path.unlink(missing_ok=True)
