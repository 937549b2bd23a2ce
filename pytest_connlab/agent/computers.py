"""Role 'inbound-computers': free an inbound-cap slot once its computer has gone.

The lab's nft rule admits the first SYN of a computer (a source address) while the
server's set of admitted computers has room (a dynamic set of size N, one per address
family) and resets TCP connections from any other. This role makes the set mean
"computers connected now": every ``interval`` seconds (longer while a poll is costly) it
reads the server's TCP peers (sock_diag: every state but LISTEN, TIME_WAIT and CLOSE) and
the admitted addresses (nfnetlink: no process per poll), and deletes an admitted
address that has had no connection for ``idle`` seconds, so the next computer gets
its slot. Only TCP takes a slot; ping and UDP pass the rule untouched.
"""
from __future__ import annotations

import subprocess
import time

from . import proto
from .listenwatch import NAME
from .nftsets import addresses
from .sockdiag import peers


def free_slots(table: str, sets: list[str], idle_s: float, interval_s: float, max_seconds: float) -> None:
    """Delete admitted addresses without a connection for ``idle_s`` from ``sets`` until released."""
    if not (NAME.match(table) and all(NAME.match(s) for s in sets)):
        raise SystemExit(f"inbound-computers: bad nft table or set name {table!r} {sets!r}")
    nft = subprocess.Popen(["nft", "-i"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, text=True)
    assert nft.stdin is not None
    absent_since: dict[tuple[str, str], float] = {}
    polls = freed = 0
    proto.emit("ready", idle_s=idle_s, interval_s=interval_s)
    deadline = time.monotonic() + max_seconds
    try:
        wait = interval_s
        while time.monotonic() < deadline and not proto.stdin_closed(wait):
            polls += 1
            started = time.monotonic()
            live = peers()
            now = time.monotonic()
            admitted = {(s, addr) for s in sets for addr in addresses(table, s)}
            for key in list(absent_since):
                if key not in admitted or key[1] in live:
                    del absent_since[key]
            for key in sorted(admitted):
                if key[1] in live:
                    continue
                since = absent_since.setdefault(key, now)
                if now - since >= idle_s:
                    nft.stdin.write(f"delete element inet {table} {key[0]} {{ {key[1]} }}\n")
                    nft.stdin.flush()
                    del absent_since[key]
                    freed += 1
            # with many connections open a poll costs more: never spend more than a fifth of the time on it
            wait = max(interval_s, 4 * (time.monotonic() - started))
    finally:
        nft.stdin.close()
        nft.wait(timeout=10)
    proto.emit("stats", polls=polls, freed=freed)
