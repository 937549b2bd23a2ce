"""One outbound TCP connection, with the source-port policy a limit needs."""
from __future__ import annotations

import socket

# Linux: IP_BIND_ADDRESS_NO_PORT defers the port choice to connect(), so the
# ephemeral pool is per destination (4-tuple) even when a source IP is bound.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)

PORT_POOLS = ("per-destination", "shared")


def open_connection(target: tuple[str, int], source: str | None, timeout: float,
                    port_pool: str = "per-destination") -> socket.socket:
    """Connect to ``target`` from ``source``; raise OSError (TimeoutError for a silent drop).

    ``port_pool="shared"`` binds port 0 before connect, so one pool serves every
    destination and exhaustion shows as EADDRINUSE at bind().
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if port_pool == "shared":
            sock.bind((source or "0.0.0.0", 0))
        elif source:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source, 0))
        sock.settimeout(timeout)
        sock.connect(target)
        return sock
    except BaseException:
        sock.close()
        raise
