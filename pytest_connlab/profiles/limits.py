"""The limits connlab knows: each in a sentence, and the Linux knobs its outcome depends on.

One entry per limit. A test whose settings change one of a limit's knobs no longer gets
the profile's documented expectation for that limit, but the one its own settings imply.
``tests/test_catalog.py`` checks that every limit here has its probe, facade attribute,
expectations and labs test, and names the file that is missing.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """One limit: its name (the probe's, the marker's, the profile's ``expect:`` key), what it is,
    and the Linux knobs it depends on."""

    name: str
    sentence: str
    knobs: frozenset[str] = frozenset()
    played_by: str = ""  # a limit of a product that the agent implements, not the kernel: which part
    hosts: tuple[int, int, bool] = (1, 1, False)  # the lab it needs: clients, IPs per client, a router
    takes_target: bool = False  # its probe can measure your own server (``target=``)
    needs_own_kernel: bool = False  # measurable only where a host's kernel and RAM are its own (vm)
    pressure_is_the_limit: bool = False  # TCP memory pressure in the lab is what it measures, not a disturbance


CATALOG: dict[str, Limit] = {limit.name: limit for limit in (
    Limit("ephemeral_ports",
          "How many connections one client IP can open to one server ip:port before the ephemeral "
          "port pool (held by TIME_WAIT) runs out.",
          frozenset({"net.ipv4.ip_local_port_range", "net.ipv4.ip_local_reserved_ports",
                     "net.ipv4.tcp_max_tw_buckets", "net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_tw_reuse_delay"}),
          takes_target=True),
    Limit("listen_backlog",
          "How many handshakes a listener that never calls accept() completes before further "
          "connection attempts fail.",
          frozenset({"net.core.somaxconn", "net.ipv4.tcp_abort_on_overflow", "net.ipv4.tcp_max_syn_backlog",
                     "net.ipv4.tcp_syncookies"}), hosts=(1, 2, False), takes_target=True),
    Limit("inbound_cap",
          "How many distinct client computers a server serves at once before it refuses the next "
          "one.", hosts=(12, 1, False), takes_target=True),
    Limit("syn_backlog",
          "How many half-open (SYN_RECV) connections a listener keeps for clients whose final ACK "
          "never comes, and whether legitimate clients still get in.",
          frozenset({"net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_syncookies"}),
          hosts=(2, 1, False)),
    Limit("accept_overflow",
          "How many late handshakes (final ACK arriving while the accept queue is full) are reset "
          "rather than silently dropped.",
          frozenset({"net.core.somaxconn", "net.ipv4.tcp_abort_on_overflow"}), hosts=(2, 1, False)),
    Limit("outbound_half_open",
          "How many outbound connects may be incomplete (SYN sent, no answer) at once before "
          "further SYNs are held back."),
    Limit("time_wait_length",
          "How many seconds a closed connection stays in TIME_WAIT."),
    Limit("time_wait_buckets",
          "How many TIME_WAIT entries a host keeps before it closes connections without one.",
          frozenset({"net.ipv4.ip_local_port_range", "net.ipv4.tcp_max_tw_buckets", "net.ipv4.tcp_tw_reuse"})),
    Limit("connection_cap",
          "How many live TCP connections a server admits before it refuses the next.", takes_target=True),
    Limit("http_connection_cap",
          "How many HTTP clients a web server serves at once before it answers with an error "
          "(403.9, 503).",
          played_by="the agent's HTTP server (it answers 403.9 or 503 past the cap, as IIS and HTTP.SYS do)"),
    Limit("router_table",
          "How many connections a router or firewall in front of the server tracks before it drops "
          "new ones.", hosts=(2, 1, True), takes_target=True),
    Limit("keepalive",
          "How many unanswered keepalive probes a connection sends before it is declared dead.",
          frozenset({"net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_keepalive_time"}),
          takes_target=True),
    Limit("fd_limit",
          "How many connections a server process accepts before it runs out of file descriptors "
          "(EMFILE).",
          frozenset({"rlimit.nofile"})),
    Limit("thread_pool",
          "How many connections a thread-per-connection server serves at once.",
          played_by="the agent's thread-per-connection server (a pool of the probe's thread count)"),
    Limit("per_server_cap",
          "How many connections an HTTP client opens to one server at once.",
          played_by="the agent's HTTP client (it pools connections per server, as WinInet does)"),
    Limit("tcb_hash",
          "How many established connections a host holds with a small TCB hash table.",
          frozenset({"net.ipv4.tcp_child_ehash_entries"})),
    Limit("ports_per_source",
          "How many connections one client IP holds open at once to one server ip:port (its "
          "ephemeral port range).",
          frozenset({"net.ipv4.ip_local_port_range", "net.ipv4.ip_local_reserved_ports"}), hosts=(2, 10, False)),
    Limit("one_port_connections",
          'How many connections one listening port holds at once from many client IPs (the "64K '
          'ports" myth).',
          frozenset({"net.ipv4.ip_local_port_range", "net.ipv4.ip_local_reserved_ports"}), hosts=(2, 10, False)),
    Limit("memory_per_connection",
          "How many idle connections a server with N MB of RAM holds before memory ends it, and what "
          "each costs in kernel memory.", hosts=(2, 4, False), needs_own_kernel=True, pressure_is_the_limit=True),
    Limit("push_fanout",
          "How many long-lived HTTP clients (server push) receive every update the server pushes."),
)}

LIMITS: dict[str, str] = {name: limit.sentence for name, limit in CATALOG.items()}


def limits_touched_by(sysctl_key: str) -> set[str]:
    """The limits whose outcome ``sysctl_key`` bears on."""
    return {name for name, limit in CATALOG.items() if sysctl_key in limit.knobs}
