"""inbound_cap: how many client computers (hosts) a server serves at once.

Each client host connects in turn and holds its connection; a host that got in
then opens more, to show the cap counts computers, not sockets (KB314882).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..agent.proto import Opened
from ..lab.providers.agentproc import AgentProcess
from ..report.observation import NO_ERROR, Observation
from .common import expectation, nft_set_size, observation, own_or_agent_server, stop_own

if TYPE_CHECKING:
    from ..lab.lab import Lab
    from ..lab.labhost import LabHost
    from ..lab.target import Target

LIMIT = "inbound_cap"


def _connect(host: LabHost, target: Target, count: int, timeout: float
             ) -> tuple[AgentProcess, Opened]:
    proc = host.agent("open", "--target", target.endpoint, "--sources", host.address,
                      "--count", str(count), "--timeout", str(timeout), "--deadline", "60",
                      "--hold", "300", "--keep-going")
    return proc, proc.expect("opened", timeout=timeout * count + 30)


def inbound_cap(lab: Lab, target: Target | None = None, more_per_admitted: int = 2,
                connect_timeout: float = 2.0) -> Observation:
    """Connect from every client host; count the hosts served. ``target``: your own program on the
    server (it must keep the connections open) instead of the agent's hold server."""
    computers = len(lab.clients)
    exp = expectation(lab, LIMIT, (None, "no inbound cap in this profile's settings"),
                      lab_endings=None, default_endings=("ECONNREFUSED",))
    if exp.value is None:
        exp = type(exp)(None, (), exp.documented, exp.documented_ended_by, exp.source)
    server, serving = own_or_agent_server(lab, target, "hold")
    start = time.monotonic()
    outcomes, holders, first_error = [], [], None
    for host in lab.clients:
        proc, opened = _connect(host, server, 1, connect_timeout)
        holders.append(proc)
        error = opened["errors"][0]["name"] if opened["errors"] else None
        first_error = first_error or error
        outcomes.append({"computer": host.address, "served": opened["established"] == 1, "error": error})
    for host, outcome in zip(lab.clients, outcomes):
        if outcome["served"] and more_per_admitted:
            proc, opened = _connect(host, server, more_per_admitted, connect_timeout)
            holders.append(proc)
            outcome["more_opened"] = opened["established"]
    duration = time.monotonic() - start
    for proc in holders:
        proc.stop()
    stats = stop_own(server, target)
    served = sum(1 for o in outcomes if o["served"])
    evidence = {"server": serving, "computers_tried": computers, "outcomes": outcomes,
                "server_accepted": stats.get("accepted"),
                "admitted_in_nft_set": nft_set_size(lab, lab.server, "inbound_computers")}
    return observation(lab, LIMIT, exp, observed=served, ended_by=first_error or NO_ERROR,
                       bound=computers, duration_s=duration, evidence=evidence)
