"""The limits connlab knows, each in a sentence, and the Linux knobs each depends on."""
from __future__ import annotations

LIMITS: dict[str, str] = {
    "ephemeral_ports": "How many connections one client IP can open to one server ip:port "
                       "before the ephemeral port pool (held by TIME_WAIT) runs out.",
    "listen_backlog": "How many handshakes a listener that never calls accept() completes "
                      "before further connection attempts fail.",
    "inbound_cap": "How many distinct client computers a server serves at once "
                   "before it refuses the next one.",
    "syn_backlog": "How many half-open (SYN_RECV) connections a listener keeps for clients whose "
                   "final ACK never comes, and whether legitimate clients still get in.",
    "accept_overflow": "How many late handshakes (final ACK arriving while the accept queue is full) "
                       "are reset rather than silently dropped.",
    "outbound_half_open": "How many outbound connects may be incomplete (SYN sent, no answer) at once "
                          "before further SYNs are held back.",
    "time_wait_length": "How many seconds a closed connection stays in TIME_WAIT.",
    "time_wait_buckets": "How many TIME_WAIT entries a host keeps before it closes connections "
                         "without one.",
    "connection_cap": "How many live TCP connections a server admits before it refuses the next.",
    "http_connection_cap": "How many HTTP clients a web server serves at once before it answers "
                           "with an error (403.9, 503).",
    "router_table": "How many connections a router or firewall in front of the server tracks "
                    "before it drops new ones.",
    "keepalive": "How many unanswered keepalive probes a connection sends before it is declared dead.",
    "fd_limit": "How many connections a server process accepts before it runs out of file "
                "descriptors (EMFILE).",
    "thread_pool": "How many connections a thread-per-connection server serves at once.",
    "per_server_cap": "How many connections an HTTP client opens to one server at once.",
    "tcb_hash": "How many established connections a host holds with a small TCB hash table.",
    "ports_per_source": "How many connections one client IP holds open at once to one server ip:port "
                        "(its ephemeral port range).",
    "one_port_connections": "How many connections one listening port holds at once from many client "
                            "IPs (the \"64K ports\" myth).",
    "push_fanout": "How many long-lived HTTP clients (server push) receive every update the server pushes.",
}


# Linux knobs each limit depends on: a test that changes one of them no longer gets the
# profile's documented expectation for that limit, but the one its own settings imply.
LIMIT_KNOBS: dict[str, frozenset[str]] = {
    "ephemeral_ports": frozenset({"net.ipv4.ip_local_port_range", "net.ipv4.ip_local_reserved_ports",
                                  "net.ipv4.tcp_tw_reuse_delay",
                                  "net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_max_tw_buckets"}),
    "listen_backlog": frozenset({"net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog",
                                 "net.ipv4.tcp_syncookies", "net.ipv4.tcp_abort_on_overflow"}),
    "inbound_cap": frozenset(),
    "syn_backlog": frozenset({"net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog",
                              "net.ipv4.tcp_syncookies"}),
    "accept_overflow": frozenset({"net.ipv4.tcp_abort_on_overflow", "net.core.somaxconn"}),
    "outbound_half_open": frozenset(),
    "time_wait_length": frozenset(),
    "time_wait_buckets": frozenset({"net.ipv4.tcp_max_tw_buckets", "net.ipv4.ip_local_port_range",
                                    "net.ipv4.tcp_tw_reuse"}),
    "connection_cap": frozenset(),
    "http_connection_cap": frozenset(),
    "router_table": frozenset(),
    "keepalive": frozenset({"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_keepalive_intvl",
                            "net.ipv4.tcp_keepalive_probes"}),
    "fd_limit": frozenset({"rlimit.nofile"}),
    "thread_pool": frozenset(),
    "per_server_cap": frozenset(),
    "tcb_hash": frozenset({"net.ipv4.tcp_child_ehash_entries"}),
    "ports_per_source": frozenset({"net.ipv4.ip_local_port_range", "net.ipv4.ip_local_reserved_ports"}),
    "one_port_connections": frozenset({"net.ipv4.ip_local_port_range",
                                       "net.ipv4.ip_local_reserved_ports"}),
    "push_fanout": frozenset(),
}


def limits_touched_by(sysctl_key: str) -> set[str]:
    """The limits whose outcome ``sysctl_key`` bears on."""
    return {limit for limit, knobs in LIMIT_KNOBS.items() if sysctl_key in knobs}
