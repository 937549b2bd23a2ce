"""http_connection_cap: clients each hold a kept-alive HTTP connection; the
server answers 200 up to its cap and then 403.9 (IIS 5.1 on XP) or 503 (HTTP.SYS).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..profiles.emulation import HTTP_403_9_PAST, HTTP_503_PAST
from ..report.observation import NO_ERROR, Observation
from .common import expectation, http_clients, observation, pin_measuring_server, start_agent_server

if TYPE_CHECKING:
    from ..lab.lab import Lab


def _http_cap(lab: Lab) -> tuple[int | None, str, str]:
    """The cap the agent's HTTP server plays, the status it answers past it, and how to say so."""
    for mechanism, status, who in ((HTTP_503_PAST, "503", "HTTP.SYS"), (HTTP_403_9_PAST, "403.9", "IIS 5.1")):
        if mechanism in lab.emulated:
            return lab.emulated[mechanism], status, f"the agent's HTTP server plays {who}: {status} past"
    return None, "503", ""


def http_connection_cap(lab: Lab, clients: int = 40, timeout: float = 3.0) -> Observation:
    """``clients`` kept-alive HTTP connections at once; count the ones served with 200."""
    cap, status, key = _http_cap(lab)
    exp = expectation(lab, "http_connection_cap",
                      (cap, f"{key} {cap}" if cap else "no HTTP connection cap in this profile's settings"),
                      lab_endings=(f"HTTP {status}",) if cap else ())
    pin_measuring_server(lab)
    server = start_agent_server(lab, "http", extra=("--max-conns", str(cap or 0), "--over-status", status))
    start = time.monotonic()
    answers = http_clients(lab, server.endpoint, clients, timeout)
    duration = time.monotonic() - start
    stats = server.stop()
    statuses = answers["statuses"]
    errors = [s for s in answers["order"] if s != "200"]
    ended = f"HTTP {errors[0]}" if errors and errors[0][0].isdigit() else (errors[0] if errors else NO_ERROR)
    evidence = {"statuses": statuses, "server_served": stats.get("served"),
                "server_over_cap": stats.get("over_cap"), "server_peak_open": stats.get("peak_open")}
    return observation(lab, "http_connection_cap", exp, observed=int(statuses.get("200", 0)),
                       ended_by=ended, bound=clients, duration_s=duration, evidence=evidence)
