"""Role 'half-open-outbound': at most N outbound connects of this host incomplete at once.

XP SP2's tcpip.sys lets 10 outbound connects be incomplete (SYN sent, no answer yet)
at once and queues the rest (event 4226) for every program of the host. This role
plays it: xtables rules send every outbound SYN (not on lo) and every inbound SYN-ACK
and RST to an NFQUEUE that the role binds. A SYN passes while fewer than ``cap`` of the
connects it let go are unanswered, otherwise it waits in order. A connect stops taking
a slot when its answer arrives (SYN-ACK: it completes; RST: refused), when its socket is
closed (seen in sock_diag: no longer in SYN_SENT), or ``give_up`` seconds after its SYN
went (Windows gives up on a connect after 21 s). A waiting connect whose socket was
closed is dropped from the queue. The kernel does not retransmit a SYN still held in the
queue; a duplicate, if one comes, is dropped.

Commands on stdin: ``stats`` (emit counters now); ``release`` or EOF ends the role,
which removes its rules (``--queue-bypass`` lets SYNs pass if the role dies before).
"""
from __future__ import annotations

import select
import shutil
import subprocess
import sys
import time
from collections import deque

from . import proto
from .nfqueue import Queue, tcp_key
from .sockdiag import syn_sent

Key = tuple[bytes, int, bytes, int]
BUSY_READ_S = 0.05  # sock_diag is re-read this often while a connect waits (for closed sockets)
IDLE_READ_S = 1.0
SYN, RST, ACK = 0x02, 0x04, 0x10


def _rules(queue: int) -> list[list[str]]:
    to_queue = ["-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass"]
    return [["OUTPUT", "!", "-o", "lo", "-p", "tcp", "--syn", *to_queue],
            ["INPUT", "!", "-i", "lo", "-p", "tcp", "--tcp-flags", "SYN,ACK", "SYN,ACK", *to_queue],
            ["INPUT", "!", "-i", "lo", "-p", "tcp", "--tcp-flags", "RST", "RST", *to_queue]]


def _tools() -> list[str]:
    for pair in (("iptables-legacy", "ip6tables-legacy"), ("iptables", "ip6tables")):
        if all(shutil.which(tool) for tool in pair):
            return list(pair)
    raise SystemExit("half-open-outbound: needs iptables and ip6tables (the kernel has no nft queue "
                     "statement): apt-get install iptables")


class Throttle:
    """The slots and the waiting line; every decision is made from what sock_diag shows."""

    def __init__(self, queue: Queue, cap: int, give_up_s: float) -> None:
        self.queue = queue
        self.cap = cap
        self.give_up_s = give_up_s
        self.released: dict[Key, float] = {}  # connects let go, still in SYN_SENT when last read
        self.waiting: deque[tuple[int, Key, float]] = deque()
        self.waiting_keys: set[Key] = set()
        self.counts = {"syns": 0, "passed_at_once": 0, "waited": 0, "answered": 0, "duplicates_dropped": 0,
                       "closed_while_waiting": 0, "slot_reads": 0}
        self.longest_wait_s = 0.0

    def on_packet(self, packet_id: int, payload: bytes, now: float) -> None:
        key, flags = tcp_key(payload)
        if key is None:
            self.queue.verdict(packet_id, True)
        elif flags & (SYN | ACK) == SYN:
            self.on_syn(packet_id, key, now)
        else:  # an answer (SYN-ACK or RST) to one of ours frees its slot
            self.queue.verdict(packet_id, True)
            if self.released.pop((key[2], key[3], key[0], key[1]), None) is not None:
                self.counts["answered"] += 1
                self.release_waiting(now)

    def on_syn(self, packet_id: int, key: Key, now: float) -> None:
        self.counts["syns"] += 1
        if key in self.released:  # a retransmission of a connect already let go
            self.queue.verdict(packet_id, True)
        elif key in self.waiting_keys:
            self.counts["duplicates_dropped"] += 1
            self.queue.verdict(packet_id, False)
        elif not self.waiting and self._in_flight(now) < self.cap:
            self.counts["passed_at_once"] += 1
            self._let_go(packet_id, key, now)
        else:
            self.counts["waited"] += 1
            self.waiting.append((packet_id, key, now))
            self.waiting_keys.add(key)

    def _in_flight(self, now: float) -> int:
        return sum(1 for sent in self.released.values() if now - sent < self.give_up_s)

    def _let_go(self, packet_id: int, key: Key, now: float) -> None:
        self.released[key] = now
        self.queue.verdict(packet_id, True)

    def refresh(self, now: float) -> None:
        """Re-read SYN_SENT sockets: finished connects free their slot, closed waiters leave."""
        self.counts["slot_reads"] += 1
        pending = syn_sent()
        self.released = {k: t for k, t in self.released.items() if k in pending}
        if any(k not in pending for _, k, _ in self.waiting):
            kept: deque[tuple[int, Key, float]] = deque()
            for packet_id, key, since in self.waiting:
                if key in pending:
                    kept.append((packet_id, key, since))
                else:
                    self.counts["closed_while_waiting"] += 1
                    self.waiting_keys.discard(key)
                    self.queue.verdict(packet_id, False)
            self.waiting = kept
        self.release_waiting(now)

    def release_waiting(self, now: float) -> None:
        """Let waiting connects go, in order, while a slot is free."""
        while self.waiting and self._in_flight(now) < self.cap:
            packet_id, key, since = self.waiting.popleft()
            self.waiting_keys.discard(key)
            self.longest_wait_s = max(self.longest_wait_s, now - since)
            self._let_go(packet_id, key, now)

    def stats(self, now: float) -> dict[str, object]:
        return dict(self.counts, cap=self.cap, give_up_s=self.give_up_s, waiting_now=len(self.waiting),
                    in_flight_now=self._in_flight(now), longest_wait_s=round(self.longest_wait_s, 3))


def throttle(cap: int, give_up_s: float, queue_number: int, max_seconds: float) -> None:
    """Hold outbound SYNs past ``cap`` incomplete connects until released (see the module text)."""
    tools = _tools()
    queue = Queue(queue_number)
    added: list[str] = []
    try:
        for tool in tools:
            added.append(tool)
            for rule in _rules(queue_number):
                subprocess.run([tool, "-w", "-A", *rule], check=True, capture_output=True)
        state = Throttle(queue, cap, give_up_s)
        proto.emit("ready", cap=cap, give_up_s=give_up_s, queue=queue_number, tools=tools)
        deadline = time.monotonic() + max_seconds
        last_read, read_every = 0.0, BUSY_READ_S
        while time.monotonic() < deadline:
            every = read_every if state.waiting else IDLE_READ_S
            readable, _, _ = select.select([queue, sys.stdin], [], [], max(0.0, last_read + every - time.monotonic()))
            now = time.monotonic()
            if queue in readable:
                for packet_id, payload in queue.packets():
                    state.on_packet(packet_id, payload, now)
            if sys.stdin in readable:
                commands = proto.read_commands(0)
                if commands is None or "release" in commands:
                    break
                if "stats" in commands:
                    proto.emit("stats", **state.stats(now))
            if now - last_read >= (read_every if state.waiting else IDLE_READ_S):
                state.refresh(now)
                last_read = time.monotonic()
                # with many sockets open a read costs more: never spend more than a fifth of the time on it
                read_every = max(BUSY_READ_S, 5 * (last_read - now))
        proto.emit("stats", **state.stats(time.monotonic()))
    finally:
        for tool in added:
            for rule in _rules(queue_number):
                subprocess.run([tool, "-w", "-D", *rule], capture_output=True)
        queue.close()
