"""The session's lab factory: run id, address slice, and every lab it built until teardown."""
from __future__ import annotations

import itertools
from ipaddress import IPv4Network

from .lab.addressing import SubnetAllocator
from .lab.lab import Lab
from .lab.names import LabName
from .lab.providers.base import Provider
from .lab.reaper import record_kept
from .lab.topology import TopologyRequest, plan
from .probes import ProbedLab
from .profiles.limits import CATALOG
from .profiles.profile import Profile


class LabFactory:
    """Builds labs for one pytest process (the controller, or one xdist worker)."""

    def __init__(self, provider: Provider, run_id: str, worker: str, slice_: IPv4Network) -> None:
        self.provider = provider
        self.run_id = run_id
        self.worker = worker
        self.allocator = SubnetAllocator(slice_)
        self._seq = itertools.count(1)
        self.live: list[ProbedLab] = []
        self._checked = False

    def build(self, profile: Profile, request: TopologyRequest) -> ProbedLab:
        """Realise a topology, apply the profile; on any failure remove what was made."""
        if not self._checked:  # once: for ssh it connects to every host, for docker it asks the engine
            self.provider.check()
            self._checked = True
        knobs = profile.knobs()
        birth = request.sized_birth(knobs.birth) if self.provider.applies_birth else None
        topology = plan(request, self.allocator, birth)
        name = str(LabName(self.run_id, self.worker, next(self._seq)))
        try:
            hosts = self.provider.realise(topology, name)
        except BaseException:
            self._release(topology.segments.values())
            raise
        lab = ProbedLab(name, self.run_id, profile, self.provider, topology, hosts)
        self.live.append(lab)
        try:
            lab.apply_topology()
            lab.apply(knobs)
        except BaseException:
            self.destroy(lab)
            raise
        return lab

    def cannot_measure(self, profile: Profile, limit: str | None) -> str | None:
        """Why this provider cannot reproduce ``limit`` of ``profile`` (None when it can): its
        emulation needs a host born with a TCP hash of its own size, which only the netns provider
        (a namespace made from a parent) and the vm provider (the guest's kernel command line) make."""
        if limit is None:
            return None
        if CATALOG.get(limit) is not None and CATALOG[limit].needs_own_kernel and \
                not getattr(self.provider, "own_kernel", False):
            return (f"connlab: {limit} is measured on hosts with their own kernel and RAM (--lab-provider vm); "
                    f"the {self.provider.name} provider's hosts share this machine's")
        if self.provider.applies_birth:
            return None
        setting = profile.birth_limits().get(limit)
        if setting is None:
            return None
        return (f"connlab: the {self.provider.name} provider cannot apply {setting} of profile "
                f"{profile.name}: its Linux knob (tcp_child_ehash_entries) acts only when a network "
                "namespace is created from a parent that has it set (netns), or a kernel boots with "
                "thash_entries (vm), and this provider's hosts are made neither way")

    def _release(self, subnets: object) -> None:
        for subnet in list(subnets):  # type: ignore[call-overload]
            self.allocator.release(subnet)

    def destroy(self, lab: Lab) -> list[str]:
        """Tear one lab down and give its addresses back."""
        if lab in self.live:
            self.live.remove(lab)
        try:
            return lab.teardown()
        finally:
            self._release(lab.topology.segments.values())

    def keep(self, lab: Lab) -> list[str]:
        """Leave a lab standing for inspection; the sweep spares it until `connlab down`."""
        if lab in self.live:
            self.live.remove(lab)
        lab.stop_processes()
        record_kept(lab.name, self.run_id, lab.profile.name, self.provider.name, lab.namespace_names())
        return lab.describe_access()

    def close(self) -> list[str]:
        """Tear down every lab still standing (end of session, Ctrl-C included)."""
        problems: list[str] = []
        while self.live:
            problems += self.destroy(self.live[-1])
        return problems
