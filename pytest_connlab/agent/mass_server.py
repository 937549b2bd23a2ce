"""Server role 'hold-server': worker processes on one port (SO_REUSEPORT) that accept and hold.

Each worker has its own listener on the same port, an epoll, and a byte per
descriptor saying whether it is held (1) or subscribed to updates (2): it notices
a peer's close within a wake-up (PACE_S), so its count of open connections is the
server-side truth. In ``push`` mode a connection that sends a request gets a
``text/event-stream`` answer and stays open; on the controller's ``push`` command
every worker writes the update to all its subscribers and reports how it went.
"""
from __future__ import annotations

import errno
import os
import select
import socket
import time
from collections import Counter

from . import proto
from .errnames import name_of
from .fleet import Fleet, WorkerLink, fork_workers, merge_counts, proportional_set_size, read_or_eof, sum_fields
from .limits import raise_nofile_to_hard

STREAM_HEADERS = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                  b"Connection: keep-alive\r\n\r\n")
HELD, SUBSCRIBED = 1, 2
REPORT_EVERY_S = 0.25
PACE_S = 0.01  # the nap after a busy wake-up outside push mode: the accept queue (65535) absorbs it
EVENTS = select.EPOLLIN | select.EPOLLRDHUP


class Hub:
    """One worker's listener and the connections it holds."""

    def __init__(self, bind: str, port: int, backlog: int, push: bool) -> None:
        budget = raise_nofile_to_hard()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.listener.bind((bind, port))
        self.listener.listen(backlog)
        self.listener.setblocking(False)
        self.push = push
        self.ep = select.epoll()
        self.ep.register(self.listener.fileno(), select.EPOLLIN)
        self.state = bytearray(budget + 256)
        self.open = 0
        self.accepted = 0
        self.closed_by_peer = 0
        self.peak = 0
        self.accept_errors: Counter[str] = Counter()

    def accept_all(self) -> None:
        """Accept what is queued (bounded per wake-up); each descriptor goes into the epoll."""
        accept, register, state = self.listener._accept, self.ep.register, self.state  # type: ignore[attr-defined]
        taken = 0
        for _ in range(4096):
            try:  # the C-level accept: a bare descriptor, no socket object per connection
                fd, _ = accept()
            except BlockingIOError:
                break
            except OSError as exc:
                self.accept_errors[name_of(exc.errno or 0)] += 1
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    time.sleep(0.01)
                break
            if fd >= len(state):
                state.extend(bytes(fd + 1024 - len(state)))
            state[fd] = HELD
            register(fd, EVENTS)
            taken += 1
        self.accepted += taken
        self.open += taken
        self.peak = max(self.peak, self.open)

    def readable(self, fd: int) -> None:
        data = read_or_eof(fd, 4096)
        if not data:
            self.ep.unregister(fd)
            os.close(fd)
            self.state[fd] = 0
            self.open -= 1
            self.closed_by_peer += 1
        elif self.push and self.state[fd] == HELD and b"\r\n\r\n" in data:
            os.write(fd, STREAM_HEADERS)
            self.state[fd] = SUBSCRIBED

    def serve(self, wait_s: float, commands_fd: int) -> bool:
        """Accept and read for up to ``wait_s``; True when the controller's commands wait. Outside
        push mode a wake-up that found work is followed by a PACE_S nap, so the next one finds
        many connections queued (a wake-up costs the same for one as for thousands)."""
        lfd = self.listener.fileno()
        commands = False
        events = self.ep.poll(wait_s, 4096)
        for fd, _ in events:
            if fd == lfd:
                self.accept_all()
            elif fd == commands_fd:
                commands = True
            elif self.state[fd]:
                self.readable(fd)
        if events and not commands and not self.push:
            time.sleep(PACE_S)
        return commands

    def fan_out(self, seq: int, sent_ns: int) -> dict[str, int]:
        """Write update ``seq`` to every subscriber; count the writes that failed."""
        message = b"data: %d %d\n\n" % (seq, sent_ns)
        written = failed = 0
        state = self.state
        fd = state.find(SUBSCRIBED)
        while fd >= 0:
            try:
                os.write(fd, message)
                written += 1
            except OSError:
                failed += 1
            fd = state.find(SUBSCRIBED, fd + 1)
        return {"written": written, "failed": failed}

    def close_all(self) -> None:
        for fd, s in enumerate(self.state):
            if s:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.listener.close()
        self.ep.close()


