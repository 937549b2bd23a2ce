"""Tap devices made inside a lab segment's namespace, for qemu to take over by descriptor.

A thread enters the segment's namespace and opens ``/dev/net/tun`` with TUNSETIFF, which
creates the tap there (not persistent: it vanishes when the last descriptor closes, that
is when qemu exits); the descriptor works from any namespace. The tap then joins the
segment's bridge. Nothing touches the host's own namespace.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import struct
import threading

from . import nsexec

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def _open_in(ns_name: str, ifname: str) -> int:
    result: dict[str, object] = {}

    def work() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        ns_fd = os.open(str(nsexec.NETNS_DIR / ns_name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.setns(ns_fd, nsexec.CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {ns_name}")
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
            try:
                fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", ifname.encode(), IFF_TAP | IFF_NO_PI))
            except OSError:
                os.close(fd)
                raise
            result["fd"] = fd
        except OSError as exc:
            result["error"] = exc
        finally:
            os.close(ns_fd)

    helper = threading.Thread(target=work, name="connlab-tap")
    helper.start()
    helper.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    fd = result["fd"]
    assert isinstance(fd, int)
    return fd


def open_tap(segment_ns: str, ifname: str) -> int:
    """A tap ``ifname`` on the bridge ``br0`` of ``segment_ns``, up; return its descriptor (inheritable
    only where the caller passes it on)."""
    from pyroute2 import IPRoute
    fd = _open_in(segment_ns, ifname)
    try:
        with IPRoute(netns=segment_ns, groups=0) as ipr:
            index = ipr.link_lookup(ifname=ifname)[0]
            bridge = ipr.link_lookup(ifname="br0")[0]
            ipr.link("set", index=index, master=bridge, state="up")
    except BaseException:
        os.close(fd)
        raise
    return fd
