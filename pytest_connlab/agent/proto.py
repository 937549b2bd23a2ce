"""JSON-lines protocol between the agent and the controller."""
from __future__ import annotations

import json
import os
import select
import sys
import time
from typing import Any


def emit(event: str, **fields: Any) -> None:
    """Write one event as a JSON line and flush it at once."""
    fields["event"] = event
    sys.stdout.write(json.dumps(fields, separators=(",", ":")) + "\n")
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
