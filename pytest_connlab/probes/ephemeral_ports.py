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
from typing import TYPE_CHECKING, Any

from ..report.observation import NO_ERROR, Observation, counter_delta
from .common import (
    MAX_QUEUE,
    MEASURING_QUEUE,
    expectation,
    observation,
    pin_measuring_server,
    start_agent_server,
)
from .sampling import Sampler

if TYPE_CHECKING:
    from ..lab.lab import Lab
    from ..lab.labhost import LabHost
    from ..lab.target import Target

LIMIT = "ephemeral_ports"
PORT_RANGE = "net.ipv4.ip_local_port_range"
COUNTERS = ("TcpActiveOpens", "TcpExtTWRecycled", "TcpExtTCPTimeWaitOverflow")
MAX_BOUND = 70_000
TIME_WAIT_S = 60  # TCP_TIMEWAIT_LEN


CLOSING_STATES = ("FIN_WAIT1", "FIN_WAIT2", "CLOSING")
NO_LIMIT_BOUND = 10_000  # connects tried when the lab's settings imply no exhaustion


def client_port_range(lab: Lab) -> tuple[int, int]:
    """The first client's ephemeral port range."""
    value = lab.clients[0].sysctls([PORT_RANGE])[PORT_RANGE] or "32768 60999"
    low, high = (int(x) for x in value.split())
    return low, high


def churn_queue(connects: int) -> int:
    """An accept queue that holds every connection a churn of ``connects`` can make: a server that
    falls behind (a busy host) then never finds its queue full, so it never drops, and on a
    profile that refuses at a full backlog never refuses, a SYN of the churn."""
    return max(MEASURING_QUEUE, min(MAX_QUEUE, connects))


def pin_churn_conditions(lab: Lab, own_server: bool = True, queue: int = MEASURING_QUEUE) -> None:
    """What a churn measurement needs: no TIME_WAIT assassination on the client, and a
    measuring server that never drops a SYN (LIMITS.md pitfalls 3 and 4)."""
    lab.pin("client", {"net.ipv4.tcp_rfc1337": "1"}, "no TIME_WAIT assassination")
    if own_server:
        pin_measuring_server(lab, "the measuring server must not drop SYNs: the limit measured is the client's",
                             queue=queue)


def settled_view(client: LabHost, port: int, bound_s: float = 15.0) -> dict[str, Any]:
    """The client's sockets toward the server once its closes have finished: a server that fell
    behind (its queue is deep) still has to accept and close the last connections, which wait in
    FIN_WAIT2 until it does. Read again every 0.2 s, at most ``bound_s``."""
    deadline = time.monotonic() + bound_s
    while True:
        seen = client.observe(port)
        closing = sum(int(seen["sockets"]["remote_port"].get(state, 0)) for state in CLOSING_STATES)
        if not closing or time.monotonic() >= deadline:
            return seen
        time.sleep(0.2)


def _derived(lab: Lab, size: int, low: int, high: int) -> tuple[int | None, str]:
    """Exhaustion at the pool size, unless TIME_WAIT ports are reused or not kept."""
    keys = ["net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_max_tw_buckets"]
    values = lab.clients[0].sysctls(keys)
    reuse, buckets = int(values[keys[0]] or 0), int(values[keys[1]] or size)
    if reuse == 1:
        return None, "tcp_tw_reuse=1 hands TIME_WAIT ports to new connections"
    if buckets < size:
        return None, f"tcp_max_tw_buckets {buckets} < {size} ports: the rest close without TIME_WAIT"
    return size, f"{PORT_RANGE} = {low} {high}"


