"""Pure data: the hosts of a lab, their NICs and addresses. A provider realises it."""
from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv4Network

from ..profiles.emulation import nft_chain
from .addressing import SubnetAllocator
from .memory import MAX_VCPUS, parse_memory

MAX_CLIENTS = 64
MAX_IPS_PER_CLIENT = 256
MAX_CONNECTIONS = 10_000_000
TCP_HASH_KEY = "net.ipv4.tcp_child_ehash_entries"
MAX_TCP_HASH = 1 << 24  # the kernel's ceiling for tcp_child_ehash_entries


@dataclass(frozen=True)
class TopologyRequest:
    """What a test asks for (the ``topology`` marker): client hosts and IPs on each."""

    clients: int = 1
    ips_per_client: int = 1
    router: bool = False  # clients reach the server through a forwarding, masquerading router
    memory: str | int | None = None  # the server's (and router's) RAM on providers with their own ("1G")
    client_memory: str | int | None = None  # each client's RAM there
    vcpus: int = 1  # each host's virtual CPUs there
    connections: int | None = None  # a scale lab's planned connections: namespaces get a TCP hash of their own

    def __post_init__(self) -> None:
        for name, value, top in (("clients", self.clients, MAX_CLIENTS),
                                 ("ips_per_client", self.ips_per_client, MAX_IPS_PER_CLIENT)):
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= top:
                raise ValueError(f"{name} must be an integer from 1 to {top}, got {value!r}")
        if not isinstance(self.router, bool):
            raise ValueError(f"router must be True or False, got {self.router!r}")
        for name in ("memory", "client_memory"):
            if getattr(self, name) is not None:
                parse_memory(getattr(self, name), name)
        if not isinstance(self.vcpus, int) or isinstance(self.vcpus, bool) or not 1 <= self.vcpus <= MAX_VCPUS:
            raise ValueError(f"vcpus must be an integer from 1 to {MAX_VCPUS}, got {self.vcpus!r}")
        if self.connections is not None and (not isinstance(self.connections, int) or isinstance(
                self.connections, bool) or not 1 <= self.connections <= MAX_CONNECTIONS):
            raise ValueError(f"connections must be an integer from 1 to {MAX_CONNECTIONS:,}, "
                             f"got {self.connections!r}")

    def sized_birth(self, birth: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        """``birth`` with, for a scale lab (``connections``), a TCP hash of each host's own sized for
        what it holds (the server all of them, a client its share), where the profile sets none:
        the lab's namespaces then stop sharing the machine's one table."""
        if self.connections is None:
            return birth
        sized = {role: dict(values) for role, values in birth.items()}
        for role, count in (("server", self.connections), ("client", -(-self.connections // self.clients))):
            entries = min(MAX_TCP_HASH, 1 << max(7, (count - 1).bit_length()))
            sized.setdefault(role, {}).setdefault(TCP_HASH_KEY, str(entries))
        return sized

    def memory_mb(self, role: str) -> int:
        """The RAM asked for a host of ``role`` (0: the provider's default)."""
        value = self.client_memory if role == "client" else self.memory
        return 0 if value is None else parse_memory(value, "memory")

    @property
    def address_count(self) -> int:
        """Addresses on the clients' segment: the clients', the server's or the router's, and
        a spare one a provider may need for itself (docker's network gateway)."""
        return 2 + self.clients * self.ips_per_client


@dataclass(frozen=True)
class Nic:
    """One interface of a host on a segment, with its IPv4 addresses (first is primary)."""

    name: str
    segment: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class HostSpec:
    """One host: its short name (``server``, ``client1``), role and NICs."""

    name: str
    role: str
    nics: tuple[Nic, ...]
    routes: tuple[tuple[str, str], ...] = ()  # (destination CIDR, gateway)
    sysctls: tuple[tuple[str, str], ...] = ()  # what the host's part in the topology needs
    nft: tuple[str, ...] = ()  # rules the host's part in the topology needs
    birth: tuple[tuple[str, str], ...] = ()  # set in the parent namespace before this one is made
    memory_mb: int = 0  # RAM on providers whose hosts have their own (0: the provider's default)
    vcpus: int = 0

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(a for nic in self.nics for a in nic.addresses)

    @property
    def address(self) -> str:
        return self.nics[0].addresses[0]


@dataclass(frozen=True)
class Topology:
    """A star: one server and N clients on one L2 segment (``lan``)."""

    segments: dict[str, IPv4Network]
    hosts: tuple[HostSpec, ...]

    @property
    def server(self) -> HostSpec:
        return next(h for h in self.hosts if h.role == "server")

    def spare_address(self, segment: str) -> str:
        """The segment's last host address, which no lab host is given (a provider's gateway)."""
        subnet = self.segments[segment]
        return str(subnet.broadcast_address - 1)

    @property
    def clients(self) -> tuple[HostSpec, ...]:
        return tuple(h for h in self.hosts if h.role == "client")


MASQUERADE = nft_chain("nat_out", "postrouting", ['oifname "eth1" masquerade'], priority="srcnat", kind="nat")


def plan(request: TopologyRequest, allocator: SubnetAllocator,
         birth: dict[str, dict[str, str]] | None = None) -> Topology:
    """Give every host its addresses from the worker's slice: one subnet, or with a router a
    client subnet (``lan``) and a server subnet (``wan``). ``birth`` holds, per role, sysctls
    set in the parent namespace before that host's namespace is created."""
    birth = birth or {}

    def born(role: str) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(birth.get(role, {}).items()))

    lan = allocator.allocate(request.address_count)
    pool = lan.hosts()
    segments = {"lan": lan}
    if request.router:
        wan = allocator.allocate(3)  # server, router, spare
        wan_pool = wan.hosts()
        segments["wan"] = wan
        router_lan = str(next(pool))
        server_addr, router_wan = str(next(wan_pool)), str(next(wan_pool))
        router = HostSpec("router", "router", (Nic("eth0", "lan", (router_lan,)),
                                                 Nic("eth1", "wan", (router_wan,))),
                          sysctls=(("net.ipv4.ip_forward", "1"),), nft=(MASQUERADE,), birth=born("router"))
        server = HostSpec("server", "server", (Nic("eth0", "wan", (server_addr,)),),
                          routes=((str(lan), router_wan),), birth=born("server"))
        client_routes: tuple[tuple[str, str], ...] = ((str(wan), router_lan),)
        hosts: tuple[HostSpec, ...] = (server, router)
    else:
        server = HostSpec("server", "server", (Nic("eth0", "lan", (str(next(pool)),)),), birth=born("server"))
        client_routes, hosts = (), (server,)
    clients = tuple(
        HostSpec(f"client{i + 1}", "client",
                 (Nic("eth0", "lan", tuple(str(next(pool)) for _ in range(request.ips_per_client))),),
                 routes=client_routes, birth=born("client"))
        for i in range(request.clients))
    sized = tuple(replace(h, memory_mb=request.memory_mb(h.role), vcpus=request.vcpus) for h in (*hosts, *clients))
    return Topology(segments, sized)
