"""The default provider: each host a Linux network namespace.

Every namespace is named ``<prefix>-<host>`` where the prefix carries the run id.
A segment is a bridge in its own namespace (``<prefix>-<segment>``); each host
joins it by a veth whose ends are created directly inside the two namespaces,
so nothing is ever created in, or changed in, the host's own namespace.
Namespaces are made by threads of this process (:mod:`nsthread`, no fork) and wired
by one rtnetlink batch per namespace (:mod:`rtnl`), interface indexes fixed at creation;
teardown kills what runs in all of a lab's namespaces after one scan of /proc.
"""
from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from ...agent import sysctl
from ...errors import ProviderUnavailable
from ...profiles.sysctlkeys import check_lab_key
from ..names import LabName
from ..topology import HostSpec, Topology
from . import nsexec, nsthread, rtnl
from .base import Host, Spare, local_agent_argv

T = TypeVar("T")
# What a namespace made with birth sysctls was born with (tcp_child_ehash_entries shrinks these).
BIRTH_REPORT = ("net.ipv4.tcp_ehash_entries", "net.ipv4.tcp_max_tw_buckets", "net.ipv4.tcp_max_syn_backlog")
# Interface indexes chosen at creation, above those a new namespace's own devices take (lo is 1;
# fallback tunnels such as tunl0 or sit0 take the next ones where their modules are loaded).
BRIDGE_INDEX = 1000  # br0 in a segment's namespace; its ports follow it
NIC_INDEX = 1000  # a host's first NIC; its others follow it
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21


def _effective_caps() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


@dataclass
class NetnsHost:
    """A host that is a named network namespace."""

    spec: HostSpec
    ns_name: str
    ns_fd: int = -1
    label: str = field(init=False)
    birth_report: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.label = f"{self.spec.name}({self.ns_name})"

    @property
    def ns_path(self) -> str:
        return str(nsexec.NETNS_DIR / self.ns_name)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside this namespace."""
        return subprocess.Popen(list(argv), preexec_fn=nsexec.entering(self.ns_fd), **kwargs)

    def agent_argv(self, args: Sequence[str]) -> list[str]:
        return local_agent_argv(args)

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` on a thread of this process that has entered this namespace (no process started):
        for the agent's one-shot reads and sysctl writes, which need nothing but the namespace."""
        return nsthread.run_in(self.ns_fd, fn)


