"""The "64K ports" myth, held rather than churned.

``ports_per_source``: one client IP holds connections to one server ip:port until
its ephemeral range is used up (EADDRNOTAVAIL): a limit of the 4-tuple, per
destination. ``one_port_connections``: K client IPs hold K times that to the same
listening port; the server side needs no port per connection. A profile that caps
inbound computers (XP) admits only that many source IPs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..report.observation import NO_ERROR, Observation
from .common import expectation, observation
from .hold import HoldResult, client_ports
from .hold import run as hold
from .holdplan import split_evenly

if TYPE_CHECKING:
    from ..lab.lab import Lab

ONE_PORT_DEFAULT = 70_000  # more than 65,536, the folklore's ceiling


def _ended_by(result: HoldResult) -> str:
    if not result.errors:
        return NO_ERROR
    return max(result.errors.items(), key=lambda kv: kv[1])[0]


def _evidence(result: HoldResult) -> dict[str, object]:
    return {"hold": result.to_json(), "how": result.explain().splitlines()[0]}


def per_source(lab: Lab, beyond: int = 100, for_s: float = 1.0) -> Observation:
    """Hold from the first client's primary IP until its ports toward one server port run out."""
    ports = client_ports(lab.clients[0])
    exp = expectation(lab, "ports_per_source",
                      (ports, "the client's ip_local_port_range, one connection per port"),
                      lab_endings=("EADDRNOTAVAIL",))
    bound = ports + beyond
    result = hold(lab, None, bound, for_s, sources=[lab.clients[0].address])
    return observation(lab, "ports_per_source", exp, observed=result.established,
                       ended_by=_ended_by(result), bound=bound, duration_s=result.ramp_s + result.held_for_s,
                       evidence=_evidence(result))


def one_port(lab: Lab, connections: int = ONE_PORT_DEFAULT, for_s: float = 2.0) -> Observation:
    """Hold ``connections`` from every client IP to one listening port."""
    sources = [ip for c in lab.clients for ip in c.addresses]
    ports = client_ports(lab.clients[0])
    shares = split_evenly(connections, len(sources))
    cap = lab.profile.value_of("Product.InboundComputerCap")
    admitted = shares[: int(cap)] if cap is not None else shares
    value = sum(min(share, ports) for share in admitted)
    how = (f"{len(sources)} source IPs x min(their share, {ports} ports)"
           + (f", of which the profile's inbound cap admits {cap}" if cap is not None else ""))
    exp = expectation(lab, "one_port_connections", (None if value >= connections else value, how),
                      lab_endings=() if value >= connections else ("ECONNREFUSED",))
    result = hold(lab, None, connections, for_s)
    evidence = _evidence(result)
    evidence["server_port"] = int(result.target.rsplit(":", 1)[1])
    evidence["sources"] = len(sources)
    return observation(lab, "one_port_connections", exp, observed=result.established,
                       ended_by=_ended_by(result), bound=connections,
                       duration_s=result.ramp_s + result.held_for_s, evidence=evidence)
