"""router_table: clients reach the server through a router whose connection table
holds a fixed number of connections; the next SYN is dropped there, and the
router's own counters say so.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..errors import LabSetupError
from ..profiles.emulation import ROUTER_TABLE
from ..report.observation import Observation
from .common import (
    MAX_BOUND,
    NO_CAP_BOUND,
    expectation,
    first_error,
    hold_connections,
    nft_counter,
    observation,
    own_or_agent_server,
    pin_measuring_server,
    stop_own,
)

if TYPE_CHECKING:
    from ..lab.lab import Lab
    from ..lab.target import Target


def router_table(lab: Lab, target: Target | None = None, connect_timeout: float = 1.5) -> Observation:
    """Hold connections through the router until its table is full; read the router's counters.
    ``target``: your own program on the server instead of the agent's hold server."""
    if lab.router is None:
        raise LabSetupError("router_table needs a router: @pytest.mark.topology(router=True)")
    size = lab.emulated.get(ROUTER_TABLE)
    exp = expectation(lab, "router_table",
                      (size, f"the router's nft connection table of {size} (ct count)" if size else
                       "no router table cap in the settings"),
                      lab_endings=("ETIMEDOUT",) if size else ())
    bound = min(MAX_BOUND, size + 16 if size else NO_CAP_BOUND)
    pin_measuring_server(lab)
    server, serving = own_or_agent_server(lab, target, "hold")
    start = time.monotonic()
    holder, opened = hold_connections(lab.clients[0], server, bound, connect_timeout, extra=1)
    duration = time.monotonic() - start
    router = lab.router.observe()
    seen = lab.server.observe(server.port)["sockets"]["local_port"]
    dropped = nft_counter(lab, lab.router, "table_full")
    holder.stop()
    stop_own(server, target)
    evidence = {"server": serving, "router_conntrack_entries": router["conntrack_count"],
                "router_table_full_drops": dropped,
                "server_established": seen.get("ESTABLISHED", 0), "server_sees": "the router's address (masquerade)",
                "how": (f"the router dropped {dropped} SYNs of new connections (nft counter table_full) "
                        f"with {router['conntrack_count']} connections tracked" if size else
                        "the router forwarded every connection")}
    return observation(lab, "router_table", exp, observed=int(opened["established"]),
                       ended_by=first_error(opened), bound=bound, duration_s=duration,
                       states={"server": seen}, evidence=evidence)
