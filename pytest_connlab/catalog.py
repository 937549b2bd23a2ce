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


def describe(limit: str) -> str:
    """The sentence for ``limit``."""
    return LIMITS[limit]
