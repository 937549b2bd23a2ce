"""Client role 'hold-clients': open many connections fast, hold them, optionally subscribe.

The controller sends a plan: one entry per worker process, each a map of source IP
to the connections that worker opens from it. Every worker keeps up to
``in_flight`` non-blocking connects going (IP_BIND_ADDRESS_NO_PORT, so each
source IP has its own port range per destination), and keeps each established
connection as a bare descriptor (4 bytes), not a Python object. A source that
answers EADDRNOTAVAIL has run out of ports toward this destination and is dropped.

The ramp needs no epoll: a second ``connect()`` on a pending socket answers for it (0 or
EISCONN once connected, EALREADY while the handshake is on, else the error that ended it),
so each pass asks every connect in flight once and sleeps a millisecond only when none of
them moved. Held connections enter an epoll only when they subscribe.

With ``subscribe`` each connection asks ``GET /events`` and records, for every
update the server pushes, the time from the push's start to its arrival here.
"""
from __future__ import annotations

import _socket
import errno
import os
import select
import socket
import time
from array import array
from collections import Counter

from . import proto
from .connect import IP_BIND_ADDRESS_NO_PORT
from .errnames import name_of
from .fleet import Fleet, WorkerLink, fork_workers, merge_counts, proportional_set_size, read_or_eof, sum_fields
from .limits import raise_nofile_to_hard

