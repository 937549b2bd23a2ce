"""A realised lab: its hosts, the settings applied to them (an undo stack), and teardown."""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from ..errors import AgentError, LabSetupError, ProviderUnavailable
from ..profiles.emulation import NFT_TABLE, Knobs
from ..profiles.profile import Profile
from ..profiles.sysctlkeys import is_kernel_wide
from ..report.observation import Observation
from ..report.progress import Progress
from .labhost import LabHost
from .narration import Narrator
from .providers.agentproc import AgentProcess
from .providers.base import Host, Provider
from .providers.program import Stoppable
from .topology import Topology


def _known_here(key: str) -> bool:
    """True when this machine's own kernel has the sysctl ``key`` (read only, never written)."""
    return Path("/proc/sys", *key.split(".")).exists()


class Lab:
    """Hosts made by a provider from a topology, with a profile's settings applied."""

    def __init__(self, name: str, run_id: str, profile: Profile, provider: Provider,
                 topology: Topology, hosts: list[Host]) -> None:
        self.name = name
        self.run_id = run_id
        self.profile = profile
        self.provider = provider
        self.topology = topology
        self._raw_hosts = hosts
        self.processes: list[Stoppable] = []
        self.hosts = {h.spec.name: LabHost(h, self.processes) for h in hosts}
        self.server = self.hosts["server"]
        self.router: LabHost | None = self.hosts.get("router")
        self.clients = [h for h in self.hosts.values() if h.role == "client"]
        self.rlimits: dict[str, dict[str, int]] = {}
        self.knobs = Knobs()  # what apply() set: the profile's knobs, computed once per lab
        self.watchers: list[str] = []  # agent roles that emulate a setting lab-wide, running
        self._watcher_procs: dict[tuple[str, str], AgentProcess] = {}  # (role, host name) -> process
        self.emulated: dict[str, int] = {}  # what each emulation enforces (profiles.emulation names)
        self.observations: list[Observation] = []
        self.conditions: dict[str, str] = {}
        self._undo: list[tuple[str, Callable[[], None]]] = []
        self.progress = Progress()  # long probes report here (silent unless the plugin or a script says where)
        self.narrator = Narrator()  # the test's story: steps and attachments (Allure, when it is active)

    @property
    def nft_table(self) -> str:
        return f"connlab_{self.run_id}"

    def hosts_for(self, role: str) -> list[LabHost]:
        return list(self.hosts.values()) if role == "all" else \
            [h for h in self.hosts.values() if h.role == role]

    def apply_topology(self) -> None:
        """What each host's part in the topology needs (a router forwards and masquerades)."""
        self.set_many({h.name: dict(h.host.spec.sysctls) for h in self.hosts.values() if h.host.spec.sysctls})
        for host in self.hosts.values():
            if host.host.spec.nft:
                self.load_nft(host, list(host.host.spec.nft))

    def apply(self, knobs: Knobs) -> None:
        """Apply sysctls (all hosts at once) then nft rules, each pushed on the undo stack; keep
        the process limits for the server's programs and what each emulation enforces."""
        self.refuse_kernel_wide(knobs)
        self.knobs = knobs
        self.rlimits = {role: dict(v) for role, v in knobs.rlimits.items()}
        self.emulated = dict(knobs.emulated)
        for role, limits in self.rlimits.items():
            for host in self.hosts_for(role):
                host.rlimits = limits
        per_host: dict[str, dict[str, str]] = {}
        for role in ("all", "server", "client", "router"):
            for host in self.hosts_for(role):
                per_host.setdefault(host.name, {}).update(knobs.sysctls.get(role, {}))
        self.set_many({name: v for name, v in per_host.items() if v})
        for role, fragments in knobs.nft.items():
            for host in self.hosts_for(role):
                self.load_nft(host, fragments)
        for role, argvs in knobs.agents.items():  # emulations that watch the host: running until teardown
            for host in self.hosts_for(role):
                for argv in argvs:
                    self.start_watcher(host, [a.replace(NFT_TABLE, self.nft_table) for a in argv])

    def refuse_kernel_wide(self, knobs: Knobs) -> None:
        """ProviderUnavailable when the profile sets a kernel-wide key and a host shares this machine's
        kernel: the key is the lab's own only on hosts with a kernel of their own (vm)."""
        wide = sorted({k for values in knobs.sysctls.values() for k in values if is_kernel_wide(k)})
        shared = [h.name for h in self.hosts.values() if not h.own_kernel]
        if wide and shared:
            raise ProviderUnavailable(
                f"connlab: profile {self.profile.path} sets {', '.join(wide)}: kernel-wide (one value for every "
                f"namespace of a kernel), and the {self.provider.name} provider's hosts share this machine's "
                "kernel, which a lab never changes; run it with --lab-provider vm")

    def start_watcher(self, host: LabHost, argv: list[str]) -> None:
        """Run an agent role for the lab's whole life (stopped at teardown with the others)."""
        proc = host.agent(*argv)
        try:
            proc.expect("ready", timeout=15)
        except AgentError as exc:
            raise LabSetupError(f"profile {self.profile.path}: {argv[0]} on {host.name} did not start: "
                                f"{exc}") from None
        self.watchers.append(f"{argv[0]} on {host.name}")
        self._watcher_procs[(argv[0], host.name)] = proc

    def watcher(self, role: str, host: LabHost) -> AgentProcess | None:
        """The lab-long agent process of ``role`` on ``host`` (None when the profile runs none)."""
        return self._watcher_procs.get((role, host.name))

    def check_watchers(self) -> None:
        """LabSetupError naming any lab-wide emulation whose watcher has stopped: the lab no longer
        behaves like its profile, so nothing measured since may be reported as reproduced."""
        dead = [(role, name, proc) for (role, name), proc in self._watcher_procs.items() if not proc.running]
        if dead:
            role, name, proc = dead[0]
            raise LabSetupError(f"profile {self.profile.path}: the lab-wide emulation {role} on {name} "
                                f"stopped: {proc.stderr_tail()}")

    def set_many(self, values_by_host: dict[str, dict[str, str]]) -> None:
        """Set sysctls on several hosts at once; each host's previous values go on the undo stack."""
        started = [(self.hosts[name], self.hosts[name].start_sysctls(values))
                   for name, values in values_by_host.items()]
        failure = None
        for host, proc in started:
            try:
                previous = host.finish_sysctls(proc)
            except LabSetupError as exc:
                if exc.key and host.own_kernel and "No such file" in str(exc) and _known_here(exc.key):
                    raise ProviderUnavailable(
                        f"connlab: the kernel of {host.name} ({getattr(host.host, 'kernel_release', 'its own')}) "
                        f"has no sysctl {exc.key}, which this machine's kernel has: the setting needs a newer "
                        "guest kernel (--lab-vm-kernel)") from None
                origin = self.profile.origin_of(exc.key) if exc.key else str(self.profile.path)
                where = f"profile {origin}" if origin == str(self.profile.path) else origin
                failure = failure or LabSetupError(f"{where}: {exc}", key=exc.key)
                continue
            self._undo.append((f"sysctls on {host.name}", self._sysctl_undo(host, previous)))
        if failure:
            raise failure

    @staticmethod
    def _sysctl_undo(host: LabHost, previous: dict[str, str]) -> Callable[[], None]:
        def undo() -> None:
            host.set_sysctls(previous)
        return undo

    def _nft_undo(self, host: LabHost) -> Callable[[], None]:
        def undo() -> None:
            host.run(["nft", "delete", "table", "inet", self.nft_table])
        return undo

    def set_sysctls(self, host: LabHost, values: dict[str, str]) -> None:
        """Set sysctls on one host; the undo stack restores the previous values."""
        self.set_many({host.name: values})

    def load_nft(self, host: LabHost, fragments: list[str]) -> None:
        """Load rules into this lab's own nft table on one host; teardown deletes the table."""
        if shutil.which("nft") is None:
            raise ProviderUnavailable(f"connlab: profile {self.profile.name} needs nftables "
                                      "(the nft command): apt-get install nftables")
        script = f"table inet {self.nft_table} {{\n" + "\n".join(fragments) + "\n}\n"
        result = host.run(["nft", "-f", "-"], input=script.encode())
        if result.returncode != 0:
            raise LabSetupError(f"profile {self.profile.path}: nft on {host.name}: "
                                f"{result.stderr.decode(errors='replace').strip()}")
        self._undo.append((f"nft table on {host.name}", self._nft_undo(host)))

    def pin(self, role: str, values: dict[str, str], why: str, override: bool = False) -> None:
        """A probe's measurement condition: set sysctls (those the profile leaves open, unless
        ``override``) on the hosts of ``role``, and record them on every observation."""
        profile_keys = set() if override else set(self.knobs.sysctls.get("all", {}))
        settable = {k: v for k, v in values.items() if k not in profile_keys}
        self.set_many({h.name: settable for h in self.hosts_for(role)} if settable else {})
        for key, value in settable.items():
            self.conditions[f"{role}:{key}"] = f"{value} ({why})"

    def record(self, observation: Observation) -> Observation:
        """Keep an observation for the report; returns it for chaining."""
        observation.conditions = {**self.conditions, **observation.conditions}
        self.observations.append(observation)
        return observation

    def stop_processes(self) -> None:
        """Stop every agent and program started in this lab, newest first."""
        while self.processes:
            self.processes.pop().stop(timeout=5)

    def restore(self) -> list[str]:
        """Undo every setting, newest first; return the problems met (undo goes on regardless)."""
        problems = []
        while self._undo:
            what, undo = self._undo.pop()
            try:
                undo()
            except Exception as exc:  # teardown goes on; the problem is reported
                problems.append(f"undo {what}: {exc}")
        return problems

    def teardown(self) -> list[str]:
        """Stop agents and programs, restore settings (unless the hosts are disposable), remove hosts."""
        self.stop_processes()
        problems = [] if self.provider.disposable_hosts else self.restore()
        self._undo.clear()
        self.provider.destroy(self._raw_hosts)
        return problems

    def namespace_names(self) -> list[str]:
        """The network namespaces of this lab (its hosts' and its segments'), where it has any."""
        hosts = [str(ns) for h in self._raw_hosts if (ns := getattr(h, "ns_name", None))]
        segments = [f"{self.name}-{seg}" for seg in self.topology.segments] if hosts else []
        return hosts + segments

    def describe_access(self) -> list[str]:
        """Commands that enter each host (for --lab-keep)."""
        return [f"{h.name}: {self.provider.describe_access(h.host)}" for h in self.hosts.values()]
