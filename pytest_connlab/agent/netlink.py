"""What every netlink conversation of the agent shares: the header, attributes, flags (stdlib only)."""
from __future__ import annotations

import struct
from collections.abc import Iterator

NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_TYPE_MASK = 0x3FFF  # an attribute's type without the nested and byte-order flags
NLMSG_HDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
NFGEN = struct.Struct("=BBH")  # nfnetlink: family, version, resource id (big-endian)
NLATTR = struct.Struct("=HH")  # length, type


def attr(kind: int, data: bytes) -> bytes:
    """One attribute, padded to 4 bytes."""
    length = NLATTR.size + len(data)
    return NLATTR.pack(length, kind) + data + b"\0" * (-length % 4)


def attrs(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of each attribute in ``data``."""
    offset = 0
    while offset + NLATTR.size <= len(data):
        length, kind = NLATTR.unpack_from(data, offset)
        if length < NLATTR.size:
            return
        yield kind & NLA_TYPE_MASK, data[offset + NLATTR.size: offset + length]
        offset += (length + 3) & ~3
