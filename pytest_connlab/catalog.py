"""The limits connlab knows, each in a sentence."""
from __future__ import annotations

LIMITS: dict[str, str] = {
    "ephemeral_ports": "How many connections one client IP can open to one server ip:port "
                       "before the ephemeral port pool (held by TIME_WAIT) runs out.",
    "listen_backlog": "How many handshakes a listener that never calls accept() completes "
                      "before further connection attempts fail.",
    "inbound_cap": "How many distinct client computers a server serves at once "
                   "before it refuses the next one.",
}


# Linux knobs each limit depends on: a test that changes one of them no longer gets the
# profile's documented expectation for that limit, but the one its own settings imply.
LIMIT_KNOBS: dict[str, frozenset[str]] = {
    "ephemeral_ports": frozenset({"net.ipv4.ip_local_port_range", "net.ipv4.ip_local_reserved_ports",
                                  "net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_max_tw_buckets"}),
    "listen_backlog": frozenset({"net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog",
                                 "net.ipv4.tcp_syncookies", "net.ipv4.tcp_abort_on_overflow"}),
    "inbound_cap": frozenset(),
}


def limits_touched_by(sysctl_key: str) -> set[str]:
    """The limits whose outcome ``sysctl_key`` bears on."""
    return {limit for limit, knobs in LIMIT_KNOBS.items() if sysctl_key in knobs}

