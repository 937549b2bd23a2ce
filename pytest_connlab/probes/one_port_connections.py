"""one_port_connections: the "64K ports" myth, held rather than churned, to one port.

K client IPs hold K times one IP's port range to the same
listening port; the server side needs no port per connection. A profile that caps
inbound computers (XP) admits only that many source IPs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..profiles.emulation import INBOUND_COMPUTERS
from ..report.observation import NO_ERROR, Observation
from .common import expectation, observation
from .hold import client_ports, hold, hold_evidence, most_common_error
from .holdplan import split_evenly

if TYPE_CHECKING:
    from ..lab.lab import Lab

ONE_PORT_DEFAULT = 70_000  # more than 65,536, the folklore's ceiling


def one_port_connections(lab: Lab, connections: int = ONE_PORT_DEFAULT, for_s: float = 2.0) -> Observation:
    """Hold ``connections`` from every client IP to one listening port."""
    sources = [ip for c in lab.clients for ip in c.addresses]
    ports = client_ports(lab.clients[0])
    shares = split_evenly(connections, len(sources))
    cap = lab.emulated.get(INBOUND_COMPUTERS)
    admitted = shares[:cap] if cap is not None else shares
    value = sum(min(share, ports) for share in admitted)
    how = (f"{len(sources)} source IPs x min(their share, {ports} ports)"
           + (f", of which the profile's inbound cap admits {cap}" if cap is not None else ""))
    exp = expectation(lab, "one_port_connections", (None if value >= connections else value, how),
                      lab_endings=(NO_ERROR,) if value >= connections else ("ECONNREFUSED",))
    result = hold(lab, None, connections, for_s)
    evidence = hold_evidence(result)
    evidence["server_port"] = int(result.target.rsplit(":", 1)[1])
    evidence["sources"] = len(sources)
    return observation(lab, "one_port_connections", exp, observed=result.established,
                       ended_by=most_common_error(result), bound=connections,
                       duration_s=result.ramp_s + result.held_for_s, evidence=evidence)
