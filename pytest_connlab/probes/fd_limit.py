"""fd_limit: a server whose RLIMIT_NOFILE is the profile's accepts until accept()
fails with EMFILE, while every client still believes it is connected: the
kernel completes handshakes into the accept queue regardless [LIMITS pitfall 13].
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..report.observation import NO_ERROR, Observation
from .common import expectation, observation, pin_measuring_server, start_agent_server

if TYPE_CHECKING:
    from ..lab.lab import Lab

UNLIMITED_NOFILE = 1 << 20  # asked for when the profile sets no limit; the hard limit caps it
MAX_CONNECTIONS = 30_000  # clients the fd_limit probe connects at most
NO_LIMIT_CONNECTIONS = 1100


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
