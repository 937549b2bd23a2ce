"""Server role: listen with a given backlog and accept, hold, echo, answer HTTP, or never accept.

In ``http`` mode every request gets ``200 OK`` on a kept-alive connection, after
``delay`` seconds when asked; a connection accepted while ``max_conns`` others
are open gets the over-cap answer instead (IIS 5.1: 403.9 "Too many users",
HTTP.SYS: 503) and is closed, as those servers do.
"""
from __future__ import annotations

import errno
import selectors
import socket
import time
from collections import Counter
from dataclasses import dataclass, field

from . import proto
from .errnames import name_of

MODES = ("close", "hold", "echo", "never", "http")
OVER_CAP = {
    "403.9": b"HTTP/1.1 403 Forbidden\r\nContent-Length: 37\r\nConnection: close\r\n\r\n"
             b"403.9 Too many users are connected.\r\n",
    "503": b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 21\r\nConnection: close\r\n\r\n"
           b"Connections_refused\r\n",
}
OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: keep-alive\r\n\r\nok\r\n"


@dataclass
class ServerStats:
    """What the server saw; sent to the controller when it stops."""

    accepted: int = 0
    closed_by_peer: int = 0
    accept_errors: Counter[str] = field(default_factory=Counter)
    peak_open: int = 0
    served: int = 0
    over_cap: int = 0


@dataclass
class HttpPolicy:
    """How ``http`` mode answers: the live-connection cap, its answer, and a response delay."""

    max_conns: int = 0  # 0: no cap
    over_status: str = "503"
    delay_s: float = 0.0
    buffers: dict[int, bytes] = field(default_factory=dict)
    over: set[int] = field(default_factory=set)
    due: list[tuple[float, socket.socket, bytes]] = field(default_factory=list)


def make_listener(bind: str, port: int, backlog: int) -> socket.socket:
    """A non-blocking TCP listener; the kernel caps ``backlog`` at net.core.somaxconn."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((bind, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def _accept_ready(listener: socket.socket, sel: selectors.BaseSelector, mode: str,
                  stats: ServerStats, open_socks: set[socket.socket], http: HttpPolicy) -> None:
    """Accept every pending connection (bounded per wake-up)."""
    for _ in range(1024):
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return
        except OSError as exc:
            stats.accept_errors[name_of(exc.errno or 0)] += 1
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                time.sleep(0.01)  # the queue stays full; do not spin
            return
        stats.accepted += 1
        conn.setblocking(False)
        if mode == "close" and _closed_by_peer(conn):
            stats.closed_by_peer += 1  # a churning client closes at once: no wake-up spent on it
            conn.close()
            continue
        if mode == "http" and http.max_conns and len(open_socks) >= http.max_conns:
            http.over.add(conn.fileno())
        open_socks.add(conn)
        stats.peak_open = max(stats.peak_open, len(open_socks))
        if mode != "hold":
            sel.register(conn, selectors.EVENT_READ)


def _closed_by_peer(conn: socket.socket) -> bool:
    """True when the peer has already closed (EOF or an error waiting): nothing is left to read."""
    try:
        return conn.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _answer_http(conn: socket.socket, data: bytes, stats: ServerStats, http: HttpPolicy) -> bool:
    """Answer every complete request in ``data``; False when the connection must close."""
    fd = conn.fileno()
    buf = http.buffers.get(fd, b"") + data
    while b"\r\n\r\n" in buf:
        _, buf = buf.split(b"\r\n\r\n", 1)
        if fd in http.over:
            stats.over_cap += 1
            try:
                conn.sendall(OVER_CAP[http.over_status])
            except OSError:
                pass
            return False
        if http.delay_s:
            http.due.append((time.monotonic() + http.delay_s, conn, OK_RESPONSE))
        else:
            conn.sendall(OK_RESPONSE)
            stats.served += 1
    http.buffers[fd] = buf
    return True


def _send_due(http: HttpPolicy, stats: ServerStats) -> None:
    """Send the delayed responses whose time has come."""
    now = time.monotonic()
    for item in [d for d in http.due if d[0] <= now]:
        http.due.remove(item)
        try:
            item[1].sendall(item[2])
            stats.served += 1
        except OSError:
            pass


def _peer_ready(conn: socket.socket, sel: selectors.BaseSelector, mode: str,
                stats: ServerStats, open_socks: set[socket.socket], http: HttpPolicy) -> None:
    """Read from a peer; echo in echo mode, answer in http mode; close on EOF or error."""
    try:
        data = conn.recv(65536)
    except BlockingIOError:
        return
    except OSError:
        data = b""
    if data and mode == "http":
        try:
            if not _answer_http(conn, data, stats, http):
                data = b""
        except OSError:
            data = b""
    if data and mode == "echo":
        try:
            conn.sendall(data)
        except OSError:
            data = b""
    if not data:
        stats.closed_by_peer += 1
        http.buffers.pop(conn.fileno(), None)
        http.over.discard(conn.fileno())
        http.due[:] = [d for d in http.due if d[1] is not conn]
        sel.unregister(conn)
        open_socks.discard(conn)
        conn.close()


def open_fds() -> int:
    """Descriptors this process has open now."""
    import os
    return len(os.listdir("/proc/self/fd")) - 1  # minus the one listdir itself opened


def serve(bind: str, port: int, backlog: int, mode: str, max_seconds: float,
          http: HttpPolicy | None = None) -> None:
    """Run until the controller releases us or ``max_seconds`` pass, then report stats."""
    import resource
    http = http or HttpPolicy()
    listener = make_listener(bind, port, backlog)
    sel = selectors.DefaultSelector()
    proto.send(proto.Ready(event="ready", port=listener.getsockname()[1], backlog=backlog, mode=mode,
                           nofile=resource.getrlimit(resource.RLIMIT_NOFILE)[0], fds_open=open_fds()))
    stats = ServerStats()
    open_socks: set[socket.socket] = set()
    if mode != "never":
        sel.register(listener, selectors.EVENT_READ)
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        if proto.stdin_closed(0):
            break
        for key, _ in sel.select(timeout=0.02 if http.due else 0.2):
            if key.fileobj is listener:
                _accept_ready(listener, sel, mode, stats, open_socks, http)
            else:
                _peer_ready(key.fileobj, sel, mode, stats, open_socks, http)  # type: ignore[arg-type]
        if http.due:
            _send_due(http, stats)
    proto.send(proto.Stats(event="stats", accepted=stats.accepted, closed_by_peer=stats.closed_by_peer,
                           accept_errors=dict(stats.accept_errors), peak_open=stats.peak_open,
                           open_at_end=len(open_socks), served=stats.served, over_cap=stats.over_cap))
    for conn in open_socks:
        conn.close()
    listener.close()