class NetnsProvider:
    """Hosts as network namespaces joined by veths to a bridge per segment."""

    name = "netns"
    applies_birth = True  # namespaces are created from a parent with the birth sysctls set
    disposable_hosts = True  # a namespace takes its sysctls, links and nft tables with it

    def check(self) -> None:
        caps = _effective_caps()
        if not (caps >> CAP_SYS_ADMIN) & 1 or not (caps >> CAP_NET_ADMIN) & 1:
            raise ProviderUnavailable(
                "connlab: the netns provider needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) "
                "to create network namespaces; run pytest as root or pick another --lab-provider")

    def realise(self, topology: Topology, prefix: str) -> list[Host]:
        """Make the namespaces from threads (no fork), then wire each with one netlink batch:
        the segment's bridge and veths (peers made directly in the hosts), then each host's
        addresses, links and routes."""
        made: list[str] = []
        hosts = [NetnsHost(spec, f"{prefix}-{spec.name}") for spec in topology.hosts]
        segment_fds: dict[str, int] = {}
        try:
            # the segments and every host without birth sysctls at once (the kernel sets new namespaces
            # up in parallel); a host born with sysctls after, one at a time, since it sets them in
            # its segment's namespace just before it is made there
            plain = [f"{prefix}-{seg}" for seg in topology.segments] + \
                [h.ns_name for h in hosts if not h.spec.birth]
            made += plain
            nsthread.run_many([(None, partial(nsthread.create_here, name)) for name in plain])
            for seg in topology.segments:
                segment_fds[seg] = os.open(nsexec.NETNS_DIR / f"{prefix}-{seg}", os.O_RDONLY | os.O_CLOEXEC)
            for host in hosts:
                if host.spec.birth:
                    made.append(host.ns_name)
                    self._create_from_parent(segment_fds[host.spec.nics[0].segment], host)
                host.ns_fd = os.open(host.ns_path, os.O_RDONLY | os.O_CLOEXEC)
            for seg in topology.segments:
                self._wire_segment(f"{prefix}-{seg}", segment_fds[seg], seg, hosts)
            for host in hosts:
                self._configure_host(host, topology)
        except BaseException:
            self._remove(made, hosts)
            raise
        finally:
            for fd in segment_fds.values():
                os.close(fd)
        return list(hosts)

    @staticmethod
    def _create_from_parent(parent_fd: int, host: NetnsHost) -> None:
        """Create ``host``'s namespace from inside its segment's namespace with the birth sysctls
        set there (tcp_child_ehash_entries is read from the creator's namespace), then read back
        what the new namespace was born with: all on one thread, no process started."""
        birth = dict(host.spec.birth)
        for key in birth:
            check_lab_key(key)

        def born() -> dict[str, str | None]:
            reply = sysctl.apply(birth)
            if reply.get("error"):
                raise RuntimeError(f"{host.label}: birth sysctls {birth}: {reply['error']}")
            nsthread.create_here(host.ns_name)
            report: dict[str, str | None] = {}
            for key in BIRTH_REPORT:
                try:
                    report[key] = sysctl.read(key)
                except (OSError, ValueError):
                    report[key] = None
            return report
        host.birth_report = nsthread.run_in(parent_fd, born)

    @staticmethod
    def _wire_segment(switch_ns: str, switch_fd: int, segment: str, hosts: list[NetnsHost]) -> None:
        """One batch in the segment's namespace: its bridge, and a veth per host NIC on it whose
        host end is made inside the host's namespace with the index the host's batch uses."""
        batch = rtnl.Batch(switch_ns)
        batch.bridge(BRIDGE_INDEX, "br0")
        port = BRIDGE_INDEX
        for i, host in enumerate(hosts):
            for j, nic in enumerate(host.spec.nics):
                if nic.segment == segment:
                    port += 1
                    batch.veth(port, f"p{i}{nic.name}"[:15], BRIDGE_INDEX, NIC_INDEX + j, nic.name, host.ns_fd)
        batch.send(switch_fd)

    @staticmethod
    def _configure_host(host: NetnsHost, topology: Topology) -> None:
        """One batch in the host's namespace: addresses, NICs and lo up, routes."""
        batch = rtnl.Batch(host.label)
        for j, nic in enumerate(host.spec.nics):
            for address in nic.addresses:
                batch.address(NIC_INDEX + j, address, topology.segments[nic.segment].prefixlen)
            batch.up(NIC_INDEX + j, nic.name)
        batch.up(rtnl.LOOPBACK_INDEX, "lo")
        for dst, gateway in host.spec.routes:
            batch.route(dst, gateway)
        batch.send(host.ns_fd)

    def destroy(self, hosts: list[Host]) -> None:
        """Remove the hosts' namespaces and the segment namespaces of their lab."""
        ns_hosts = [h for h in hosts if isinstance(h, NetnsHost)]
        host_names = {h.ns_name for h in ns_hosts}
        labs = {lab for name in host_names if (lab := LabName.of_resource(name))}
        switches = [name for lab in labs for name in lab_namespaces().get(lab, []) if name not in host_names]
        self._remove(switches + sorted(host_names), ns_hosts)

    def sweep(self, spare: Spare, dry_run: bool = False) -> dict[LabName, list[str]]:
        """Remove the namespaces of labs the reaper does not spare."""
        removed = {lab: names for lab, names in lab_namespaces().items() if not spare(lab)}
        if not dry_run:
            remove_namespaces([name for names in removed.values() for name in names])
        return removed

    def remove(self, lab: LabName) -> list[str]:
        """Remove the namespaces of ``lab`` (its hosts' and its segments')."""
        names = lab_namespaces().get(lab, [])
        remove_namespaces(names)
        return names

    @staticmethod
    def _remove(ns_names: list[str], hosts: Sequence[Host]) -> None:
        for host in hosts:
            if isinstance(host, NetnsHost) and host.ns_fd >= 0:
                os.close(host.ns_fd)
                host.ns_fd = -1
        remove_namespaces(ns_names)

    def describe_access(self, host: Host) -> str:
        return f"ip netns exec {getattr(host, 'ns_name', host.label)} bash"


def lab_namespaces() -> dict[LabName, list[str]]:
    """The named namespaces that belong to a lab (by the name grammar), by lab."""
    by_lab: dict[LabName, list[str]] = {}
    if nsexec.NETNS_DIR.is_dir():
        for entry in sorted(nsexec.NETNS_DIR.iterdir()):
            if lab := LabName.of_resource(entry.name):
                by_lab.setdefault(lab, []).append(entry.name)
    return by_lab


def remove_namespace(name: str) -> None:
    """Kill what runs in a namespace, then unmount and delete its name (its links go with it)."""
    remove_namespaces([name])


def remove_namespaces(names: Sequence[str]) -> None:
    """Kill what runs in the namespaces (one scan of /proc), then unmount and delete their names."""
    nsexec.kill_all_in(*(nsexec.NETNS_DIR / name for name in names))
    for name in names:
        nsthread.delete(name)
