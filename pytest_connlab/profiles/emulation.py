"""Windows settings -> Linux knobs, each with a fidelity (exact | approximate | none) and why.

A Windows profile names settings as Windows does (``Tcpip.MaxUserPort``). On a
Linux lab each is emulated by the nearest per-namespace knob; the report carries
the fidelity so nobody mistakes an approximation for the real thing.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

FIDELITIES = ("exact", "approximate", "none")

# What an emulation enforces, named by its Linux-side mechanism: probes read these from the lab
# (``lab.emulated``), never the Windows setting that asked for them.
CONNECTION_CAP = "nft.tcp_connection_cap"  # server input: ct count over N, reject with tcp reset
INBOUND_COMPUTERS = "nft.inbound_computers"  # server input: a set of N source IPs, others reset
ROUTER_TABLE = "nft.router_connection_table"  # router forward: ct count over N, drop
REFUSE_ON_FULL_BACKLOG = "nft.refuse_on_full_backlog"  # server: a watcher resets SYNs to full listeners
REFUSE_ON_FULL_REACTION_S = 0.005  # the watcher's poll interval (agent role refuse-on-full)
NFT_TABLE = "{nft_table}"  # in an agent role's arguments: the lab's own nft table
# A computer's XP session ends with its last connection (an IIS/HTTP client's with its TCP
# connection; file-sharing sessions linger up to the Server service's autodisconnect, 15 min by
# default, which the lab does not wait for): the slot is freed this long after the last one closed.
INBOUND_IDLE_S = 1.0
HALF_OPEN_OUTBOUND = "nfqueue.half_open_outbound"  # every host: N connects in SYN_SENT at once, the rest wait
HALF_OPEN_CLOSED_READ_S = 0.05  # the half-open-outbound role finds closed connects this often while a SYN waits
WINDOWS_CONNECT_GIVE_UP_S = 21.0  # 3 + 6 + 12 s: TcpMaxConnectRetransmissions 2, initial RTO 3 s [KB314053]
HTTP_503_PAST = "agent.http_503_past"  # the agent's HTTP server answers 503 past N connections (HTTP.SYS)
HTTP_403_9_PAST = "agent.http_403_9_past"  # ... 403.9 past N connections (IIS 5.1)
HTTP_POOL_PER_SERVER = "agent.http_pool_per_server"  # the agent's HTTP client: N connections per server


def nft_chain(name: str, hook: str, rules: list[str], priority: str = "filter",
              kind: str = "filter") -> str:
    """An nft base chain with policy accept: ``chain NAME { type KIND hook HOOK ...; RULES }``."""
    body = "".join(f"\n  {rule}" for rule in rules)
    return f"chain {name} {{\n  type {kind} hook {hook} priority {priority}; policy accept;{body}\n}}"


@dataclass
class Knobs:
    """Linux knobs for one lab: sysctls and nft fragments, per role (all, server, client)."""

    sysctls: dict[str, dict[str, str]] = field(default_factory=dict)
    nft: dict[str, list[str]] = field(default_factory=dict)
    birth: dict[str, dict[str, str]] = field(default_factory=dict)  # set in the parent before creation
    rlimits: dict[str, dict[str, int]] = field(default_factory=dict)
    emulated: dict[str, int] = field(default_factory=dict)  # mechanism (above) -> the value it enforces
    agents: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)  # role -> agent roles run lab-long

    def add_sysctl(self, role: str, key: str, value: str) -> None:
        self.sysctls.setdefault(role, {})[key] = value

    def add_nft(self, role: str, fragment: str) -> None:
        self.nft.setdefault(role, []).append(fragment)

    def add_birth(self, role: str, key: str, value: str) -> None:
        self.birth.setdefault(role, {})[key] = value

    def merge(self, other: Knobs) -> None:
        for role, values in other.sysctls.items():
            self.sysctls.setdefault(role, {}).update(values)
        for role, values in other.birth.items():
            self.birth.setdefault(role, {}).update(values)
        for role, limits in other.rlimits.items():
            self.rlimits.setdefault(role, {}).update(limits)
        for role, fragments in other.nft.items():
            self.nft.setdefault(role, []).extend(fragments)
        self.emulated.update(other.emulated)
        for role, argvs in other.agents.items():
            self.agents.setdefault(role, []).extend(argvs)


@dataclass(frozen=True)
class Rule:
    """How one Windows setting is emulated."""

    setting: str
    low: int
    high: int
    limits: tuple[str, ...]
    fidelity: str
    reason: str
    knobs: Callable[[int, Mapping[str, int]], Knobs]  # (value, every setting of the profile)
    linux: str  # the knob(s) in words, for `connlab show`
    applied_by: str = "lab"  # "agent": played by the agent's server or client in the probe of its limit


Settings = Mapping[str, int]
HALF_OPEN_CAP_OF_RATE_LIMITING = 10  # Vista RTM/SP1 and EnableConnectionRateLimiting=1 [KB969710]


def _sysctl(role: str, key: str, convert: Callable[[int], int | str] = lambda v: v
            ) -> Callable[[int, Settings], Knobs]:
    def knobs(value: int, _: Settings) -> Knobs:
        k = Knobs()
        k.add_sysctl(role, key, str(convert(value)))
        return k
    return knobs


def _no_knob(_: int, __: Settings) -> Knobs:
    return Knobs()


def _by_probe(mechanism: str) -> Callable[[int, Settings], Knobs]:
    """A setting the probe of its limit applies (or the agent plays): only recorded for it."""
    def knobs(value: int, _: Settings) -> Knobs:
        k = Knobs()
        k.emulated[mechanism] = value
        return k
    return knobs


def _port_range(value: int, _: Settings) -> Knobs:
    k = Knobs()
    k.add_sysctl("all", "net.ipv4.ip_local_port_range", f"1025 {value}")
    return k


def _dynamic_ports(_: int, settings: Settings) -> Knobs:
    """``netsh int ipv4 set dynamicport tcp start=S num=N`` -> S .. S+N-1."""
    start = settings.get("Netsh.DynamicPortStart", 49152)
    count = settings.get("Netsh.DynamicPortCount", 16384)
    k = Knobs()
    k.add_sysctl("all", "net.ipv4.ip_local_port_range", f"{start} {min(65535, start + count - 1)}")
    return k


def _computer_cap(value: int, _: Settings) -> Knobs:
    """N computers connected at once: a size-N set of source addresses per family admits a
    computer's first SYN while there is room; a watcher frees the slot of a computer whose last
    connection has been gone INBOUND_IDLE_S. TCP only: ping and UDP take no slot."""
    syn = "tcp flags & (syn | ack) == syn"
    k = Knobs()
    k.emulated[INBOUND_COMPUTERS] = value
    k.add_nft("server", "\n".join([
        f"set inbound_computers {{ type ipv4_addr; size {value}; flags dynamic; }}",
        f"set inbound_computers6 {{ type ipv6_addr; size {value}; flags dynamic; }}",
        "counter refused_computers {}",
        nft_chain("inbound_computer_cap", "input", [
            'iifname "lo" accept',
            "meta l4proto != tcp accept",
            "ct state established,related accept",
            "ip saddr @inbound_computers accept",
            "ip6 saddr @inbound_computers6 accept",
            f"{syn} meta nfproto ipv4 add @inbound_computers {{ ip saddr }} accept",
            f"{syn} meta nfproto ipv6 add @inbound_computers6 {{ ip6 saddr }} accept",
            "counter name refused_computers reject with tcp reset",
        ]),
    ]))
    k.agents.setdefault("server", []).append(
        ("inbound-computers", "--table", NFT_TABLE, "--sets", "inbound_computers,inbound_computers6",
         "--idle", str(INBOUND_IDLE_S)))
    return k


def _refuse_on_full(value: int, _: Settings) -> Knobs:
    """Lab-wide: a watcher on the server keeps the ports of full listeners (sock_diag) in an nft set
    whose SYNs get a reset; late final ACKs are reset by tcp_abort_on_overflow."""
    k = Knobs()
    if value:
        k.add_sysctl("server", "net.ipv4.tcp_abort_on_overflow", "1")
        k.emulated[REFUSE_ON_FULL_BACKLOG] = 1
        k.add_nft("server", "\n".join([
            "set full_listeners { type inet_service; }",
            nft_chain("refuse_on_full_backlog", "input", [
                "tcp flags & (syn | ack) == syn tcp dport @full_listeners counter reject with tcp reset"]),
        ]))
        k.agents.setdefault("server", []).append(
            ("refuse-on-full", "--table", NFT_TABLE, "--set", "full_listeners",
             "--interval", str(REFUSE_ON_FULL_REACTION_S)))
    return k


def _syn_protect(value: int, _: Settings) -> Knobs:
    k = Knobs()
    k.add_sysctl("server", "net.ipv4.tcp_syncookies", "1" if value else "0")
    return k


def _connection_cap(value: int, _: Settings) -> Knobs:
    """Live TCP connections into the server, counted by conntrack; the next is reset."""
    k = Knobs()
    if value < 1_000_000:
        k.emulated[CONNECTION_CAP] = value
        k.add_nft("server", nft_chain("tcp_connection_cap", "input", [
            'iifname "lo" accept',
            f"meta l4proto tcp ct state new ct count over {value} counter reject with tcp reset",
        ]))
    return k


def _half_open_outbound(value: int) -> Knobs:
    """Every outbound SYN of the lab's server and clients passes a watcher (NFQUEUE) that lets
    ``value`` connects be in SYN_SENT at once and holds the rest in order."""
    k = Knobs()
    k.emulated[HALF_OPEN_OUTBOUND] = value
    for role in ("server", "client"):
        k.agents.setdefault(role, []).append(
            ("half-open-outbound", "--cap", str(value), "--give-up", str(WINDOWS_CONNECT_GIVE_UP_S)))
    return k


def _half_open_cap(value: int, _: Settings) -> Knobs:
    return _half_open_outbound(value)


def _rate_limiting(value: int, _: Settings) -> Knobs:
    return _half_open_outbound(HALF_OPEN_CAP_OF_RATE_LIMITING) if value else Knobs()


def _router_table(value: int, _: Settings) -> Knobs:
    """The router's connection table: past ``value`` tracked connections, new ones are dropped."""
    k = Knobs()
    k.emulated[ROUTER_TABLE] = value
    k.add_nft("router", "\n".join([
        "counter table_full {}",
        nft_chain("connection_table", "forward", [f"ct state new ct count over {value} counter name table_full drop"]),
    ]))
    return k


