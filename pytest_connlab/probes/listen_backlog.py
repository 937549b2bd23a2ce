"""listen_backlog: a listener that never accepts; count the handshakes that complete.

Linux admits backlog+1 connections to the accept queue (sk_acceptq_is_full uses
>), with backlog = min(listen() argument, net.core.somaxconn), then drops every
further SYN without a word: the client retransmits and times out. Windows
refuses (WSAECONNREFUSED). The count is read on the server (the listener's
accept-queue depth), where a client-side count could lie.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..profiles.emulation import REFUSE_ON_FULL_BACKLOG
from ..report.observation import NO_ERROR, Observation, counter_delta
from .common import expectation, observation, own_or_agent_server, stop_own

if TYPE_CHECKING:
    from ..lab.lab import Lab
    from ..lab.target import Target

LIMIT = "listen_backlog"
APP_BACKLOG = 65535  # what a server asking for "as many as allowed" (SOMAXCONN) passes
COUNTERS = ("TcpExtListenOverflows", "TcpExtListenDrops")


def listen_backlog(lab: Lab, target: Target | None = None, backlog: int = APP_BACKLOG,
                   connect_timeout: float = 1.5, extra_attempts: int = 3) -> Observation:
    """Fill the accept queue of a never-accepting listener and see how the next connects end.
    ``target``: your own server; its listener's backlog (as the kernel holds it) is read, and a
    program that accepts shows how many connects it took before one failed."""
    somaxconn = lab.server.int_sysctls(["net.core.somaxconn"], default=4096)["net.core.somaxconn"]
    server, which = own_or_agent_server(lab, target, "never", backlog=backlog)
    before_seen = lab.server.observe(server.port)
    if target is not None:  # min(its listen() argument, somaxconn at listen time), from sock_diag
        backlog = int(before_seen["sockets"].get("listen_backlog") or 0)
    effective = min(backlog, somaxconn)
    refuse = bool(lab.emulated.get(REFUSE_ON_FULL_BACKLOG))
    if refuse:  # the lab-wide watcher refuses once Linux counts the listener full: backlog + 1
        exp = expectation(lab, LIMIT, (effective + 1, f"min({backlog}, somaxconn {somaxconn}) + 1, refused past it"),
                          to_lab=lambda v: min(v, effective) + 1, lab_endings=("ECONNREFUSED",))
    else:
        exp = expectation(lab, LIMIT, (effective + 1, f"min({backlog}, somaxconn {somaxconn}) + 1"),
                          to_lab=lambda v: min(v, effective) + 1, lab_endings=("ETIMEDOUT",))
    bound = max(effective + 1, exp.value or 0) + 16
    before = before_seen["counters"]
    client = lab.clients[0]
    start = time.monotonic()
    opener = client.agent("open", "--target", server.endpoint, "--sources", ",".join(client.addresses),
                          "--count", str(bound),
                          "--timeout", str(connect_timeout), "--deadline", "120",
                          "--extra", str(extra_attempts), "--hold", "300")
    opened = opener.expect("opened", timeout=180)
    duration = time.monotonic() - start
    seen = lab.server.observe(server.port)
    opener.stop()
    stop_own(server, target)
    first = opened["errors"][0] if opened["errors"] else None
    queue = seen["sockets"]["accept_queue"]
    counters = counter_delta(before, seen["counters"], COUNTERS)
    evidence = {"server": which, "app_backlog": backlog, "somaxconn": somaxconn,
                "client_completed": opened["established"], "server_accept_queue": queue,
                "connect_timeout_s": connect_timeout,
                "next_attempts": [e["name"] for e in ([first] if first else []) + opened["extra_errors"]],
                "next_attempts_completed": opened["extra_established"]}
    if refuse:
        evidence["how"] = (f"the lab's watcher of full listeners refused the connect past {effective + 1} "
                           "queued (Linux's full: backlog + 1) with a reset")
    elif first and first["name"] == "ETIMEDOUT":
        evidence["how"] = (f"no SYN-ACK and no RST within {connect_timeout} s: the SYN was dropped "
                           f"(TcpExtListenOverflows +{counters.get('TcpExtListenOverflows', 0)})")
    # the server's count: the accept queue of a listener that never accepts; for your program, every
    # connection it holds (queued or accepted), from the server's sockets
    held = seen["sockets"]["local_port"].get("ESTABLISHED", 0) if target is not None else queue
    return observation(lab, LIMIT, exp, observed=int(held if held is not None else opened["established"]),
                       ended_by=first["name"] if first else NO_ERROR, bound=bound,
                       duration_s=duration, counters=counters,
                       states={"server": seen["sockets"]["local_port"]}, evidence=evidence)
