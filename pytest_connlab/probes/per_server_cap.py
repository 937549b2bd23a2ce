"""per_server_cap: an HTTP client that pools connections per server (WinInet: 2)
sends many requests to a slow server; the server counts the connections it sees
at once, and every request is still answered, later.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..profiles.emulation import HTTP_POOL_PER_SERVER
from ..report.observation import NO_ERROR, Observation
from .common import expectation, observation, pin_measuring_server, start_agent_server

if TYPE_CHECKING:
    from ..lab.lab import Lab


def per_server_cap(lab: Lab, requests: int = 8, delay_s: float = 0.3) -> Observation:
    """Send ``requests`` at once through the client's per-server pool; count the server's peak."""
    pool = lab.emulated.get(HTTP_POOL_PER_SERVER)
    exp = expectation(lab, "per_server_cap",
                      (pool, f"the agent's HTTP client pools {pool} connections per server" if pool else
                       "no per-server cap in this profile's settings: one connection per request"),
                      lab_endings=(NO_ERROR,))  # nothing fails here: a failure is a finding
    pin_measuring_server(lab)
    server = start_agent_server(lab, "http", extra=("--delay", str(delay_s)))
    client = lab.clients[0]
    start = time.monotonic()
    proc = client.agent("http", "--target", server.endpoint, "--sources", client.address,
                        "--requests", str(requests), "--pool", str(pool or requests), "--timeout", "10")
    answers = proc.expect("responses", timeout=requests * delay_s + 60)
    duration = time.monotonic() - start
    proc.stop()
    stats = server.stop()
    statuses = answers["statuses"]
    failed = [s for s in answers["order"] if s != "200"]
    evidence = {"requests": requests, "server_delay_s": delay_s, "statuses": statuses,
                "longest_wait_for_a_connection_s": answers["longest_wait_s"], "elapsed_s": answers["elapsed_s"],
                "how": (f"at most {stats['peak_open']} connections at once; every request answered, the "
                        f"last after waiting {answers['longest_wait_s']} s for a free connection")}
    return observation(lab, "per_server_cap", exp, observed=int(stats["peak_open"]),
                       ended_by=failed[0] if failed else NO_ERROR, bound=requests, duration_s=duration,
                       evidence=evidence)
