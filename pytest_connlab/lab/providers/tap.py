"""Tap devices made inside a lab segment's namespace, for qemu to take over by descriptor.

A thread enters the segment's namespace and opens ``/dev/net/tun`` with TUNSETIFF, which
creates the tap there (not persistent: it vanishes when the last descriptor closes, that
is when qemu exits); the descriptor works from any namespace. The tap then joins the
segment's bridge. Nothing touches the host's own namespace.
"""
from __future__ import annotations

import fcntl
import os
import struct

from . import nsexec, nsthread, rtnl

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def _make_tap(ifname: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", ifname.encode(), IFF_TAP | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def open_tap(segment_ns: str, ifname: str, bridge_index: int) -> int:
    """A tap ``ifname`` on the bridge of index ``bridge_index`` in ``segment_ns``, up; return its
    descriptor (inheritable only where the caller passes it on)."""
    ns_fd = os.open(str(nsexec.NETNS_DIR / segment_ns), os.O_RDONLY | os.O_CLOEXEC)
    try:
        fd = nsthread.run_in(ns_fd, lambda: _make_tap(ifname))
        try:
            batch = rtnl.Batch(segment_ns)
            batch.enslave(ifname, bridge_index)
            batch.send(ns_fd)
        except BaseException:
            os.close(fd)
            raise
    finally:
        os.close(ns_fd)
    return fd
