"""thread_pool: a thread-per-connection server with a fixed pool answers as many
connections as it has threads; the others are accepted and never answered. The
agent's event-loop server answers all of them, on the same lab, as a control.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..report.observation import NO_ERROR, Observation
from .common import expectation, http_clients, observation, pin_measuring_server, start_agent_server

if TYPE_CHECKING:
    from ..lab.lab import Lab


def _ending(order: list[str], unanswered: str) -> str:
    """How the first request that got no 200 ended, as the agent's client saw it."""
    first = next((status for status in order if status != "200"), None)
    if first is None:
        return NO_ERROR
    if first == "timeout":
        return unanswered
    return f"HTTP {first}" if first[0].isdigit() else first


def thread_pool(lab: Lab, threads: int = 200, clients: int | None = None, timeout: float = 2.0) -> Observation:
    """Hold ``clients`` HTTP connections on a pool of ``threads``; count those answered."""
    clients = clients or threads + 40
    unanswered = f"no answer within {timeout:g} s"  # the agent's client saw no response in time
    exp = expectation(lab, "thread_pool", (min(threads, clients), f"a pool of {threads} threads"),
                      lab_endings=(unanswered,) if clients > threads else (NO_ERROR,))
    start = time.monotonic()
    pin_measuring_server(lab)
    threaded = start_agent_server(lab, "threaded", extra=("--threads", str(threads)))
    answers = http_clients(lab, threaded.endpoint, clients, timeout)
    pool_stats = threaded.stop()
    loop = start_agent_server(lab, "http")
    control = http_clients(lab, loop.endpoint, clients, timeout)
    loop.stop()
    statuses = answers["statuses"]
    served = int(statuses.get("200", 0))
    evidence = {"threads": threads, "clients": clients, "statuses": statuses,
                "server_peak_busy_threads": pool_stats["peak_busy"],
                "event_loop_server_statuses": control["statuses"],
                "how": f"{served} answered; the other {clients - served} were accepted and never answered "
                       f"within {timeout} s (no error, no reset)"}
    return observation(lab, "thread_pool", exp, observed=served,
                       ended_by=_ending(answers["order"], unanswered), bound=clients,
                       duration_s=time.monotonic() - start, evidence=evidence)
