"""Server role 'threaded': one thread per connection from a fixed pool (ASP, Tomcat BIO).

An acceptor accepts every connection and queues it; each of ``threads`` workers
serves one connection at a time (HTTP 200 per request) until the client closes
it. Past the pool size, new connections are accepted by the kernel and the
acceptor but no thread ever answers them: the wall of thread-per-connection.
"""
from __future__ import annotations

import queue
import socket
import threading
import time

from . import proto
from .server import OK_RESPONSE, make_listener


class Pool:
    """Counters shared by the workers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.busy = 0
        self.peak_busy = 0
        self.connections_served = 0
        self.requests_served = 0

    def enter(self) -> None:
        with self.lock:
            self.busy += 1
            self.peak_busy = max(self.peak_busy, self.busy)
            self.connections_served += 1

    def leave(self) -> None:
        with self.lock:
            self.busy -= 1


def _serve_one(conn: socket.socket, pool: Pool, stop: threading.Event) -> None:
    """Answer requests on one connection until the client closes it or we stop."""
    conn.settimeout(0.2)
    buf = b""
    while not stop.is_set():
        try:
            data = conn.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
        if not data:
            break
        buf += data
        while b"\r\n\r\n" in buf:
            _, buf = buf.split(b"\r\n\r\n", 1)
            conn.sendall(OK_RESPONSE)
            with pool.lock:
                pool.requests_served += 1
    conn.close()


def _worker(work: queue.Queue[socket.socket], pool: Pool, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            conn = work.get(timeout=0.2)
        except queue.Empty:
            continue
        pool.enter()
        try:
            _serve_one(conn, pool, stop)
        finally:
            pool.leave()


def serve_threaded(bind: str, port: int, backlog: int, threads: int, max_seconds: float) -> None:
    """Run the pool until released or ``max_seconds`` pass; report what was served."""
    listener = make_listener(bind, port, backlog)
    listener.setblocking(True)
    listener.settimeout(0.2)
    work: queue.Queue[socket.socket] = queue.Queue()
    pool, stop = Pool(), threading.Event()
    workers = [threading.Thread(target=_worker, args=(work, pool, stop), daemon=True)
               for _ in range(threads)]
    for w in workers:
        w.start()
    proto.send(proto.Ready(event="ready", port=listener.getsockname()[1], backlog=backlog, mode="threaded",
                           threads=threads))
    accepted = 0
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline and not proto.stdin_closed(0):
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        accepted += 1
        work.put(conn)
    stop.set()
    for w in workers:
        w.join(timeout=2)
    proto.send(proto.Stats(event="stats", accepted=accepted, threads=threads, peak_busy=pool.peak_busy,
                           connections_served=pool.connections_served, requests_served=pool.requests_served,
                           waiting_for_a_thread=work.qsize()))
    listener.close()