def server_job(link: WorkerLink, bind: str, port: int, backlog: int, push: bool,
               max_seconds: float) -> None:
    """One worker: accept and hold until released; fan out pushes when told."""
    hub = Hub(bind, port, backlog, push)
    hub.ep.register(link.commands_fd, select.EPOLLIN)
    link.send("ready", pss=proportional_set_size())
    deadline = time.monotonic() + max_seconds
    next_report = 0.0
    while time.monotonic() < deadline:
        commands = link.commands() if hub.serve(0.05, link.commands_fd) else []
        now = time.monotonic()
        if now >= next_report:
            next_report = now + REPORT_EVERY_S
            link.send("progress", open=hub.open, accepted=hub.accepted)
        for cmd in commands:
            if cmd.startswith("push "):
                _, seq, sent_ns = cmd.split()
                started = time.monotonic()
                result = hub.fan_out(int(seq), int(sent_ns))
                link.send("pushed", seq=int(seq), took_s=round(time.monotonic() - started, 6),
                          subscribers=result["written"] + result["failed"], **result)
            elif cmd == "report":
                link.send("sampled", open=hub.open, pss=proportional_set_size())
        if "release" in commands:
            break
    link.send("stats", accepted=hub.accepted, closed_by_peer=hub.closed_by_peer, open_at_end=hub.open,
              peak_open=hub.peak, accept_errors=dict(hub.accept_errors))
    hub.close_all()


def _reserve_port(bind: str, port: int) -> socket.socket:
    """A bound, never listening SO_REUSEPORT socket that fixes the port the workers share."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((bind, port))
    return sock


def run_server(bind: str, port: int, backlog: int, workers: int, push: bool, max_seconds: float) -> None:
    """Fork the workers; relay summed progress; push on command; merged stats at release."""
    reserved = _reserve_port(bind, port)
    port = reserved.getsockname()[1]
    fleet = Fleet(fork_workers(workers, lambda link: server_job(
        link, bind, port, backlog, push, max_seconds)))
    reserved.close()
    deadline = time.monotonic() + max_seconds
    fleet.wait_all("ready", time.monotonic() + 60)
    proto.emit("ready", port=port, workers=workers, backlog=backlog, mode="push" if push else "hold",
               pss=sum_fields(fleet.latest("ready"), "pss")["pss"] + proportional_set_size())
    next_report = time.monotonic()
    seq = 0
    while time.monotonic() < deadline:
        commands = proto.read_commands(0.02)
        fleet.pump(0.03)
        if commands is None or "release" in (commands or []):
            break
        for cmd in commands or []:
            if cmd == "push":
                seq += 1
                _push(fleet, seq)
            elif cmd == "sample":
                for w in fleet.workers:
                    w.last.pop("sampled", None)
                fleet.broadcast("report")
                fleet.wait_all("sampled", time.monotonic() + 10)
                sampled = fleet.latest("sampled")
                proto.emit("sampled", **sum_fields(sampled, "open"),
                           pss=sum_fields(sampled, "pss")["pss"] + proportional_set_size())
        if time.monotonic() >= next_report:
            proto.emit("progress", **sum_fields(fleet.latest("progress"), "open", "accepted"))
            next_report = time.monotonic() + 0.5
    fleet.release()
    fleet.wait_all("stats", time.monotonic() + 60)
    stats = fleet.latest("stats")
    codes = fleet.reap()
    merged = sum_fields(stats, "accepted", "closed_by_peer", "open_at_end", "peak_open")
    proto.emit("stats", **merged, accept_errors=merge_counts(stats, "accept_errors"),
               workers=workers, workers_failed=sum(1 for c in codes if c))


def _push(fleet: Fleet, seq: int) -> None:
    """Tell every worker to send update ``seq``, stamped now; report once all have."""
    for w in fleet.workers:
        w.last.pop("pushed", None)
    sent_ns = time.monotonic_ns()
    fleet.broadcast(f"push {seq} {sent_ns}")
    fleet.wait_all("pushed", time.monotonic() + 60)
    pushed = fleet.latest("pushed")
    proto.emit("pushed", seq=seq, sent_ns=sent_ns, **sum_fields(pushed, "written", "failed", "subscribers"),
               slowest_worker_s=max((p["took_s"] for p in pushed), default=0.0))
