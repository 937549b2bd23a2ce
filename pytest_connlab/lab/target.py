"""A listening server in a lab: where clients connect, and the process behind it."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .providers.agentproc import AgentProcess
from .providers.program import Program

if TYPE_CHECKING:
    from .labhost import LabHost


@dataclass
class Target:
    """A listening server in the lab: where clients connect, and the process behind it."""

    host: LabHost
    address: str
    port: int
    process: AgentProcess | Program | None = None
    info: Mapping[str, Any] = field(default_factory=dict)  # the agent's 'ready' event

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    def stop(self) -> Mapping[str, Any]:
        """Stop the server; return its final stats (the agent's) or exit status (a program's)."""
        if self.process is None:
            return {}
        if isinstance(self.process, Program):
            self.process.stop()
            return self.process.result()
        self.process.release()
        try:
            stats = self.process.expect("stats", timeout=15)
        finally:
            self.process.stop()
        return stats


__all__ = ["Target"]
