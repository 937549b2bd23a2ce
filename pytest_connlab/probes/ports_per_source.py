"""ports_per_source: the "64K ports" myth, held rather than churned, from one source.

One client IP holds connections to one server ip:port until
its ephemeral range is used up (EADDRNOTAVAIL): a limit of the 4-tuple, per
destination.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..report.observation import Observation
from .common import expectation, observation
from .hold import client_ports, hold, hold_evidence, most_common_error

if TYPE_CHECKING:
    from ..lab.lab import Lab


def ports_per_source(lab: Lab, beyond: int = 100, for_s: float = 1.0) -> Observation:
    """Hold from the first client's primary IP until its ports toward one server port run out."""
    ports = client_ports(lab.clients[0])
    exp = expectation(lab, "ports_per_source",
                      (ports, "the client's ip_local_port_range, one connection per port"),
                      lab_endings=("EADDRNOTAVAIL",))
    bound = ports + beyond
    result = hold(lab, None, bound, for_s, sources=[lab.clients[0].address])
    return observation(lab, "ports_per_source", exp, observed=result.established,
                       ended_by=most_common_error(result), bound=bound, duration_s=result.ramp_s + result.held_for_s,
                       evidence=hold_evidence(result))
