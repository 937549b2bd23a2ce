"""Pure data: the hosts of a lab, their NICs and addresses. A provider realises it."""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network

from .addressing import SubnetAllocator

MAX_CLIENTS = 64
MAX_IPS_PER_CLIENT = 256


@dataclass(frozen=True)
class TopologyRequest:
    """What a test asks for (the ``topology`` marker): client hosts and IPs on each."""

    clients: int = 1
    ips_per_client: int = 1

    def __post_init__(self) -> None:
        for name, value, top in (("clients", self.clients, MAX_CLIENTS),
                                 ("ips_per_client", self.ips_per_client, MAX_IPS_PER_CLIENT)):
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= top:
                raise ValueError(f"{name} must be an integer from 1 to {top}, got {value!r}")

    @property
    def address_count(self) -> int:
        return 1 + self.clients * self.ips_per_client


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

    @property
    def clients(self) -> tuple[HostSpec, ...]:
        return tuple(h for h in self.hosts if h.role == "client")


def plan(request: TopologyRequest, allocator: SubnetAllocator) -> Topology:
    """Give every host its addresses from one subnet of the worker's slice."""
    subnet = allocator.allocate(request.address_count)
    pool = subnet.hosts()
    server = HostSpec("server", "server", (Nic("eth0", "lan", (str(next(pool)),)),))
    clients = tuple(
        HostSpec(f"client{i + 1}", "client",
                 (Nic("eth0", "lan", tuple(str(next(pool)) for _ in range(request.ips_per_client))),))
        for i in range(request.clients))
    return Topology({"lan": subnet}, (server, *clients))
