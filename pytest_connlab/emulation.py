"""Windows settings -> Linux knobs, each with a fidelity (exact | approximate | none) and why.

A Windows profile names settings as Windows does (``Tcpip.MaxUserPort``). On a
Linux lab each is emulated by the nearest per-namespace knob; the report carries
the fidelity so nobody mistakes an approximation for the real thing.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

FIDELITIES = ("exact", "approximate", "none")


@dataclass
class Knobs:
    """Linux knobs for one lab: sysctls and nft fragments, per role (all, server, client)."""

    sysctls: dict[str, dict[str, str]] = field(default_factory=dict)
    nft: dict[str, list[str]] = field(default_factory=dict)

    def add_sysctl(self, role: str, key: str, value: str) -> None:
        self.sysctls.setdefault(role, {})[key] = value

    def add_nft(self, role: str, fragment: str) -> None:
        self.nft.setdefault(role, []).append(fragment)

    def merge(self, other: Knobs) -> None:
        for role, values in other.sysctls.items():
            self.sysctls.setdefault(role, {}).update(values)
        for role, fragments in other.nft.items():
            self.nft.setdefault(role, []).extend(fragments)


@dataclass(frozen=True)
class Rule:
    """How one Windows setting is emulated."""

    setting: str
    low: int
    high: int
    limits: tuple[str, ...]
    fidelity: str
    reason: str
    knobs: Callable[[int], Knobs]
    linux: str  # the knob(s) in words, for `connlab show`


def _port_range(value: int) -> Knobs:
    k = Knobs()
    k.add_sysctl("all", "net.ipv4.ip_local_port_range", f"1025 {value}")
    return k


def _no_knob(_: int) -> Knobs:
    return Knobs()


def _somaxconn(value: int) -> Knobs:
    k = Knobs()
    k.add_sysctl("all", "net.core.somaxconn", str(value))
    return k


def _computer_cap(value: int) -> Knobs:
    """A size-N set of source IPs: the first N computers are admitted, later ones reset."""
    k = Knobs()
    k.add_nft("server", "\n".join([
        f"set inbound_computers {{ type ipv4_addr; size {value}; flags dynamic; }}",
        "chain inbound_computer_cap {",
        "  type filter hook input priority filter; policy accept;",
        '  iifname "lo" accept',
        "  ct state established,related accept",
        "  ip saddr @inbound_computers accept",
        "  ct state new add @inbound_computers { ip saddr } accept",
        "  meta l4proto tcp reject with tcp reset",
        "}",
    ]))
    return k


RULES: dict[str, Rule] = {r.setting: r for r in (
    Rule("Tcpip.MaxUserPort", 5000, 65534, ("ephemeral_ports",), "exact",
         "Linux hands out the same 1025..MaxUserPort range, so the count of connects to one "
         "destination matches. Linux pools ports per destination ip:port and fails connect() "
         "with EADDRNOTAVAIL where Winsock gives WSAENOBUFS 10055.",
         _port_range, "net.ipv4.ip_local_port_range = 1025 <value>"),
    Rule("Tcpip.TcpTimedWaitDelay", 30, 300, ("time_wait_length",), "none",
         "Linux TIME_WAIT is fixed at 60 s (TCP_TIMEWAIT_LEN) with no knob: ports come back "
         "after 60 s, not after this delay. Exhaustion counts within 60 s are unaffected.",
         _no_knob, "none (TCP_TIMEWAIT_LEN is 60 s, compiled in)"),
    Rule("Product.ListenBacklogCap", 1, 65535, ("listen_backlog",), "approximate",
         "A product limit of the edition (not a registry value), emulated by net.core.somaxconn. "
         "Linux completes cap+1 handshakes and then drops further SYNs silently (the client "
         "times out), where Windows refuses with WSAECONNREFUSED 10061.",
         _somaxconn, "net.core.somaxconn = <value>"),
    Rule("Product.InboundComputerCap", 1, 1000, ("inbound_cap",), "approximate",
         "XP counts computers with open sessions over all protocols and refuses the next at "
         "the session layer (NT error 71, IIS 403.9). The lab admits the first N source IPs "
         "(an nft set of size N) and resets TCP connections from any other.",
         _computer_cap, "nft set of source IPs, size <value>, reject with tcp reset"),
)}


def rule_for(setting: str) -> Rule | None:
    """The rule for a Windows setting, or None when connlab does not know it."""
    return RULES.get(setting)


def worst(fidelities: list[str]) -> str:
    """The lowest fidelity of several (exact > approximate > none)."""
    return max(fidelities, key=FIDELITIES.index) if fidelities else "exact"
