"""fd_limit, thread_pool and per_server_cap: limits that live in processes, not in the kernel.

fd_limit: a server whose RLIMIT_NOFILE is the profile's accepts until accept()
fails with EMFILE, while every client still believes it is connected: the
kernel completes handshakes into the accept queue regardless [LIMITS pitfall 13].
thread_pool: a thread-per-connection server with a fixed pool answers as many
connections as it has threads; the others are accepted and never answered. The
agent's event-loop server answers all of them, on the same lab, as a control.
per_server_cap: an HTTP client that pools connections per server (WinInet: 2)
sends many requests to a slow server; the server counts the connections it sees
at once, and every request is still answered, later.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..report.observation import NO_ERROR, Observation
from .common import expectation, http_clients, observation, pin_measuring_server, start_agent_server

if TYPE_CHECKING:
    from ..lab.lab import Lab

NO_LIMIT_CONNECTIONS = 1100
MAX_CONNECTIONS = 30_000  # clients the fd_limit probe connects at most
UNLIMITED_NOFILE = 1 << 20  # asked for when the profile sets no limit; the hard limit caps it


def fd_limit(lab: Lab, connect_timeout: float = 2.0) -> Observation:
    """Connect more clients than the server has descriptors; count what it accepted."""
    nofile = lab.server.rlimits.get("nofile")
    pin_measuring_server(lab, "connections past EMFILE must wait in the accept queue, not be dropped")
    server = start_agent_server(lab, "hold", extra=("--nofile", str(nofile or UNLIMITED_NOFILE)))
    effective, already = int(server.info["nofile"]), int(server.info["fds_open"])
    capped = nofile is not None
    exp = expectation(lab, "fd_limit", (effective - already if capped else None,
                                        f"RLIMIT_NOFILE {effective} - {already} descriptors already open"),
                      to_lab=lambda v: v - already, lab_endings=("EMFILE",) if capped else ())
    bound = min(effective - already + 100, MAX_CONNECTIONS) if capped else NO_LIMIT_CONNECTIONS
    client = lab.clients[0]
    start = time.monotonic()
    proc = client.agent("open", "--target", server.endpoint, "--sources", client.address,
                        "--count", str(bound), "--timeout", str(connect_timeout), "--deadline", "120",
                        "--keep-going", "--hold", "300")
    opened = proc.expect("opened", timeout=180)
    time.sleep(0.5)  # let the server drain what it can
    seen = lab.server.observe(server.port)["sockets"]
    duration = time.monotonic() - start
    stats = server.stop()
    proc.stop()
    emfile = stats["accept_errors"].get("EMFILE", 0)
    evidence = {"rlimit_nofile": effective, "asked_for": nofile, "fds_open_before": already,
                "clients_connected": opened["established"], "accept_queue_left": seen["accept_queue"],
                "accept_errors": stats["accept_errors"],
                "how": (f"accept() failed with EMFILE {emfile} times; {seen['accept_queue']} clients "
                        "sit in the accept queue believing they are connected" if emfile else
                        "the server accepted every client")}
    return observation(lab, "fd_limit", exp, observed=int(stats["accepted"]),
                       ended_by="EMFILE" if emfile else NO_ERROR, bound=bound, duration_s=duration,
                       evidence=evidence)


def thread_pool(lab: Lab, threads: int = 200, clients: int | None = None, timeout: float = 2.0) -> Observation:
    """Hold ``clients`` HTTP connections on a pool of ``threads``; count those answered."""
    clients = clients or threads + 40
    exp = expectation(lab, "thread_pool", (min(threads, clients), f"a pool of {threads} threads"),
                      lab_endings=("ETIMEDOUT",) if clients > threads else ())
    start = time.monotonic()
    pin_measuring_server(lab)
    threaded = start_agent_server(lab, "threaded", extra=("--threads", str(threads)))
    answers = http_clients(lab, threaded.endpoint, clients, timeout)
    pool_stats = threaded.stop()
    loop = start_agent_server(lab, "http")
    control = http_clients(lab, loop.endpoint, clients, timeout)
    loop.stop()
    statuses = answers["statuses"]
    served = int(statuses.get("200", 0))  # type: ignore[attr-defined]
    evidence = {"threads": threads, "clients": clients, "statuses": statuses,
                "server_peak_busy_threads": pool_stats["peak_busy"],
                "event_loop_server_statuses": control["statuses"],
                "how": f"{served} answered; the other {clients - served} were accepted and never answered "
                       f"within {timeout} s (no error, no reset)"}
    return observation(lab, "thread_pool", exp, observed=served,
                       ended_by="ETIMEDOUT" if served < clients else NO_ERROR, bound=clients,
                       duration_s=time.monotonic() - start, evidence=evidence)


def per_server_cap(lab: Lab, requests: int = 8, delay_s: float = 0.3) -> Observation:
    """Send ``requests`` at once through the client's per-server pool; count the server's peak."""
    pool = lab.scoped.get("WinInet.MaxConnectionsPerServer")
    exp = expectation(lab, "per_server_cap",
                      (pool, f"WinInet.MaxConnectionsPerServer {pool}" if pool else
                       "no per-server cap in this profile's settings: one connection per request"),
                      lab_endings=())
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
