"""Role 'refuse-on-full': make every full listener of this host refuse, as Windows does.

Linux drops a SYN that finds the accept queue full (ack_backlog > max_ack_backlog:
it admits backlog + 1), and the client times out. Windows answers it with a reset
(WSAECONNREFUSED). This role reads every listener's accept queue through sock_diag
(NETLINK_SOCK_DIAG, LISTEN sockets only, IPv4 and IPv6) every ``interval`` seconds and
keeps the ports of the full ones in an nft set, which the lab's rule answers with a
TCP reset: ``tcp dport @full_listeners ... reject with tcp reset``. It works for any
program of the host, not only the agent's. Reaction time: one interval. A SYN that
arrives within it is dropped as plain Linux does and refused on its first
retransmission (about 1 s later).
"""
from __future__ import annotations

import re
import subprocess
import time

from . import proto
from .sockdiag import listeners

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def full_ports(seen: list[tuple[int, int, int]]) -> set[int]:
    """Ports with a listener whose accept queue is full by Linux's own test (queue > backlog)."""
    return {port for port, queue, backlog in seen if queue > backlog}


def refuse_on_full(table: str, set_name: str, interval_s: float, max_seconds: float) -> None:
    """Keep ``inet table set_name`` equal to the set of full listeners' ports until released."""
    if not (NAME.match(table) and NAME.match(set_name)):
        raise SystemExit(f"refuse-on-full: bad nft table or set name {table!r} {set_name!r}")
    nft = subprocess.Popen(["nft", "-i"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, text=True)
    assert nft.stdin is not None
    marked: set[int] = set()
    toggles = polls = 0
    proto.emit("ready", interval_s=interval_s)
    deadline = time.monotonic() + max_seconds
    try:
        while time.monotonic() < deadline and not proto.stdin_closed(interval_s):
            full = full_ports(listeners())
            polls += 1
            for port in sorted(full - marked):
                nft.stdin.write(f"add element inet {table} {set_name} {{ {port} }}\n")
            for port in sorted(marked - full):
                nft.stdin.write(f"delete element inet {table} {set_name} {{ {port} }}\n")
            if full != marked:
                nft.stdin.flush()
                toggles += len(full ^ marked)
                marked = full
    finally:
        nft.stdin.close()
        nft.wait(timeout=10)
    proto.emit("stats", polls=polls, toggles=toggles)
