"""Forked worker processes that share one job, and a parent that sums what they report.

One process may hold at most RLIMIT_NOFILE sockets (20,000 hard on the lab
machines), so mass roles fork workers. A worker writes JSON lines to its event
pipe and reads command lines ('push ...', 'release') from its command pipe; it
dies with its parent (PR_SET_PDEATHSIG) and releases when the command pipe closes.
Forked workers share the interpreter's pages, so their memory counts what each
connection adds, not another interpreter.
"""
from __future__ import annotations

import ctypes
import json
import os
import selectors
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent exits."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def proportional_set_size() -> int:
    """This process's share of resident memory in bytes (Pss: shared pages divided among sharers)."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def read_or_eof(fd: int, size: int) -> bytes:
    """What a connection has for us; b"" when the peer closed or reset it."""
    try:
        return os.read(fd, size)
    except OSError:
        return b""


class WorkerLink:
    """The worker's end: send events to the parent, read its commands."""

    def __init__(self, index: int, events_fd: int, commands_fd: int) -> None:
        self.index = index
        self.events_fd = events_fd
        self.commands_fd = commands_fd
        self._pending = b""

    def send(self, event: str, **fields: Any) -> None:
        fields["event"] = event
        data = (json.dumps(fields, separators=(",", ":")) + "\n").encode()
        while data:
            data = data[os.write(self.events_fd, data):]

    def commands(self) -> list[str]:
        """Command lines that have arrived (non-blocking); ['release'] once the pipe closed."""
        try:
            chunk = os.read(self.commands_fd, 65536)
        except BlockingIOError:
            return []
        if not chunk:
            return ["release"]
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        return [line.decode() for line in lines if line]


@dataclass
class Worker:
    """The parent's handle on one worker."""

    pid: int
    events_fd: int
    commands_fd: int
    buffer: bytes = b""
    last: dict[str, dict[str, Any]] = field(default_factory=dict)  # latest event of each kind
    alive: bool = True


def fork_workers(count: int, job: Callable[[WorkerLink], None]) -> list[Worker]:
    """Fork ``count`` workers running ``job``; each exits when its job returns."""
    workers: list[Worker] = []
    for index in range(count):
        ev_r, ev_w = os.pipe()
        cmd_r, cmd_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                die_with_parent()
                os.close(ev_r)
                os.close(cmd_w)
                for other in workers:
                    os.close(other.events_fd)
                    os.close(other.commands_fd)
                os.set_blocking(cmd_r, False)
                job(WorkerLink(index, ev_w, cmd_r))
            except BaseException:  # the parent sees the worker die; stderr has the traceback
                import traceback
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        os.close(ev_w)
        os.close(cmd_r)
        workers.append(Worker(pid, ev_r, cmd_w))
    return workers


class Fleet:
    """Read every worker's events; broadcast commands; reap them at the end."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self._sel = selectors.DefaultSelector()
        for w in workers:
            self._sel.register(w.events_fd, selectors.EVENT_READ, w)

    def pump(self, timeout: float) -> list[tuple[Worker, dict[str, Any]]]:
        """Events that arrived within ``timeout`` s (each also kept as the worker's latest of its kind)."""
        out: list[tuple[Worker, dict[str, Any]]] = []
        for key, _ in self._sel.select(timeout=timeout):
            w: Worker = key.data
            chunk = os.read(w.events_fd, 1 << 20)
            if not chunk:
                w.alive = False
                self._sel.unregister(w.events_fd)
                continue
            w.buffer += chunk
            *lines, w.buffer = w.buffer.split(b"\n")
            for line in lines:
                event = json.loads(line)
                w.last[event["event"]] = event
                out.append((w, event))
        return out

    def wait_all(self, kind: str, deadline: float,
                 on_tick: Callable[[], None] | None = None, tick_s: float = 0.5) -> None:
        """Pump until every live worker has sent a ``kind`` event (or died, or the deadline passed)."""
        next_tick = time.monotonic() + tick_s
        while time.monotonic() < deadline:
            if all(kind in w.last or not w.alive for w in self.workers):
                return
            self.pump(min(0.1, max(0.0, deadline - time.monotonic())))
            if on_tick and time.monotonic() >= next_tick:
                on_tick()
                next_tick = time.monotonic() + tick_s

    def broadcast(self, line: str) -> None:
        for w in self.workers:
            try:
                os.write(w.commands_fd, (line + "\n").encode())
            except OSError:
                pass

    def release(self) -> None:
        """Close every command pipe: each worker lets go of its connections."""
        for w in self.workers:
            try:
                os.close(w.commands_fd)
            except OSError:
                pass

    def latest(self, kind: str) -> list[dict[str, Any]]:
        return [w.last[kind] for w in self.workers if kind in w.last]

    def reap(self, timeout: float = 30.0) -> list[int]:
        """Wait for every worker (kill what is left after ``timeout``); their exit statuses."""
        deadline = time.monotonic() + timeout
        codes = []
        for w in self.workers:
            while True:
                pid, status = os.waitpid(w.pid, os.WNOHANG)
                if pid:
                    codes.append(os.waitstatus_to_exitcode(status))
                    break
                if time.monotonic() > deadline:
                    os.kill(w.pid, signal.SIGKILL)
                    codes.append(os.waitstatus_to_exitcode(os.waitpid(w.pid, 0)[1]))
                    break
                time.sleep(0.01)
            try:
                os.close(w.events_fd)
            except OSError:
                pass
        self._sel.close()
        return codes


def sum_fields(events: list[dict[str, Any]], *keys: str) -> dict[str, int]:
    """Sum the numeric ``keys`` over events."""
    return {k: sum(int(e.get(k, 0) or 0) for e in events) for k in keys}


def merge_counts(events: list[dict[str, Any]], key: str) -> dict[str, int]:
    """Merge the {name: count} dicts found under ``key``."""
    total: dict[str, int] = {}
    for e in events:
        for name, n in (e.get(key) or {}).items():
            total[name] = total.get(name, 0) + int(n)
    return total
