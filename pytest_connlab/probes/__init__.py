"""Probes: each drives load on a lab through the agent and returns an Observation."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..observation import Observation
from . import ephemeral_ports, inbound_cap, listen_backlog

if TYPE_CHECKING:
    from ..lab import Lab


class Probes:
    """``lab.probe.<limit>(...)``: run one probe on this lab."""

    def __init__(self, lab: Lab) -> None:
        self._lab = lab

    def ephemeral_ports(self, **kwargs: Any) -> Observation:
        """Connect+close from one client IP to one server port until connect fails."""
        return ephemeral_ports.run(self._lab, **kwargs)

    def listen_backlog(self, **kwargs: Any) -> Observation:
        """Count handshakes a never-accepting listener completes, and how the next ends."""
        return listen_backlog.run(self._lab, **kwargs)

    def inbound_cap(self, **kwargs: Any) -> Observation:
        """Count the client computers served at once."""
        return inbound_cap.run(self._lab, **kwargs)

