"""Server role: listen with a given backlog and accept, hold, echo, or never accept."""
from __future__ import annotations

import errno
import selectors
import socket
import time
from collections import Counter
from dataclasses import dataclass, field

from . import proto
from .errnames import name_of

MODES = ("close", "hold", "echo", "never")


@dataclass
class ServerStats:
    """What the server saw; sent to the controller when it stops."""

    accepted: int = 0
    closed_by_peer: int = 0
    accept_errors: Counter[str] = field(default_factory=Counter)
    peak_open: int = 0


def make_listener(bind: str, port: int, backlog: int) -> socket.socket:
    """A non-blocking TCP listener; the kernel caps ``backlog`` at net.core.somaxconn."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((bind, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def _accept_ready(listener: socket.socket, sel: selectors.BaseSelector, mode: str,
                  stats: ServerStats, open_socks: set[socket.socket]) -> None:
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
        open_socks.add(conn)
        stats.peak_open = max(stats.peak_open, len(open_socks))
        if mode != "hold":
            sel.register(conn, selectors.EVENT_READ)


def _peer_ready(conn: socket.socket, sel: selectors.BaseSelector, mode: str,
                stats: ServerStats, open_socks: set[socket.socket]) -> None:
    """Read from a peer; echo in echo mode; close on EOF or error."""
    try:
        data = conn.recv(65536)
    except BlockingIOError:
        return
    except OSError:
        data = b""
    if data and mode == "echo":
        try:
            conn.sendall(data)
        except OSError:
            data = b""
    if not data:
        stats.closed_by_peer += 1
        sel.unregister(conn)
        open_socks.discard(conn)
        conn.close()


def serve(bind: str, port: int, backlog: int, mode: str, max_seconds: float) -> None:
    """Run until the controller releases us or ``max_seconds`` pass, then report stats."""
    listener = make_listener(bind, port, backlog)
    proto.emit("ready", port=listener.getsockname()[1], backlog=backlog, mode=mode)
    sel = selectors.DefaultSelector()
    stats = ServerStats()
    open_socks: set[socket.socket] = set()
    if mode != "never":
        sel.register(listener, selectors.EVENT_READ)
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        if proto.stdin_closed(0):
            break
        for key, _ in sel.select(timeout=0.2):
            if key.fileobj is listener:
                _accept_ready(listener, sel, mode, stats, open_socks)
            else:
                _peer_ready(key.fileobj, sel, mode, stats, open_socks)  # type: ignore[arg-type]
    proto.emit("stats", accepted=stats.accepted, closed_by_peer=stats.closed_by_peer,
               accept_errors=dict(stats.accept_errors), peak_open=stats.peak_open,
               open_at_end=len(open_socks))
    for conn in open_socks:
        conn.close()
    listener.close()
