"""The addresses in an nftables set, read through nfnetlink (stdlib only, no process started).

One NFT_MSG_GETSETELEM dump per read: what ``nft -j list set inet <table> <set>`` prints, at
the cost of a netlink round trip instead of a fork and exec of nft on every poll.
"""
from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterator

from .netlink import NFGEN, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDR, attr, attrs

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_GETSETELEM = 13
NFPROTO_INET = 1
LIST_TABLE, LIST_SET, LIST_ELEMENTS = 1, 2, 3  # NFTA_SET_ELEM_LIST_*
LIST_ELEM = 1  # NFTA_LIST_ELEM
ELEM_KEY = 1  # NFTA_SET_ELEM_KEY
DATA_VALUE = 1  # NFTA_DATA_VALUE


def _first(data: bytes, kind: int) -> bytes | None:
    return next((payload for k, payload in attrs(data) if k == kind), None)


def _keys(message: bytes) -> Iterator[bytes]:
    """The raw key of each element in one NEWSETELEM message's attributes."""
    for kind, elements in attrs(message):
        if kind != LIST_ELEMENTS:
            continue
        for elem_kind, element in attrs(elements):
            key = _first(element, ELEM_KEY) if elem_kind == LIST_ELEM else None
            value = _first(key, DATA_VALUE) if key is not None else None
            if value is not None:
                yield value


def _request(table: str, set_name: str) -> bytes:
    body = (NFGEN.pack(NFPROTO_INET, 0, 0) + attr(LIST_TABLE, table.encode() + b"\0")
            + attr(LIST_SET, set_name.encode() + b"\0"))
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(body), (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETSETELEM,
                          NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + body


def raw_elements(table: str, set_name: str) -> list[bytes]:
    """The raw keys of ``inet table set_name``; OSError (ENOENT) when there is no such set."""
    keys: list[bytes] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as nl:
        nl.send(_request(table, set_name))
        while True:
            data = nl.recv(1 << 20)
            offset = 0
            while offset + NLMSG_HDR.size <= len(data):
                length, kind, _, _, _ = NLMSG_HDR.unpack_from(data, offset)
                if length < NLMSG_HDR.size or kind == NLMSG_DONE:
                    return keys
                if kind == NLMSG_ERROR:
                    error = -struct.unpack_from("=i", data, offset + NLMSG_HDR.size)[0]
                    if error:
                        raise OSError(error, f"nft set inet {table} {set_name}: cannot be listed")
                    return keys
                keys.extend(_keys(data[offset + NLMSG_HDR.size + NFGEN.size: offset + length]))
                offset += (length + 3) & ~3


def addresses(table: str, set_name: str) -> set[str]:
    """The IPv4 and IPv6 addresses in ``inet table set_name`` (empty when it cannot be listed)."""
    try:
        keys = raw_elements(table, set_name)
    except OSError:
        return set()
    return {str(ipaddress.ip_address(key)) for key in keys if len(key) in (4, 16)}