def _ms_to_s(value: int) -> int:
    return max(1, round(value / 1000))


# the port range bounds churned connections, held ones per source, and what one server port holds
PORT_LIMITS = ("ephemeral_ports", "ports_per_source", "one_port_connections")

RULES: dict[str, Rule] = {r.setting: r for r in (
    Rule("Tcpip.MaxUserPort", 5000, 65534, PORT_LIMITS, "exact",
         "Linux hands out the same 1025..MaxUserPort range, so the count of connects to one "
         "destination matches. Linux pools ports per destination ip:port and fails connect() "
         "with EADDRNOTAVAIL where Winsock gives WSAENOBUFS 10055.",
         _port_range, "net.ipv4.ip_local_port_range = 1025 <value>"),
    Rule("Netsh.DynamicPortStart", 1025, 65280, PORT_LIMITS, "exact",
         "netsh int ipv4 set dynamicport tcp start=<value>: the first port of the range; "
         "Linux hands out the same range (pooled per destination).",
         _dynamic_ports, "net.ipv4.ip_local_port_range = <start> <start+num-1>"),
    Rule("Netsh.DynamicPortCount", 255, 64511, PORT_LIMITS, "exact",
         "netsh int ipv4 set dynamicport tcp num=<value>: the size of the range (at least 255).",
         _dynamic_ports, "net.ipv4.ip_local_port_range = <start> <start+num-1>"),
    Rule("Tcpip.TcpTimedWaitDelay", 30, 300, ("time_wait_length",), "none",
         "Linux TIME_WAIT is fixed at 60 s (TCP_TIMEWAIT_LEN) with no knob: ports come back "
         "after 60 s, not after this delay. Exhaustion counts within 60 s are unaffected.",
         _no_knob, "none (TCP_TIMEWAIT_LEN is 60 s, compiled in)"),
    Rule("Product.ListenBacklogCap", 1, 65535, ("listen_backlog", "syn_backlog"), "approximate",
         "A product limit of the edition (not a registry value), emulated by net.core.somaxconn. "
         "Linux completes cap+1 handshakes and then drops further SYNs silently (the client "
         "times out), where Windows refuses with WSAECONNREFUSED 10061.",
         _sysctl("all", "net.core.somaxconn"), "net.core.somaxconn = <value>"),
    Rule("Product.RefuseOnFullBacklog", 0, 1, ("listen_backlog", "accept_overflow"), "approximate",
         "Windows answers a connect to a full backlog with a reset (WSAECONNREFUSED). Linux has no "
         "such switch. Lab-wide, for every program of the server: a watcher reads every listener's "
         "accept queue (sock_diag) every 5 ms and puts the ports of full ones in an nft set whose "
         "SYNs get a reset; late handshakes are reset by tcp_abort_on_overflow=1. Linux counts a "
         "listener full at backlog + 1 queued, one more than Windows, and a SYN within the 5 ms "
         "reaction time is dropped and refused on its first retransmission (about 1 s later).",
         _refuse_on_full, "net.ipv4.tcp_abort_on_overflow = 1; a sock_diag watcher + nft set of full "
         "listeners' ports, reset (server)"),
    Rule("Product.InboundComputerCap", 1, 1000, ("inbound_cap", "one_port_connections"), "approximate",
         "XP counts computers with open sessions at once and refuses the next at the session layer "
         "(NT error 71, IIS 403.9). Lab-wide, for every program of the server: a computer's first "
         "SYN takes one of <value> slots (an nft set of source addresses per family, IPv4 and IPv6 "
         "counted apart) and SYNs from any other computer are reset; a watcher frees a slot 1 s "
         "after the computer's last TCP connection is gone (XP keeps file-sharing sessions up to "
         "15 min). Only TCP takes a slot.",
         _computer_cap, "nft sets of source addresses (IPv4, IPv6), size <value>, reset; a slot "
         "freed 1 s after the computer's last connection (server)"),
    Rule("Tcpip.SynAttackProtect", 0, 2, ("syn_backlog",), "approximate",
         "With protection on, Windows cuts SYN-ACK retransmissions and route-cache work once "
         "TcpMaxHalfOpen is passed; Linux answers from SYN cookies once the SYN queue is full. "
         "In both, legitimate clients still complete during a flood; off, they do not.",
         _syn_protect, "net.ipv4.tcp_syncookies = 0 (off) or 1 (on) on the server"),
    Rule("Tcpip.TcpMaxHalfOpen", 1, 65535, ("syn_backlog",), "approximate",
         "Windows' half-open threshold for SYN attack protection. Linux's tcp_max_syn_backlog "
         "bounds the SYN queue only with cookies off, at max - max/4 + 1 (the 3/4 rule), and "
         "never above the listen backlog + 1.",
         _sysctl("server", "net.ipv4.tcp_max_syn_backlog"), "net.ipv4.tcp_max_syn_backlog = <value>"),
    Rule("Product.HalfOpenOutboundCap", 1, 1000, ("outbound_half_open",), "approximate",
         "tcpip.sys of XP SP2 lets <value> outbound connects be incomplete at once and queues the "
         "rest (event 4226), for every program of the host. Lab-wide, on the server and every "
         "client: each outbound SYN and each inbound SYN-ACK and RST (not on lo) goes through an "
         "NFQUEUE (iptables: this kernel has no nft queue) to a watcher that lets <value> connects "
         "be unanswered at once and holds the rest in order. A slot frees when the answer arrives "
         "(the next SYN leaves at once), when the connect's socket is closed (seen through sock_diag "
         "within 50 ms), or 21 s after its SYN left (Windows' give-up time). Each SYN and answer "
         "costs a trip through the watcher (tens of microseconds), and a connect that waits past "
         "the kernel's tcp_syn_retries fails, where XP's queued connect would still wait.",
         _half_open_cap, "an NFQUEUE watcher: <value> connects in SYN_SENT at once, the rest wait "
         "(server and clients)"),
    Rule("Tcpip.EnableConnectionRateLimiting", 0, 1, ("outbound_half_open",), "approximate",
         "Vista SP2 / 2008 SP2: 1 turns the half-open outbound cap of 10 back on; 0 (default) "
         "leaves it off. Emulated like Product.HalfOpenOutboundCap.",
         _rate_limiting, "an NFQUEUE watcher: 10 connects in SYN_SENT at once, when 1"),
    Rule("Tcpip.TcpNumConnections", 1, 0xFFFFFE, ("connection_cap",), "approximate",
         "Windows' cap on TCP control blocks (default 0xFFFFFE, no practical cap). The lab counts "
         "live inbound connections with nft 'ct count over <value>' and resets the next; a closed "
         "connection stops counting at FIN, not after TIME_WAIT.",
         _connection_cap, "nft ct count over <value> reject with tcp reset (server input)"),
    Rule("IIS.MaxConnections", 1, 40, ("http_connection_cap",), "approximate",
         "IIS 5.1 on XP Professional serves 10 connections (at most 40) and answers the next "
         "with HTTP 403.9. The agent's HTTP server plays IIS: the connection past the cap gets "
         "403.9 and is closed.",
         _by_probe(HTTP_403_9_PAST), "the agent's HTTP server: 403.9 past <value> live connections",
         applied_by="agent"),
    Rule("HTTP.MaxConnections", 1024, 2_031_616, ("http_connection_cap",), "approximate",
         "HTTP.SYS refuses connections past MaxConnections (503, Connections_refused in "
         "httperr.log). The agent's HTTP server plays HTTP.SYS with a 503.",
         _by_probe(HTTP_503_PAST), "the agent's HTTP server: 503 past <value> live connections",
         applied_by="agent"),
    Rule("WinInet.MaxConnectionsPerServer", 1, 128, ("per_server_cap",), "approximate",
         "WinInet opens at most this many connections to one HTTP/1.1 server (2 by default) and "
         "queues further requests without an error. The agent's HTTP client pools the same way; "
         "WinInet itself is not involved.",
         _by_probe(HTTP_POOL_PER_SERVER), "the agent's HTTP client: a pool of <value>",
         applied_by="agent"),
    Rule("Tcpip.KeepAliveTime", 1000, 0xFFFFFFFE, ("keepalive",), "exact",
         "Milliseconds of idle before the first keepalive probe; Linux counts whole seconds.",
         _sysctl("all", "net.ipv4.tcp_keepalive_time", _ms_to_s), "net.ipv4.tcp_keepalive_time = <value>/1000"),
    Rule("Tcpip.KeepAliveInterval", 1000, 0xFFFFFFFE, ("keepalive",), "exact",
         "Milliseconds between unanswered keepalive probes; Linux counts whole seconds.",
         _sysctl("all", "net.ipv4.tcp_keepalive_intvl", _ms_to_s),
         "net.ipv4.tcp_keepalive_intvl = <value>/1000"),
    Rule("Tcpip.TcpMaxDataRetransmissions", 1, 255, ("keepalive",), "approximate",
         "On 2000/XP/2003 the keepalive probe count is TcpMaxDataRetransmissions (5). The lab "
         "sets tcp_keepalive_probes; Linux's data retransmissions (tcp_retries2) are left alone.",
         _sysctl("all", "net.ipv4.tcp_keepalive_probes"), "net.ipv4.tcp_keepalive_probes = <value>"),
    Rule("Product.KeepAliveProbes", 1, 255, ("keepalive",), "exact",
         "Vista and later send 10 keepalive probes, fixed (SIO_KEEPALIVE_VALS reference).",
         _sysctl("all", "net.ipv4.tcp_keepalive_probes"), "net.ipv4.tcp_keepalive_probes = <value>"),
    Rule("Tcpip.MaxHashTableSize", 64, 65536, ("tcb_hash",), "approximate",
         "The TCB hash of 2000/2003 (ignored on 2008+). The server's namespace is created from a "
         "parent with tcp_child_ehash_entries = <value> (rounded up to a power of two); a vm guest "
         "boots with thash_entries = <value>. On Linux "
         "it is no cap on connections; it quietly sets tcp_max_tw_buckets to half the buckets, "
         "which the profile's pins put back.",
         lambda v, _: _birth("server", "net.ipv4.tcp_child_ehash_entries", v),
         "net.ipv4.tcp_child_ehash_entries = <value> in the parent of the server's namespace"),
    Rule("Router.ConnectionTableSize", 1, 1_000_000, ("router_table",), "approximate",
         "A NAT router or firewall that tracks <value> connections and drops new ones past it. "
         "nf_conntrack_max is host-wide (read-only in a lab namespace), so the router counts "
         "its tracked connections with nft 'ct count over <value>' and drops the next, counting "
         "each drop in the nft counter table_full.",
         _router_table, "nft ct count over <value> drop, forward hook of the router"),
)}


def _birth(role: str, key: str, value: int) -> Knobs:
    k = Knobs()
    k.add_birth(role, key, str(value))
    return k


def rule_for(setting: str) -> Rule | None:
    """The rule for an emulated setting, or None when connlab does not know it."""
    return RULES.get(setting)


def worst(fidelities: list[str]) -> str:
    """The lowest fidelity of several (exact > approximate > none)."""
    return max(fidelities, key=FIDELITIES.index) if fidelities else "exact"
