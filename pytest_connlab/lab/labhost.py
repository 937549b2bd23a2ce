"""A lab host as probes see it: run a command, start the agent, read and set sysctls."""
from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..agent import observe, sysctl
from ..errors import AgentError, LabSetupError, SysctlKeyError
from ..profiles.sysctlkeys import check_lab_key
from .providers.agentproc import AgentProcess
from .providers.base import Host, run, start_agent
from .providers.program import Program, Stoppable
from .target import Target


class LabHost:
    """One realised host of a lab."""

    def __init__(self, host: Host, tracker: list[Stoppable]) -> None:
        self.host = host
        self._tracker = tracker
        self.rlimits: dict[str, int] = {}  # the profile's process limits for programs started here

    @property
    def birth_report(self) -> dict[str, str | None]:
        """What this host's namespace was born with, when it was made with birth sysctls."""
        return dict(getattr(self.host, "birth_report", {}) or {})

    @property
    def own_kernel(self) -> bool:
        """True when this host's kernel is the lab's alone (a VM): kernel-wide sysctls are its settings."""
        return bool(getattr(self.host, "own_kernel", False))

    @property
    def local_pids(self) -> bool:
        """True when the pids of what runs here are this machine's (netns); False for remote hosts."""
        return bool(getattr(self.host, "local_pids", True))

    @property
    def name(self) -> str:
        return self.host.spec.name

    @property
    def role(self) -> str:
        return self.host.spec.role

    @property
    def address(self) -> str:
        """The primary IPv4 address."""
        return self.host.spec.address

    @property
    def addresses(self) -> tuple[str, ...]:
        return self.host.spec.addresses

    def run(self, argv: Sequence[str], input: bytes | None = None,
            timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:
        """Run a command inside the host and wait for it."""
        return run(self.host, argv, input=input, timeout=timeout)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return self.host.popen(argv, **kwargs)

    def agent(self, *args: str) -> AgentProcess:
        """Start an agent role; the lab stops it at teardown if the probe did not."""
        proc = start_agent(self.host, list(args))
        self._tracker.append(proc)
        return proc

    def start(self, argv: Sequence[str], port: int, ready_timeout: float = 15.0) -> Target:
        """Start your own server program in this host; wait until it listens on TCP ``port``.
        Probes take the Target it returns; the lab stops the program at teardown.

        LabSetupError, with the program's output, when it exits or does not listen in time.
        """
        nofile = self.rlimits.get("nofile")
        argv = list(argv)
        if nofile and not self.local_pids:  # the process is not this machine's: util-linux prlimit sets it there
            argv = ["prlimit", f"--nofile={nofile}:", "--", *argv]
        program = Program(self.host.popen, argv)
        self._tracker.append(program)
        if nofile and self.local_pids and program.proc.pid:
            import resource
            _, hard = resource.prlimit(program.proc.pid, resource.RLIMIT_NOFILE)
            resource.prlimit(program.proc.pid, resource.RLIMIT_NOFILE, (min(self.rlimits["nofile"], hard), hard))
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if not program.running:
                raise LabSetupError(f"{self.name}: {argv[0]} exited with {program.proc.returncode} "
                                    f"before listening on port {port}:\n{program.output()}")
            if self.observe(port)["sockets"]["local_port"].get("LISTEN"):
                return Target(self, self.address, port, program)
            time.sleep(0.1)
        program.stop()
        raise LabSetupError(f"{self.name}: {argv[0]} did not listen on port {port} within "
                            f"{ready_timeout:.0f} s:\n{program.output()}")

    def agent_once(self, *args: str, timeout: float = 30.0) -> dict[str, Any]:
        """Run a one-shot agent role and return its single event."""
        proc = self.agent(*args)
        try:
            return proc.next_event(timeout)
        finally:
            proc.stop()

    def one_shot(self, local: Callable[[], dict[str, Any]], *role: str) -> dict[str, Any]:
        """The single event of a one-shot agent role. A host whose namespace this process can enter
        (netns) has a thread of this process compute it there with the agent's own function
        ``local``, no process started; elsewhere the agent runs ``role`` on the host."""
        call = getattr(self.host, "call", None)
        if call is None:
            return self.agent_once(*role)
        try:
            return dict(call(local))
        except OSError as exc:
            raise AgentError(f"{self.name}: {role[0]}: {exc}") from None

    def sysctls(self, keys: Sequence[str]) -> dict[str, str | None]:
        """Current values of ``keys`` in this host (None where the key does not exist)."""
        event = self.one_shot(lambda: sysctl.exchange({}, list(keys)), "sysctl", "--get", *keys)
        return dict(event["values"])

    def int_sysctls(self, keys: Sequence[str], default: int = 0) -> dict[str, int]:
        """Current values of numeric ``keys``, in order (``default`` where a key is missing or empty)."""
        return {k: int(v or default) for k, v in self.sysctls(keys).items()}

    def set_sysctls(self, values: dict[str, str]) -> dict[str, str]:
        """Set sysctls; return the previous values. LabSetupError names a key that failed."""
        return self.finish_sysctls(self.start_sysctls(values))

    def start_sysctls(self, values: dict[str, str]) -> AgentProcess | dict[str, Any]:
        """Begin setting sysctls (so many hosts can be set at once); see finish_sysctls. Every key
        is checked against the one grammar first (the agent checks again before it opens a file).
        A host whose namespace this process enters is set at once (its event is returned)."""
        for key in values:
            try:
                check_lab_key(key, own_kernel=self.own_kernel)
            except SysctlKeyError as exc:
                raise LabSetupError(f"{self.name}: sysctl {key!r}: {exc}", key=str(key)) from None
        return self._set(values)

    def _set(self, values: dict[str, str]) -> AgentProcess | dict[str, Any]:
        roots = sysctl.OWN_KERNEL_ROOTS if self.own_kernel else sysctl.WRITABLE_ROOTS
        if getattr(self.host, "call", None) is not None:
            return self.one_shot(lambda: sysctl.exchange(values, [], roots), "sysctl")
        return self.agent("sysctl", "--set", json.dumps(values), *(["--kernel-wide"] if self.own_kernel else []))

    def finish_sysctls(self, started: AgentProcess | dict[str, Any]) -> dict[str, str]:
        """Wait for start_sysctls; on error restore what was set and raise LabSetupError."""
        event = started if isinstance(started, dict) else self._event_of(started)
        if event.get("error"):
            err = event["error"]
            if event["previous"]:
                undo = self._set(dict(event["previous"]))
                if not isinstance(undo, dict):
                    self._event_of(undo)
            raise LabSetupError(f"{self.name}: sysctl {err['key']}: {err['message']}", key=str(err["key"]))
        return dict(event["previous"])

    @staticmethod
    def _event_of(proc: AgentProcess) -> dict[str, Any]:
        try:
            return proc.next_event(30)
        finally:
            proc.stop()

    def pressure(self) -> dict[str, Any]:
        """The kernel-wide state of ``agent.observe.pressure`` and this namespace's counters, without
        the socket scan of observe() (which costs seconds with a million connections open)."""
        return self.one_shot(observe.pressure_reading, "pressure")

    def observe(self, port: int | None = None) -> dict[str, Any]:
        """Socket states and kernel counters of this host, now."""
        args = ["observe"] + (["--port", str(port)] if port is not None else [])
        return self.one_shot(lambda: {"event": "observation", **observe.observe(port)}, *args)

    def __repr__(self) -> str:
        return f"LabHost({self.host.label})"


__all__ = ["AgentError", "LabHost", "LabSetupError"]
