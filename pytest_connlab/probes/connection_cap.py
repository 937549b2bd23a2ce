"""connection_cap: one client opens and holds connections until the server side
refuses one (Windows TcpNumConnections, emulated by nft 'ct count').
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..profiles.emulation import CONNECTION_CAP
from ..report.observation import Observation
from .common import (
    MAX_BOUND,
    NO_CAP_BOUND,
    expectation,
    first_error,
    hold_connections,
    observation,
    own_or_agent_server,
    pin_measuring_server,
    stop_own,
)

if TYPE_CHECKING:
    from ..lab.lab import Lab
    from ..lab.target import Target


def connection_cap(lab: Lab, target: Target | None = None, connect_timeout: float = 2.0) -> Observation:
    """Open and hold connections from one client until one is refused: to the agent's hold server,
    or to ``target``, your own program (``lab.server.start(...)``), which must keep them open."""
    cap = lab.emulated.get(CONNECTION_CAP)
    exp = expectation(lab, "connection_cap",
                      (cap, f"the server's nft connection cap {cap} (ct count)" if cap else
                       "no connection cap in this profile's settings"),
                      lab_endings=("ECONNREFUSED",) if cap else ())
    bound = min(MAX_BOUND, cap + 16 if cap else NO_CAP_BOUND)
    pin_measuring_server(lab)
    server, serving = own_or_agent_server(lab, target, "hold")
    start = time.monotonic()
    holder, opened = hold_connections(lab.clients[0], server, bound, connect_timeout)
    duration = time.monotonic() - start
    seen = lab.server.observe(server.port)["sockets"]["local_port"]
    holder.stop()
    stop_own(server, target)
    evidence = {"server": serving, "server_established": seen.get("ESTABLISHED", 0),
                "next_attempts": [e["name"] for e in opened["extra_errors"]],
                "next_attempts_completed": opened["extra_established"]}
    return observation(lab, "connection_cap", exp, observed=int(opened["established"]),
                       ended_by=first_error(opened), bound=bound, duration_s=duration,
                       states={"server": seen}, evidence=evidence)
