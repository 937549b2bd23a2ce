"""TCP sockets of this namespace through sock_diag (NETLINK_SOCK_DIAG), IPv4 and IPv6.

Cheaper than /proc/net/tcp and filtered by state in the kernel: a dump of LISTEN sockets
only costs the same with 100,000 connections open as with none.
"""
from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterator

from .netlink import NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDR

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
# inet_diag_req_v2: family, protocol, ext, pad, states; then inet_diag_sockid (48 bytes, zero: any)
DIAG_REQ = struct.Struct("=BBBBI48x")
# inet_diag_msg: family, state, timer, retrans (4 bytes); sockid: sport, dport (big-endian),
# src[16], dst[16], if, cookie[2]; then expires, rqueue, wqueue, uid, inode
SPORT_AT, DST_AT, QUEUES_AT = 4, 24, 4 + 48 + 4
TCP_LISTEN, TCP_TIME_WAIT, TCP_CLOSE = 10, 6, 7
LISTEN_ONLY = 1 << TCP_LISTEN
CONNECTED = sum(1 << s for s in range(1, 13)) & ~(LISTEN_ONLY | 1 << TCP_TIME_WAIT | 1 << TCP_CLOSE)


def dump(states: int) -> Iterator[tuple[int, bytes]]:
    """(address family, inet_diag_msg) of every TCP socket whose state is in the ``states`` mask."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), start=1):
            body = DIAG_REQ.pack(family, socket.IPPROTO_TCP, 0, 0, states)
            nl.send(NLMSG_HDR.pack(NLMSG_HDR.size + len(body), SOCK_DIAG_BY_FAMILY,
                                   NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body)
            done = False
            while not done:
                data = nl.recv(1 << 20)
                offset = 0
                while offset + NLMSG_HDR.size <= len(data):
                    length, kind, _, _, _ = NLMSG_HDR.unpack_from(data, offset)
                    if kind in (NLMSG_DONE, NLMSG_ERROR) or length < NLMSG_HDR.size:
                        done = True
                        break
                    yield family, data[offset + NLMSG_HDR.size: offset + length]
                    offset += (length + 3) & ~3


def listeners() -> list[tuple[int, int, int]]:
    """Every TCP listener: (port, accept queue, max backlog)."""
    out = []
    for _, msg in dump(LISTEN_ONLY):
        queue, backlog = struct.unpack_from("=II", msg, QUEUES_AT)
        out.append((int(struct.unpack_from(">H", msg, SPORT_AT)[0]), queue, backlog))
    return out


def peers() -> set[str]:
    """The remote addresses of every TCP connection that is not closed or in TIME_WAIT."""
    out = set()
    for family, msg in dump(CONNECTED):
        raw = msg[DST_AT:DST_AT + (4 if family == socket.AF_INET else 16)]
        addr = ipaddress.ip_address(raw)
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        out.add(str(addr))
    return out


TCP_SYN_SENT = 2
SRC_AT = 8
V4_MAPPED = b"\0" * 10 + b"\xff\xff"


def _address(raw: bytes) -> bytes:
    """4 bytes for IPv4 (also an IPv4-mapped IPv6 address), 16 for IPv6."""
    return raw[12:] if raw[:12] == V4_MAPPED else raw


def syn_sent() -> set[tuple[bytes, int, bytes, int]]:
    """(source, source port, destination, destination port) of every connect still in SYN_SENT."""
    out = set()
    for family, msg in dump(1 << TCP_SYN_SENT):
        size = 4 if family == socket.AF_INET else 16
        sport, dport = struct.unpack_from(">HH", msg, SPORT_AT)
        out.add((_address(msg[SRC_AT:SRC_AT + size]), sport, _address(msg[DST_AT:DST_AT + size]), dport))
    return out
