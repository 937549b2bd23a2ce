"""The default provider: each host a Linux network namespace, made with pyroute2.

Every namespace is named ``<prefix>-<host>`` where the prefix carries the run id.
A segment is a bridge in its own namespace (``<prefix>-<segment>``); each host
joins it by a veth whose ends are created directly inside the two namespaces,
so nothing is ever created in, or changed in, the host's own namespace.
"""
from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ...errors import ProviderUnavailable
from ...profiles.sysctlkeys import check_lab_key
from ..names import LabName
from ..topology import HostSpec, Topology
from . import nsexec
from .base import Host, Spare, local_agent_argv

# What a namespace made with birth sysctls was born with (tcp_child_ehash_entries shrinks these).
BIRTH_REPORT = ("net.ipv4.tcp_ehash_entries", "net.ipv4.tcp_max_tw_buckets", "net.ipv4.tcp_max_syn_backlog")
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
        try:
            import pyroute2  # noqa: F401
        except ImportError:
            raise ProviderUnavailable("connlab: the netns provider needs pyroute2 "
                                      "(pip install pyroute2)") from None

    def realise(self, topology: Topology, prefix: str) -> list[Host]:
        from pyroute2 import netns
        made: list[str] = []
        creator = os.getpid()
        hosts = [NetnsHost(spec, f"{prefix}-{spec.name}") for spec in topology.hosts]
        try:
            for name in (f"{prefix}-{seg}" for seg in topology.segments):
                netns.create(name)
                made.append(name)
            for host in hosts:
                if host.spec.birth:
                    made.append(host.ns_name)
                    self._create_from_parent(f"{prefix}-{host.spec.nics[0].segment}", host)
                else:
                    netns.create(host.ns_name)
                    made.append(host.ns_name)
                host.ns_fd = os.open(host.ns_path, os.O_RDONLY | os.O_CLOEXEC)
            for seg, subnet in topology.segments.items():
                self._wire_segment(f"{prefix}-{seg}", seg, subnet.prefixlen, hosts)
            for host in hosts:
                self._route(host)
        except BaseException:
            if os.getpid() == creator:  # never from a forked helper that unwound into here
                self._remove(made, hosts)
            raise
        return list(hosts)

    @staticmethod
    def _create_from_parent(parent_ns: str, host: NetnsHost) -> None:
        """Create ``host``'s namespace from inside ``parent_ns`` with the birth sysctls set there
        (tcp_child_ehash_entries is read from the creator's namespace), then read back what the
        new namespace was born with."""
        for key in dict(host.spec.birth):
            check_lab_key(key)
        parent_fd = os.open(str(nsexec.NETNS_DIR / parent_ns), os.O_RDONLY | os.O_CLOEXEC)
        try:
            def in_parent(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
                return subprocess.run(argv, preexec_fn=nsexec.entering(parent_fd), capture_output=True,
                                      timeout=30)
            setting = in_parent(local_agent_argv(["sysctl", "--set", json.dumps(dict(host.spec.birth))]))
            reply = json.loads(setting.stdout.splitlines()[0]) if setting.stdout.strip() else {}
            if setting.returncode or reply.get("error"):
                raise RuntimeError(f"{host.label}: birth sysctls {dict(host.spec.birth)}: "
                                   f"{(setting.stdout + setting.stderr).decode(errors='replace')}")
            made = in_parent(["ip", "netns", "add", host.ns_name])
            if made.returncode:
                raise RuntimeError(f"{host.label}: ip netns add: {made.stderr.decode(errors='replace')}")
        finally:
            os.close(parent_fd)
        host_fd = os.open(host.ns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            read = subprocess.run(local_agent_argv(["sysctl", "--get", *BIRTH_REPORT]),
                                  preexec_fn=nsexec.entering(host_fd), capture_output=True, timeout=30)
            host.birth_report = json.loads(read.stdout.splitlines()[0])["values"]
        finally:
            os.close(host_fd)

    @staticmethod
    def _route(host: NetnsHost) -> None:
        if not host.spec.routes:
            return
        from pyroute2 import IPRoute
        with IPRoute(netns=host.ns_name, groups=0) as ipr:
            for dst, gateway in host.spec.routes:
                ipr.route("add", dst=dst, gateway=gateway)

    def _wire_segment(self, switch_ns: str, segment: str, prefixlen: int,
                      hosts: list[NetnsHost]) -> None:
        from pyroute2 import IPRoute
        with IPRoute(netns=switch_ns, groups=0) as sw:
            sw.link("add", ifname="br0", kind="bridge")
            bridge = sw.link_lookup(ifname="br0")[0]
            sw.link("set", index=bridge, state="up")
            for i, host in enumerate(hosts):
                for nic in (n for n in host.spec.nics if n.segment == segment):
                    port = f"p{i}{nic.name}"[:15]
                    sw.link("add", ifname=port, kind="veth",
                            peer={"ifname": nic.name, "net_ns_fd": host.ns_fd})
                    sw.link("set", index=sw.link_lookup(ifname=port)[0], master=bridge, state="up")
                    self._address_nic(host, nic.name, nic.addresses, prefixlen)

    @staticmethod
    def _address_nic(host: NetnsHost, ifname: str, addresses: tuple[str, ...], prefixlen: int) -> None:
        from pyroute2 import IPRoute
        with IPRoute(netns=host.ns_name, groups=0) as ipr:
            index = ipr.link_lookup(ifname=ifname)[0]
            for address in addresses:
                ipr.addr("add", index=index, address=address, prefixlen=prefixlen)
            ipr.link("set", index=index, state="up")
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")

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
            for names in removed.values():
                for name in names:
                    remove_namespace(name)
        return removed

    def remove(self, lab: LabName) -> list[str]:
        """Remove the namespaces of ``lab`` (its hosts' and its segments')."""
        names = lab_namespaces().get(lab, [])
        for name in names:
            remove_namespace(name)
        return names

    @staticmethod
    def _remove(ns_names: list[str], hosts: Sequence[Host]) -> None:
        for host in hosts:
            if isinstance(host, NetnsHost) and host.ns_fd >= 0:
                os.close(host.ns_fd)
                host.ns_fd = -1
        for name in ns_names:
            remove_namespace(name)

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
    from pyroute2 import netns
    path = nsexec.NETNS_DIR / name
    nsexec.kill_all_in(path)
    try:
        netns.remove(name)
    except (FileNotFoundError, OSError):
        if path.exists():
            raise
