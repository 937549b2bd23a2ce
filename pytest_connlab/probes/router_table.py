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


def kernel_table_size(lab: Lab) -> int | None:
    """The router's nf_conntrack_max when the profile sets it on a router whose kernel is its own."""
    if lab.router is None or not lab.router.own_kernel:
        return None
    for role in ("router", "all"):
        value = lab.knobs.sysctls.get(role, {}).get("net.netfilter.nf_conntrack_max")
        if value is not None:
            return int(value)
    return None


def router_table(lab: Lab, target: Target | None = None, connect_timeout: float = 1.5) -> Observation:
    """Hold connections through the router until its table is full; read the router's counters.
    ``target``: your own program on the server instead of the agent's hold server."""
    if lab.router is None:
        raise LabSetupError("router_table needs a router: @pytest.mark.topology(router=True)")
    kernel_max = kernel_table_size(lab)
    size = lab.emulated.get(ROUTER_TABLE) or kernel_max
    how = (f"the router kernel's own conntrack table of {size} (nf_conntrack_max)" if kernel_max and size == kernel_max
           else f"the router's nft connection table of {size} (ct count)" if size else
           "no router table cap in the settings")
    exp = expectation(lab, "router_table", (size, how), lab_endings=("ETIMEDOUT",) if size else ())
    stats_before = lab.router.observe()["conntrack_stats"] or {}
    bound = min(MAX_BOUND, size + 16 if size else NO_CAP_BOUND)
    pin_measuring_server(lab)
    server, serving = own_or_agent_server(lab, target, "hold")
    start = time.monotonic()
    holder, opened = hold_connections(lab.clients[0], server, bound, connect_timeout, extra=1)
    duration = time.monotonic() - start
    router = lab.router.observe()
    seen = lab.server.observe(server.port)["sockets"]["local_port"]
    holder.stop()
    stop_own(server, target)
    if kernel_max and size == kernel_max:  # the kernel's own table: its drop counter and its console say so
        stats = router["conntrack_stats"] or {}
        dropped = stats.get("drop", 0) - stats_before.get("drop", 0)
        log = lab.router.run(["dmesg"]).stdout.decode(errors="replace")  # the router's own kernel log
        table_full = [line.strip() for line in log.splitlines() if "table full, dropping packet" in line][-2:]
        kernel = {"nf_conntrack_max": kernel_max, "conntrack_stats_drop": dropped,
                  "early_drop": stats.get("early_drop", 0) - stats_before.get("early_drop", 0),
                  "kernel_log": table_full, "counted_by": "/proc/net/stat/nf_conntrack (the kernel's table)"}
    else:
        dropped = nft_counter(lab, lab.router, "table_full")
        kernel = {}
    evidence = {"server": serving, "router_conntrack_entries": router["conntrack_count"],
                "router_table_full_drops": dropped, **({"kernel_table": kernel} if kernel else {}),
                "server_established": seen.get("ESTABLISHED", 0), "server_sees": "the router's address (masquerade)",
                "how": (f"the router dropped {dropped} SYNs of new connections "
                        f"({'the kernel: table full' if kernel else 'nft counter table_full'}) "
                        f"with {router['conntrack_count']} connections tracked" if size else
                        "the router forwarded every connection")}
    return observation(lab, "router_table", exp, observed=int(opened["established"]),
                       ended_by=first_error(opened), bound=bound, duration_s=duration,
                       states={"server": seen}, evidence=evidence)
