"""Linux errno names and the Winsock error a Windows program sees for the same event.

The mapping is by meaning, not by number (LIMITS.md pitfall 6): running out of
ephemeral ports is EADDRNOTAVAIL from Linux connect() and WSAENOBUFS from Winsock.
"""
from __future__ import annotations

import errno
import re

WINSOCK_EQUIVALENT: dict[str, tuple[str, int]] = {
    "EADDRNOTAVAIL": ("WSAENOBUFS", 10055),
    "ENOBUFS": ("WSAENOBUFS", 10055),
    "EADDRINUSE": ("WSAEADDRINUSE", 10048),
    "ECONNREFUSED": ("WSAECONNREFUSED", 10061),
    "ETIMEDOUT": ("WSAETIMEDOUT", 10060),
    "ECONNRESET": ("WSAECONNRESET", 10054),
    "EMFILE": ("WSAEMFILE", 10024),
    "ENETUNREACH": ("WSAENETUNREACH", 10051),
    "EHOSTUNREACH": ("WSAEHOSTUNREACH", 10065),
}

WINSOCK_NAMES = {name for name, _ in WINSOCK_EQUIVALENT.values()}


def winsock_for(errno_name: str | None) -> str | None:
    """``"EADDRNOTAVAIL"`` -> ``"WSAENOBUFS 10055"``; None when there is no equivalent."""
    if errno_name is None or errno_name not in WINSOCK_EQUIVALENT:
        return None
    name, code = WINSOCK_EQUIVALENT[errno_name]
    return f"{name} {code}"


def linux_names_for(error_name: str) -> set[str]:
    """Linux errno names that stand for ``error_name`` (itself a Linux or a Winsock name)."""
    if error_name in errno.errorcode.values() or HTTP_ERROR.fullmatch(error_name):
        return {error_name}
    return {lin for lin, (wsa, _) in WINSOCK_EQUIVALENT.items() if wsa == error_name}


HTTP_ERROR = re.compile(r"HTTP [45]\d\d(\.\d+)?")  # an application's answer: "HTTP 403.9", "HTTP 503"


def is_known_error_name(name: str) -> bool:
    """True for a Linux errno name, a Winsock name this module maps, or an HTTP error status."""
    return name in errno.errorcode.values() or name in WINSOCK_NAMES or bool(HTTP_ERROR.fullmatch(name))