def ephemeral_ports(lab: Lab, target: Target | None = None, port_pool: str = "per-destination",
        deadline_s: float = 120.0, workers: int | None = None) -> Observation:
    """Measure the ephemeral port pool of the first client toward one server ip:port."""
    client = lab.clients[0]
    low, high = client_port_range(lab)
    size = high - low + 1
    derived = _derived(lab, size, low, high)
    exp = expectation(lab, LIMIT, derived, default_endings=("EADDRNOTAVAIL",) if derived[0] else ())
    bound = min(MAX_BOUND, max(size, exp.value or 0) + 64) if exp.value is not None else NO_LIMIT_BOUND
    queue = churn_queue(bound)
    pin_churn_conditions(lab, own_server=target is None, queue=queue)
    server = target or start_agent_server(lab, "close", backlog=queue)
    before = client.observe(server.port)["counters"]
    start = time.monotonic()
    with Sampler(lab, LIMIT + ": {:,} ports of the client in TIME_WAIT",
                 lambda: client.pressure()["pressure"].get("time_wait"), bound_s=deadline_s) as sampler:
        result = client.agent_once("churn", "--target", server.endpoint, "--source", client.address,
                                   "--count", str(bound), "--deadline", str(deadline_s),
                                   "--port-pool", port_pool, "--workers", str(workers or os.cpu_count() or 1),
                                   timeout=deadline_s + 30)
    duration = time.monotonic() - start
    seen = settled_view(client, server.port)
    states = seen["sockets"]["remote_port"]
    stats = server.stop() if target is None else {}
    error = result["error"]
    if error and target is None:  # the pool is per destination: another server port still works
        other = start_agent_server(lab, "close")
        again = client.agent_once("churn", "--target", other.endpoint, "--source", client.address,
                                  "--count", "1", "--deadline", "10", timeout=30)
        other.stop()
        another_destination = "connected" if again["succeeded"] == 1 else again["error"]["name"]
    else:
        another_destination = None
    evidence = {"server": f"your program on {server.endpoint}" if target is not None else "the agent's close server",
                "another_destination_meanwhile": another_destination,
                "port_range": f"{low} {high}", "pool_size": size, "port_pool": port_pool,
                "error_confirmed_by_retry": result["error_confirmed"],
                "error_message": error["message"] if error else None,
                "stopped_by": result["stopped_by"], "server_accepted": stats.get("accepted"),
                "time_wait_toward_server": states.get("TIME_WAIT", 0),
                "ports_held_toward_server": sum(states.values()), "workers": result["workers"],
                "per_worker": result.get("per_worker"), "peer_resets": result.get("peer_resets", 0),
                "rate_per_s": round(result["succeeded"] / max(result["elapsed_s"], 1e-6)),
                "samples": {"what": "the client's TIME_WAIT sockets (one per churned connect)",
                            "points": sampler.samples}}
    if result["elapsed_s"] > TIME_WAIT_S - 5:
        evidence["time_wait_race"] = (
            f"churn took {result['elapsed_s']:.0f} s, about as long as TIME_WAIT lasts ({TIME_WAIT_S} s): "
            "the first ports came back before the last were used. Past half the range each connect() "
            "walks the used even ports first (port parity), so a large range churns slowly.")
    if size % 2:
        evidence["parity_note"] = ("odd-sized range: the kernel prefers one port parity and may "
                                   "leave a port unused (commit 07f4c90062f8)")
    obs = observation(lab, LIMIT, exp, observed=int(result["succeeded"]),
                      ended_by=error["name"] if error else NO_ERROR, bound=bound,
                      duration_s=duration,
                      counters=counter_delta(before, seen["counters"], COUNTERS),
                      states={"client_toward_server": states}, evidence=evidence)
    if result["elapsed_s"] >= TIME_WAIT_S and (derived[0] is not None or obs.expected is not None):
        # a pool that should run out was churned for longer than a port stays in TIME_WAIT: the count
        # includes ports that came back, so it is not the pool's size
        obs.disturbed = (f"the churn took {result['elapsed_s']:.0f} s, longer than TIME_WAIT lasts "
                         f"({TIME_WAIT_S} s): ports came back before the pool ran out (the cores were busy "
                         "with other work; past half the range every connect() walks the used ports)")
    return obs
