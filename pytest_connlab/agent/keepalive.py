"""Client role 'keepalive': two idle connections, one with SO_KEEPALIVE and one without.

The timers are the host's (net.ipv4.tcp_keepalive_*), as for a program that only
turns keepalive on. The controller makes the peer vanish after 'connected'; the
role reports when each connection learnt of it, or that it never did within
``deadline`` seconds.
"""
from __future__ import annotations

import select
import socket
import time

from . import proto
from .connect import open_connection
from .errnames import name_of


def _wait_for_death(socks: dict[str, socket.socket], deadline_s: float) -> dict[str, dict[str, object]]:
    start = time.monotonic()
    ends: dict[str, dict[str, object]] = {}
    while len(ends) < len(socks) and time.monotonic() - start < deadline_s:
        live = {name: s for name, s in socks.items() if name not in ends}
        ready, _, _ = select.select(list(live.values()), [], [], 0.1)
        for name, sock in live.items():
            if sock not in ready:
                continue
            try:
                data = sock.recv(1)
                outcome = "eof" if not data else "data"
            except OSError as exc:
                outcome = name_of(exc.errno or 0)
            ends[name] = {"error": outcome, "after_s": round(time.monotonic() - start, 3)}
    for name in socks:
        ends.setdefault(name, {"error": None, "after_s": None})
    return ends


def keepalive(target: tuple[str, int], source: str | None, deadline_s: float) -> None:
    """Connect twice, report 'connected', then wait for each connection to die."""
    with_ka = open_connection(target, source, 5.0)
    with_ka.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    plain = open_connection(target, source, 5.0)
    socks = {"keepalive": with_ka, "no_keepalive": plain}
    proto.emit("connected", ports={n: s.getsockname()[1] for n, s in socks.items()},
               timers={"idle": with_ka.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                       "interval": with_ka.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                       "probes": with_ka.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)})
    proto.emit("ended", connections=_wait_for_death(socks, deadline_s))
    for s in socks.values():
        s.close()