SUBSCRIBE = b"GET /events HTTP/1.1\r\nHost: lab\r\nAccept: text/event-stream\r\n\r\n"
REPORT_EVERY_S = 0.25
RUN_PER_SOURCE = 32  # connects started from one source before moving to the next
IDLE_WAIT_S = 0.001  # a pass where no connect in flight moved waits this long before the next
NO_MORE_SOCKETS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Updates:
    """What a subscribing worker received: latency of every update, connections lost."""

    def __init__(self) -> None:
        self.latencies_us: dict[int, list[int]] = {}
        self.lost = 0
        self._partial: dict[int, bytes] = {}

    def read(self, ramp: Ramp, wait_s: float) -> None:
        """Read whatever the held connections received within ``wait_s``."""
        for fd, _ in ramp.ep.poll(wait_s, 4096):
            if fd not in ramp.pending:
                self.handle(ramp, fd)

    def handle(self, ramp: Ramp, fd: int) -> None:
        """Read one readable connection; an end of stream counts it lost."""
        data = read_or_eof(fd, 65536)
        if not data:
            ramp.ep.unregister(fd)
            self.lost += 1
            return
        self._parse(fd, data)

    def _parse(self, fd: int, data: bytes) -> None:
        now_ns = time.monotonic_ns()
        buf = self._partial.pop(fd, b"") + data
        *lines, rest = buf.split(b"\n")
        if rest:
            self._partial[fd] = rest
        for line in lines:
            if line.startswith(b"data: "):
                seq, sent_ns = line[6:].split()
                self.latencies_us.setdefault(int(seq), []).append((now_ns - int(sent_ns)) // 1000)



class Ramp:
    """One worker's connects: what is in flight, what is held, and what failed."""

    def __init__(self, target: tuple[str, int], plan: dict[str, int], in_flight: int,
                 timeout: float, updates: Updates | None) -> None:
        self.target = target
        self.left = {src: n for src, n in plan.items() if n > 0}
        self.order = list(self.left)
        self.in_flight = in_flight
        self.timeout = timeout
        self.updates = updates
        self.subscribe = updates is not None
        self.ep = select.epoll()
        self.pending: dict[int, tuple[_socket.socket, float]] = {}
        self.held = array("i")
        self.errors: Counter[str] = Counter()
        self.exhausted: list[str] = []
        self.out_of_sockets = False
        self._turn = 0

    @property
    def more_to_start(self) -> bool:
        return bool(self.order) and not self.out_of_sockets

    def _drop_source(self, src: str) -> None:
        if src in self.order:
            self.order.remove(src)

    def start_some(self) -> None:
        """Start connects until ``in_flight`` are pending or the plan is done (the hot loop:
        names are bound locally and each source gets a run of connects at a time)."""
        room = self.in_flight - len(self.pending)
        if room <= 0 or not self.more_to_start:
            return
        new_socket, family, kind = _socket.socket, socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK
        level, no_port, target = socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, self.target
        pending = self.pending
        stamp = time.monotonic()
        while room > 0 and self.more_to_start:
            src = self.order[self._turn % len(self.order)]
            self._turn += 1
            run = min(room, self.left[src], RUN_PER_SOURCE)
            local = (src, 0)
            started = 0
            code = 0
            for _ in range(run):
                try:
                    sock = new_socket(family, kind)
                except OSError as exc:
                    self.errors[name_of(exc.errno or 0)] += 1
                    self.out_of_sockets = exc.errno in NO_MORE_SOCKETS
                    break
                try:
                    sock.setsockopt(level, no_port, 1)
                    sock.bind(local)
                    code = sock.connect_ex(target)
                except OSError as exc:
                    code = exc.errno or errno.EINVAL
                started += 1
                if code == errno.EINPROGRESS or code == 0:
                    pending[sock.fileno()] = (sock, stamp)
                    continue
                sock.close()
                self.errors[name_of(code)] += 1
                if code == errno.EADDRNOTAVAIL:  # this source's ports toward the target are used up
                    break
            room -= started
            self.left[src] -= started
            if code == errno.EADDRNOTAVAIL:
                self.exhausted.append(src)
                self._drop_source(src)
            elif self.left[src] <= 0:
                self._drop_source(src)

    def finish_ready(self, wait_s: float) -> None:
        """Ask each pending connect once how it went; keep the established ones as bare
        descriptors. When none moved, wait up to ``wait_s`` (at most IDLE_WAIT_S) before the
        next pass; a subscriber's updates are read on the way."""
        pending, held, target = self.pending, self.held, self.target
        done = []
        for fd, (sock, _) in pending.items():
            code = sock.connect_ex(target)
            if code != errno.EALREADY and code != errno.EINPROGRESS:
                done.append((fd, sock, code))
        for fd, sock, code in done:
            del pending[fd]
            if code != 0 and code != errno.EISCONN:
                sock.close()
                self.errors[name_of(code)] += 1
                continue
            if self.subscribe:
                try:
                    sock.send(SUBSCRIBE)
                except OSError as exc:
                    sock.close()
                    self.errors[name_of(exc.errno or 0)] += 1
                    continue
                self.ep.register(fd, select.EPOLLIN | select.EPOLLRDHUP)
            held.append(sock.detach())
        if self.updates is not None and held:
            for fd, _ in self.ep.poll(0, 4096):
                self.updates.handle(self, fd)
        if not done and wait_s > 0:
            time.sleep(min(wait_s, IDLE_WAIT_S))

    def expire(self) -> None:
        """Give up on connects pending longer than ``timeout`` (their SYNs got no answer)."""
        now = time.monotonic()
        for fd in [fd for fd, (_, t0) in self.pending.items() if now - t0 > self.timeout]:
            sock, _ = self.pending.pop(fd)
            sock.close()
            self.errors["ETIMEDOUT"] += 1

    def close_all(self) -> None:
        for sock, _ in self.pending.values():
            sock.close()
        self.pending.clear()
        for fd in self.held:
            try:
                os.close(fd)
            except OSError:
                pass
        self.ep.close()


def client_job(link: WorkerLink, target: tuple[str, int], plan: dict[str, int], in_flight: int,
               timeout: float, deadline_s: float, hold_s: float, subscribe: bool) -> None:
    """One worker: ramp, report, hold (reading updates when subscribed) until released."""
    raise_nofile_to_hard()
    updates = Updates()
    ramp = Ramp(target, plan, in_flight, timeout, updates if subscribe else None)
    link.send("ready", pss=proportional_set_size())
    start = time.monotonic()
    next_report = start
    released = False
    while (ramp.more_to_start or ramp.pending) and time.monotonic() - start < deadline_s:
        ramp.start_some()
        ramp.finish_ready(0.01 if ramp.pending else 0)
        now = time.monotonic()
        if now >= next_report:
            ramp.expire()
            link.send("progress", held=len(ramp.held), pending=len(ramp.pending))
            next_report = now + REPORT_EVERY_S
            if "release" in link.commands():
                released = True
                break
    not_attempted = sum(max(0, n) for n in ramp.left.values())
    link.send("opened", held=len(ramp.held), errors=dict(ramp.errors), exhausted=ramp.exhausted,
              not_attempted=not_attempted, unfinished=len(ramp.pending),
              ramp_s=round(time.monotonic() - start, 3), pss=proportional_set_size())
    hold_until = time.monotonic() + hold_s
    while not released and time.monotonic() < hold_until:
        if subscribe:
            updates.read(ramp, 0.05)
        cmds = link.commands()
        if "release" in cmds:
            break
        if "report" in cmds:
            link.send("updates", latencies_us=updates.latencies_us, lost=updates.lost)
            updates.latencies_us = {}
        if not subscribe:
            select.select([link.commands_fd], [], [], 0.5)
    ramp.close_all()
    link.send("released", lost=updates.lost)


def run_clients(target: tuple[str, int], plan: list[dict[str, int]], in_flight: int,
                timeout: float, deadline_s: float, hold_s: float, subscribe: bool) -> None:
    """Fork one worker per plan entry; relay summed progress, 'opened', 'updates', 'released'."""
    fleet = Fleet(fork_workers(len(plan), lambda link: client_job(
        link, target, plan[link.index], in_flight, timeout, deadline_s, hold_s, subscribe)))
    limit = time.monotonic() + deadline_s + 30
    fleet.wait_all("ready", limit)
    proto.emit("ready", workers=len(plan), pss=sum_fields(fleet.latest("ready"), "pss")["pss"]
               + proportional_set_size())

    def tick() -> None:
        proto.emit("progress", **sum_fields(fleet.latest("progress"), "held", "pending"))

    fleet.wait_all("opened", limit, on_tick=tick)
    opened = fleet.latest("opened")
    exhausted = sorted({s for e in opened for s in e.get("exhausted", [])})
    proto.emit("opened", **sum_fields(opened, "held", "not_attempted", "unfinished"),
               errors=merge_counts(opened, "errors"), exhausted=exhausted,
               ramp_s=max((e["ramp_s"] for e in opened), default=0.0),
               pss=sum_fields(opened, "pss")["pss"] + proportional_set_size(),
               workers=len(plan), workers_reporting=len(opened))
    hold_until = time.monotonic() + hold_s
    while time.monotonic() < hold_until:
        commands = proto.read_commands(0.2)
        if commands is None or "release" in commands:
            break
        if "report" in commands:
            for w in fleet.workers:
                w.last.pop("updates", None)
            fleet.broadcast("report")
            fleet.wait_all("updates", time.monotonic() + 30)
            reports = fleet.latest("updates")
            latencies: dict[str, list[int]] = {}
            for r in reports:
                for seq, values in r["latencies_us"].items():
                    latencies.setdefault(seq, []).extend(values)
            proto.emit("updates", latencies_us=latencies, **sum_fields(reports, "lost"))
        fleet.pump(0)
    fleet.release()
    fleet.wait_all("released", time.monotonic() + 60)
    released = fleet.latest("released")
    codes = fleet.reap()
    proto.emit("released", **sum_fields(released, "lost"), workers_failed=sum(1 for c in codes if c))
