"""The Provider protocol: how hosts are made, run commands, and go away."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from ... import agent as agent_package
from ...agent.workers import agent_command  # one command line for the controller and the agent's own workers
from ..names import LabName
from ..topology import HostSpec, Topology
from .agentproc import AgentProcess

AGENT_PARENT = str(Path(agent_package.__file__).resolve().parent.parent)  # the folder holding agent/
Spare = Callable[[LabName], bool]  # True for a lab the sweep must leave alone


class Host(Protocol):
    """A realised lab host."""

    spec: HostSpec
    label: str

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]: ...

    def agent_argv(self, args: Sequence[str]) -> list[str]: ...


class Provider(Protocol):
    """Makes hosts for a topology and removes them."""

    name: str
    disposable_hosts: bool  # True when hosts (and their settings) vanish at destroy()
    applies_birth: bool  # True when it can create a host's namespace with birth sysctls set

    def check(self) -> None:
        """Raise ProviderUnavailable with a one-line reason when this provider cannot run."""

    def realise(self, topology: Topology, prefix: str) -> list[Host]: ...

    def destroy(self, hosts: list[Host]) -> None: ...

    def describe_access(self, host: Host) -> str:
        """A shell command that enters ``host`` (for --lab-keep)."""

    def sweep(self, spare: Spare, dry_run: bool = False) -> dict[LabName, list[str]]:
        """Remove what this provider left of labs that ``spare`` does not keep (their run is dead and
        they were not kept); return the names removed (or, with ``dry_run``, that would be) by lab."""

    def remove(self, lab: LabName) -> list[str]:
        """Remove what this provider holds of ``lab`` (`connlab down`); return the names removed."""


def local_agent_argv(args: Sequence[str], python: str = sys.executable) -> list[str]:
    """Run the agent from this package with an isolated interpreter (-I: no user site, no env)."""
    return agent_command(python, AGENT_PARENT, list(args))


def run(host: Host, argv: Sequence[str], input: bytes | None = None,
        timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:
    """Run a command on ``host`` to completion."""
    proc = host.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def start_agent(host: Host, args: Sequence[str]) -> AgentProcess:
    """Start the agent with ``args`` on ``host``."""
    return AgentProcess(host.popen, host.agent_argv(args), f"{host.label} {args[0]}")
