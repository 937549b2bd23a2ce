"""ephemeral_ports: churn connections from one client IP to one server ip:port until connect fails.

The client closes first, so each port it used sits in TIME_WAIT for 60 s; churn
takes seconds, so the count reached is the size of the pool (per destination on
Linux). Measurement conditions (LIMITS.md pitfalls 3 and 4): tcp_rfc1337=1 on
the client, so a stray RST cannot kill a TIME_WAIT entry early and inflate the
count; traffic goes over the veth, never loopback, where tw_reuse=2 hides it.
"""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from ..observation import NO_ERROR, Observation, counter_delta
from .common import expectation, observation, start_agent_server

if TYPE_CHECKING:
    from ..lab import Lab
    from ..target import Target

LIMIT = "ephemeral_ports"
PORT_RANGE = "net.ipv4.ip_local_port_range"
COUNTERS = ("TcpActiveOpens", "TcpExtTWRecycled", "TcpExtTCPTimeWaitOverflow")
MAX_BOUND = 70_000
TIME_WAIT_S = 60  # TCP_TIMEWAIT_LEN


def _pool(lab: Lab) -> tuple[int, int]:
    value = lab.clients[0].sysctls([PORT_RANGE])[PORT_RANGE] or "32768 60999"
    low, high = (int(x) for x in value.split())
    return low, high


def run(lab: Lab, target: Target | None = None, port_pool: str = "per-destination",
        deadline_s: float = 120.0, workers: int | None = None) -> Observation:
    """Measure the ephemeral port pool of the first client toward one server ip:port."""
    client = lab.clients[0]
    lab.pin("client", {"net.ipv4.tcp_rfc1337": "1"}, "no TIME_WAIT assassination")
    low, high = _pool(lab)
    size = high - low + 1
    exp = expectation(lab, LIMIT, (size, f"{PORT_RANGE} = {low} {high}"),
                      default_endings=("EADDRNOTAVAIL",))
    bound = min(MAX_BOUND, max(size, exp.value or 0) + 64)
    if target is None:
        lab.pin("server", {"net.core.somaxconn": "4096"}, "the measuring server must not drop SYNs: "
                "the limit measured is the client's port pool", override=True)
    server = target or start_agent_server(lab, "close")
    before = client.observe(server.port)["counters"]
    start = time.monotonic()
    result = client.agent_once("churn", "--target", server.endpoint, "--source", client.address,
                               "--count", str(bound), "--deadline", str(deadline_s),
                               "--port-pool", port_pool, "--workers", str(workers or os.cpu_count() or 1),
                               timeout=deadline_s + 30)
    duration = time.monotonic() - start
    seen = client.observe(server.port)
    states = seen["sockets"]["remote_port"]
    stats = server.stop() if target is None else {}
    error = result["error"]
    evidence = {"port_range": f"{low} {high}", "pool_size": size, "port_pool": port_pool,
                "error_confirmed_by_retry": result["error_confirmed"],
                "error_message": error["message"] if error else None,
                "stopped_by": result["stopped_by"], "server_accepted": stats.get("accepted"),
                "time_wait_toward_server": states.get("TIME_WAIT", 0),
                "ports_held_toward_server": sum(states.values()), "workers": result["workers"],
                "per_worker": result.get("per_worker"),
                "rate_per_s": round(result["succeeded"] / max(result["elapsed_s"], 1e-6))}
    if result["elapsed_s"] > TIME_WAIT_S - 5:
        evidence["time_wait_race"] = (
            f"churn took {result['elapsed_s']:.0f} s, about as long as TIME_WAIT lasts ({TIME_WAIT_S} s): "
            "the first ports came back before the last were used. Past half the range each connect() "
            "walks the used even ports first (port parity), so a large range churns slowly.")
    if size % 2:
        evidence["parity_note"] = ("odd-sized range: the kernel prefers one port parity and may "
                                   "leave a port unused (commit 07f4c90062f8)")
    return observation(lab, LIMIT, exp, observed=int(result["succeeded"]),
                       ended_by=error["name"] if error else NO_ERROR, bound=bound,
                       duration_s=duration,
                       counters=counter_delta(before, seen["counters"], COUNTERS),
                       states={"client_toward_server": states}, evidence=evidence)
