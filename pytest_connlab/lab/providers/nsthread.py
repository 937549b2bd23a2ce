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
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 0x2
_NETNS_DIR_LOCK = threading.Lock()
_netns_dir_shared = False  # this process has made sure /run/netns is a shared mount point


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def run_in(ns_fd: int | None, fn: Callable[[], T]) -> T:
    """``fn()`` on a fresh thread that has joined the namespace ``ns_fd`` (None: stays in this
    process's namespace, which is what ``fn`` may then leave by unsharing); its result or its
    exception. The thread ends with ``fn``, so no thread of the pool is left in a lab."""
    return run_many([(ns_fd, fn)])[0]


def run_many(jobs: list[tuple[int | None, Callable[[], T]]]) -> list[T]:
    """Each ``(ns_fd, fn)`` as ``run_in`` does, all at once, each on its own thread (the kernel
    sets up new namespaces in parallel); the results in order, or the first job's exception."""
    boxes: list[dict[str, object]] = [{} for _ in jobs]

    def body(ns_fd: int | None, fn: Callable[[], T], box: dict[str, object]) -> None:
        try:
            if ns_fd is not None:
                _check(nsexec.LIBC.setns(ns_fd, nsexec.CLONE_NEWNET), "setns")
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    threads = [threading.Thread(target=body, args=(ns_fd, fn, box), name="connlab-netns", daemon=True)
               for (ns_fd, fn), box in zip(jobs, boxes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for box in boxes:
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
    return [box["value"] for box in boxes]  # type: ignore[misc]


def create_here(name: str) -> None:
    """On a thread ``run_in`` started: give it a new network namespace (born from the one it
    is in, with that namespace's sysctls read as birth values by the kernel) and name it
    ``/run/netns/<name>``. The name must not exist."""
    _shared_netns_dir()
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


def _shared_netns_dir() -> None:
    """Make /run/netns a shared mount point of its own, as ``ip netns add`` does the first time it
    runs. Were it a plain folder, a later ``ip netns add`` (by anyone) would bind it onto itself
    with every namespace mounted in it: each lab namespace then has a second mount under the
    first, and its teardown cannot remove the name (EBUSY)."""
    global _netns_dir_shared
    with _NETNS_DIR_LOCK:  # threads make namespaces at once: only one may make the mount point
        if _netns_dir_shared:
            return
        folder = str(nsexec.NETNS_DIR).encode()
        nsexec.NETNS_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        if nsexec.LIBC.mount(b"none", folder, b"none", MS_SHARED | MS_REC, None) != 0:
            if ctypes.get_errno() != errno.EINVAL:  # EINVAL: not a mount point yet
                _check(-1, f"mount --make-rshared {nsexec.NETNS_DIR}")
            _check(nsexec.LIBC.mount(folder, folder, b"none", MS_BIND | MS_REC, None),
                   f"mount --rbind {nsexec.NETNS_DIR}")
            _check(nsexec.LIBC.mount(b"none", folder, b"none", MS_SHARED | MS_REC, None),
                   f"mount --make-rshared {nsexec.NETNS_DIR}")
        _netns_dir_shared = True


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
