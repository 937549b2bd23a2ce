"""Client role 'http': HTTP/1.1 requests over kept-alive connections.

Without a pool every request gets its own connection, opened one after another
and all held (browsers, users of a web application). With ``pool`` K the
requests share K connections, as WinInet does (2 per HTTP/1.1 server): the
rest wait for a free connection, with no error.
"""
from __future__ import annotations

import select
import socket
import threading
import time
from collections import Counter

from . import proto
from .connect import open_connection
from .errnames import name_of
from .limits import raise_nofile_to_hard

REQUEST = b"GET / HTTP/1.1\r\nHost: lab\r\nConnection: keep-alive\r\n\r\n"


def status_of(response: bytes) -> str:
    """``200``, ``503``, or ``403.9`` when the body names the IIS substatus."""
    line = response.split(b"\r\n", 1)[0].split()
    code = line[1].decode() if len(line) > 1 else "garbled"
    if code == "403" and b"403.9" in response:
        return "403.9"
    return code


def _read_response(sock: socket.socket, deadline: float) -> str:
    """Read one response (headers and Content-Length body) before ``deadline``."""
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout"
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        if not poller.poll(int(left * 1000) + 1):
            return "timeout"
        try:
            chunk = sock.recv(65536)
        except OSError as exc:
            return name_of(exc.errno or 0)
        if not chunk:
            return status_of(buf) if buf else "eof"
        buf += chunk
        head, sep, body = buf.partition(b"\r\n\r\n")
        if sep:
            length = next((int(h.split(b":")[1]) for h in head.split(b"\r\n")
                           if h.lower().startswith(b"content-length:")), 0)
            if len(body) >= length:
                return status_of(buf)


def one_connection_each(target: tuple[str, int], sources: list[str | None], requests: int,
                        timeout: float, hold_s: float) -> None:
    """Open ``requests`` connections in order, then send one request on each and read the answers."""
    raise_nofile_to_hard()
    socks: list[socket.socket | None] = []
    status: list[str] = []
    start = time.monotonic()
    for i in range(requests):
        try:
            socks.append(open_connection(target, sources[i % len(sources)], timeout))
            status.append("")
        except OSError as exc:
            socks.append(None)
            status.append(name_of(exc.errno or 0) if exc.errno else "ETIMEDOUT")
    for sock in socks:
        if sock is not None:
            try:
                sock.sendall(REQUEST)
            except OSError:
                pass
    deadline = time.monotonic() + timeout
    for i, sock in enumerate(socks):
        if sock is not None:
            status[i] = _read_response(sock, deadline)
    proto.send(proto.Responses(event="responses", statuses=dict(Counter(status)), order=status,
                               elapsed_s=round(time.monotonic() - start, 4)))
    proto.hold_until_released(hold_s)
    for sock in socks:
        if sock is not None:
            sock.close()


def pooled(target: tuple[str, int], source: str | None, requests: int, pool: int,
           timeout: float, deadline_s: float) -> None:
    """Issue ``requests`` requests at once over ``pool`` kept-alive connections."""
    lock = threading.Lock()
    todo = list(range(requests))
    status: list[str] = [""] * requests
    waited: list[float] = [0.0] * requests
    start = time.monotonic()
    stop_at = start + deadline_s

    def worker() -> None:
        try:
            sock = open_connection(target, source, timeout)
        except OSError as exc:
            sock, error = None, name_of(exc.errno or 0)
        while time.monotonic() < stop_at:
            with lock:
                if not todo:
                    break
                i = todo.pop(0)
            waited[i] = time.monotonic() - start
            if sock is None:
                status[i] = error
                continue
            sock.sendall(REQUEST)
            status[i] = _read_response(sock, time.monotonic() + timeout)
        if sock is not None:
            sock.close()

    threads = [threading.Thread(target=worker) for _ in range(min(pool, requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    proto.send(proto.Responses(event="responses", statuses=dict(Counter(status)), order=status, pool=pool,
                               longest_wait_s=round(max(waited), 3), elapsed_s=round(time.monotonic() - start, 4)))
