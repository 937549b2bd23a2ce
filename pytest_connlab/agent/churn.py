"""Client role 'churn': connect and close, one after another, until connect fails.

The client closes first, so every closed connection leaves the client's port in
TIME_WAIT: the count reached is the size of the ephemeral pool that is free.
"""
from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Callable
from functools import partial

from . import proto
from .connect import open_connection
from .errnames import error_fields
from .workers import split_evenly

TRANSIENT = (errno.EINTR, errno.EAGAIN)
# A peer's reset of one connection says nothing about the local port pool: with tcp_tw_reuse the
# server may still hold the 4-tuple's previous incarnation in TIME_WAIT and answer a SYN whose
# timestamp is not newer with a reset. Counted, and the churn goes on (up to this many).
PEER_RESETS = (errno.ECONNRESET,)
MAX_PEER_RESETS = 100


def churn(target: tuple[str, int], source: str | None, count: int, deadline_s: float,
          timeout: float, port_pool: str, workers: int = 1) -> None:
    """Churn in ``workers`` processes that share one port pool; report the sum and how it ended.

    Once half of a large range is in TIME_WAIT, every Linux connect() walks the
    used half of the range first (port parity), so one process may not exhaust
    28K ports before the first TIME_WAIT entries expire; more cores help.
    """
    start = time.monotonic()
    if workers <= 1:
        result = _churn_one(target, source, count, deadline_s, timeout, port_pool)
    else:
        result = _merge(_forked([partial(_churn_one, target, source, n, deadline_s, timeout, port_pool)
                                 for n in split_evenly(count, workers)]))
    result["event"] = "result"
    result["elapsed_s"] = round(time.monotonic() - start, 4)
    result["workers"] = max(1, workers)
    proto.send(result)


def _forked(jobs: list[Callable[[], proto.ChurnResult]]) -> list[proto.ChurnResult]:
    """Run each job in a forked child; collect the JSON each writes to its pipe."""
    pipes = []
    for job in jobs:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                os.write(w, json.dumps(job()).encode())
            finally:
                os._exit(0)
        os.close(w)
        pipes.append((pid, r))
    results = []
    for pid, r in pipes:
        chunks = []
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
        os.close(r)
        os.waitpid(pid, 0)
        results.append(json.loads(b"".join(chunks) or b"{}"))
    return results


def _merge(results: list[proto.ChurnResult]) -> proto.ChurnResult:
    """Sum the successes; the first error (by worker) is the error of the whole."""
    errors = [r["error"] for r in results if r.get("error")]
    return proto.ChurnResult(
        succeeded=sum(r.get("succeeded", 0) for r in results),
        error=errors[0] if errors else None,
        error_confirmed=all(r.get("error_confirmed") for r in results if r.get("error")) and bool(errors),
        stopped_by="error" if len(errors) == len(results) else
        ("deadline" if any(r.get("stopped_by") == "deadline" for r in results) else "count"),
        per_worker=[r.get("succeeded", 0) for r in results],
        peer_resets=sum(r.get("peer_resets", 0) for r in results))


def _churn_one(target: tuple[str, int], source: str | None, count: int, deadline_s: float,
               timeout: float, port_pool: str) -> proto.ChurnResult:
    """One process: open and close until an error, the count, or the deadline."""
    start = time.monotonic()
    succeeded = resets = 0
    error: proto.ErrorFields | None = None
    confirmed = False
    while succeeded < count and time.monotonic() - start < deadline_s:
        try:
            open_connection(target, source, timeout, port_pool).close()
        except OSError as exc:
            if exc.errno in TRANSIENT:
                continue
            if exc.errno in PEER_RESETS and resets < MAX_PEER_RESETS:
                resets += 1
                continue
            error = error_fields(exc)
            confirmed = _fails_again(target, source, timeout, port_pool, exc.errno)
            break
        succeeded += 1
    stopped_by = "error" if error else ("count" if succeeded >= count else "deadline")
    return proto.ChurnResult(succeeded=succeeded, error=error, error_confirmed=confirmed, stopped_by=stopped_by,
                             peer_resets=resets)


def _fails_again(target: tuple[str, int], source: str | None, timeout: float,
                 port_pool: str, first_errno: int | None) -> bool:
    """One retry, so a report can say the error was persistent and not a blip."""
    try:
        open_connection(target, source, timeout, port_pool).close()
    except OSError as exc:
        return exc.errno == first_errno or first_errno is None
    return False
