"""Client role 'open': open connections and hold them until released.

Connections go out one after another, round-robin over the source IPs, each with
a connect timeout. At the first failure the role tries ``extra`` more attempts at
once, to show how further connects end (refused, or silently dropped), then holds
every open socket until the controller releases it.
"""
from __future__ import annotations

import socket
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from . import proto
from .connect import open_connection
from .errnames import error_fields
from .limits import raise_nofile_to_hard


def _attempt(target: tuple[str, int], source: str | None, timeout: float
             ) -> tuple[socket.socket | None, proto.ErrorFields | None]:
    """One connect: the socket, or the error that ended it."""
    try:
        return open_connection(target, source, timeout), None
    except OSError as exc:
        return None, error_fields(exc)


def _extra_attempts(target: tuple[str, int], sources: list[str | None], extra: int,
                    timeout: float) -> tuple[list[socket.socket], list[proto.ErrorFields]]:
    """Try ``extra`` connects concurrently after the first failure."""
    if extra <= 0:
        return [], []
    with ThreadPoolExecutor(max_workers=min(extra, 32)) as pool:
        outcomes = list(pool.map(lambda i: _attempt(target, sources[i % len(sources)], timeout),
                                 range(extra)))
    socks = [s for s, _ in outcomes if s is not None]
    errors = [e for _, e in outcomes if e is not None]
    return socks, errors


def open_and_hold(target: tuple[str, int], sources: list[str | None], count: int,
                  timeout: float, deadline_s: float, extra: int, hold_s: float,
                  stop_on_error: bool) -> None:
    """Open up to ``count`` connections, report, hold until released, report again."""
    budget = raise_nofile_to_hard()
    start = time.monotonic()
    held: list[socket.socket] = []
    per_source: Counter[str] = Counter()
    errors: list[proto.SourceError] = []
    first_error_at: int | None = None
    for i in range(min(count, budget)):
        if time.monotonic() - start > deadline_s:
            break
        source = sources[i % len(sources)]
        sock, err = _attempt(target, source, timeout)
        if sock is not None:
            held.append(sock)
            per_source[source or "*"] += 1
            continue
        if err is not None:
            errors.append(proto.SourceError(**err, source=source))
        if first_error_at is None:
            first_error_at = len(held)
        if stop_on_error:
            break
    extra_socks: list[socket.socket] = []
    extra_errors: list[proto.ErrorFields] = []
    if errors and stop_on_error:
        extra_socks, extra_errors = _extra_attempts(target, sources, extra, timeout)
    held.extend(extra_socks)
    proto.send(proto.Opened(event="opened", established=len(held) - len(extra_socks), per_source=dict(per_source),
                            errors=errors, extra_established=len(extra_socks), extra_errors=extra_errors,
                            first_error_at=first_error_at, fd_budget=budget,
                            elapsed_s=round(time.monotonic() - start, 4)))
    held_for = proto.hold_until_released(hold_s)
    alive = sum(1 for s in held if _still_open(s))
    proto.send(proto.Released(event="released", held_s=round(held_for, 3), still_open=alive))
    for s in held:
        s.close()


def _still_open(sock: socket.socket) -> bool:
    """True when the peer has neither reset nor closed the connection."""
    try:
        sock.setblocking(False)
        data = sock.recv(1, socket.MSG_PEEK)
        return data != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
