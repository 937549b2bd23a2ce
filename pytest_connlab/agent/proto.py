"""JSON-lines protocol between the agent and the controller.

The events both sides read are TypedDicts here: the agent builds them (``send``), the
controller's ``AgentProcess.expect("opened", ...)`` returns them typed. Roles whose
events only one probe reads emit plain fields (``emit``).
"""
from __future__ import annotations

import json
import os
import select
import sys
import time
from collections.abc import Mapping
from typing import Any, Literal, TypedDict


def emit(event: str, **fields: Any) -> None:
    """Write one event as a JSON line and flush it at once."""
    fields["event"] = event
    sys.stdout.write(json.dumps(fields, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def send(event: Mapping[str, object]) -> None:
    """Write one typed event (it carries its own ``event`` name) as a JSON line."""
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def stdin_closed(timeout: float) -> bool:
    """Wait up to ``timeout`` s; True when the controller closed our stdin or said release."""
    ready, _, _ = select.select([sys.stdin], [], [], max(timeout, 0.0))
    if not ready:
        return False
    line = os.read(sys.stdin.fileno(), 4096)
    return line == b"" or b"release" in line


def hold_until_released(max_seconds: float) -> float:
    """Block until stdin closes, 'release' arrives, or ``max_seconds`` pass; return the time held."""
    start = time.monotonic()
    deadline = start + max_seconds
    while time.monotonic() < deadline:
        if stdin_closed(min(1.0, deadline - time.monotonic())):
            break
    return time.monotonic() - start


def read_commands(timeout: float) -> list[str] | None:
    """Command lines from the controller within ``timeout`` s; None once stdin has closed."""
    ready, _, _ = select.select([sys.stdin], [], [], max(timeout, 0.0))
    if not ready:
        return []
    chunk = os.read(sys.stdin.fileno(), 65536)
    if not chunk:
        return None
    return [line for line in chunk.decode(errors="replace").splitlines() if line]


# The events both sides share: the agent builds them, the controller reads them (agentproc.expect).
class ErrorFields(TypedDict):
    """How one connect ended in an error: ``{"errno": 99, "name": "EADDRNOTAVAIL", "message": ...}``."""

    errno: int
    name: str
    message: str


class SourceError(ErrorFields, total=False):
    source: str | None  # the source IP the failed connect was bound to


class Opened(TypedDict):
    """Role 'open' (and its spread over workers): the connections it holds, and how the rest ended."""

    event: Literal["opened"]
    established: int
    per_source: dict[str, int]
    errors: list[SourceError]
    extra_established: int
    extra_errors: list[ErrorFields]  # the extra attempts after the first failure
    first_error_at: int | None
    fd_budget: int
    elapsed_s: float


class Released(TypedDict, total=False):
    """A holding role let go: how long it held and what was still open (burst: how each ended)."""

    event: Literal["released"]
    held_s: float
    still_open: int
    connected: dict[str, int]
    pending_at_release: dict[str, int]


class Burst(TypedDict):
    """Role 'burst': the state of each started connect after the settle time."""

    event: Literal["burst"]
    states: dict[str, int]
    order: list[str]
    start_errors: dict[str, int]
    elapsed_s: float


class Ready(TypedDict, total=False):
    """A server role listens: its port and backlog (and its process limits)."""

    event: Literal["ready"]
    port: int
    backlog: int
    mode: str
    nofile: int
    fds_open: int
    threads: int
    workers: int
    pss: int


class Stats(TypedDict, total=False):
    """A server role stopped: what it accepted and served."""

    event: Literal["stats"]
    accepted: int
    closed_by_peer: int
    accept_errors: dict[str, int]
    peak_open: int
    open_at_end: int
    served: int
    over_cap: int
    threads: int
    peak_busy: int
    connections_served: int
    requests_served: int
    waiting_for_a_thread: int


class Responses(TypedDict, total=False):
    """Role 'http': the status of every request, in order, and (pooled) how long they waited."""

    event: Literal["responses"]
    statuses: dict[str, int]
    order: list[str]
    pool: int
    elapsed_s: float
    longest_wait_s: float


class ChurnResult(TypedDict, total=False):
    """Role 'churn': connects made and closed, and the error that stopped them (with a retry's verdict)."""

    event: Literal["result"]
    succeeded: int
    error: ErrorFields | None
    error_confirmed: bool  # the retry failed the same way: the error is persistent, not a blip
    stopped_by: str  # "error", "count" or "deadline"
    peer_resets: int
    per_worker: list[int]
    elapsed_s: float
    workers: int
