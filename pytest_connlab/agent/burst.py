"""Client role 'burst': start many connects at once, see where each stands, hold them.

Every connect is non-blocking and started together, as a SYN flood, a browser or
a port scanner would. After ``settle`` seconds each socket is classified as the
client's kernel sees it: ``connected``, ``pending`` (still SYN_SENT) or the
errno that ended it. The role holds them until released, then reports how each
connected socket is doing (still open, reset, closed by the peer, or silent).
"""
from __future__ import annotations

import errno
import select
import socket
import time
from collections import Counter

from . import proto
from .connect import IP_BIND_ADDRESS_NO_PORT
from .errnames import name_of
from .limits import raise_nofile_to_hard


def _start(target: tuple[str, int], source: str | None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source:
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((source, 0))
    sock.setblocking(False)
    code = sock.connect_ex(target)
    if code not in (0, errno.EINPROGRESS):
        sock.close()
        raise OSError(code, name_of(code))
    return sock


def _classify(socks: list[socket.socket], settle_s: float) -> list[str]:
    """Wait until every connect ended or ``settle_s`` passed; return each one's state."""
    state = ["pending"] * len(socks)
    waiting = dict(enumerate(socks))
    deadline = time.monotonic() + settle_s
    poller = select.poll()
    by_fd = {s.fileno(): i for i, s in waiting.items()}
    for fd in by_fd:
        poller.register(fd, select.POLLOUT)
    while waiting and time.monotonic() < deadline:
        left_ms = max(1, int((deadline - time.monotonic()) * 1000))
        for fd, _ in poller.poll(min(left_ms, 200)):
            i = by_fd[fd]
            code = socks[i].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            state[i] = "connected" if code == 0 else name_of(code)
            poller.unregister(fd)
            waiting.pop(i, None)
    return state


def _readable_status(sock: socket.socket) -> str:
    try:
        return "open" if sock.recv(1, socket.MSG_PEEK) else "eof"
    except BlockingIOError:
        return "open"
    except OSError as exc:
        return name_of(exc.errno or 0)


def peer_statuses(socks: list[socket.socket], wait_s: float) -> Counter[str]:
    """How many are ``open``, ``eof`` (the peer closed) or reset (the errno), waiting up to
    ``wait_s`` in all for news from the peers."""
    ends: Counter[str] = Counter()
    poller = select.poll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    deadline = time.monotonic() + wait_s
    while by_fd and time.monotonic() < deadline:
        for fd, _ in poller.poll(max(1, int((deadline - time.monotonic()) * 1000))):
            if fd in by_fd:
                poller.unregister(fd)
                ends[_readable_status(by_fd.pop(fd))] += 1
    ends["open"] += len(by_fd)
    return +ends


def burst(target: tuple[str, int], sources: list[str | None], count: int, settle_s: float,
          hold_s: float, check_s: float) -> None:
    """Start ``count`` connects, report their states, hold, report how the connected ones ended."""
    budget = raise_nofile_to_hard()
    start = time.monotonic()
    socks: list[socket.socket] = []
    start_errors: Counter[str] = Counter()
    for i in range(min(count, budget)):
        try:
            socks.append(_start(target, sources[i % len(sources)]))
        except OSError as exc:
            start_errors[name_of(exc.errno or 0)] += 1
    states = _classify(socks, settle_s)
    proto.send(proto.Burst(event="burst", states=dict(Counter(states)), order=states,
                           start_errors=dict(start_errors), elapsed_s=round(time.monotonic() - start, 4)))
    held = proto.hold_until_released(hold_s)
    connected = [s for s, st in zip(socks, states) if st == "connected"]
    late = [s for s, st in zip(socks, states) if st == "pending"]
    late_states = _classify(late, 0.05) if late else []
    ends = peer_statuses(connected, check_s)
    proto.send(proto.Released(event="released", held_s=round(held, 3), connected=dict(ends),
                              pending_at_release=dict(Counter(late_states))))
    for s in socks:
        s.close()
