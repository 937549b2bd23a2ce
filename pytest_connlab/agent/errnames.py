"""Errno numbers to names, for JSON results."""
from __future__ import annotations

import errno

from .proto import ErrorFields


def name_of(number: int) -> str:
    """The symbolic name of an errno value (``EADDRNOTAVAIL``), or ``E<number>``."""
    return errno.errorcode.get(number, f"E{number}")


def error_fields(exc: OSError) -> ErrorFields:
    """The errno of an OSError as ``{"errno": 99, "name": "EADDRNOTAVAIL"}``; timeouts as ETIMEDOUT."""
    number = exc.errno if exc.errno is not None else errno.ETIMEDOUT
    return {"errno": number, "name": name_of(number), "message": str(exc)}
