"""A small rtnetlink encoder: the few requests a lab needs, sent as one batch per namespace.

Links are created with the interface index the caller chose (the kernel takes ``ifi_index``
on RTM_NEWLINK), so nothing is looked up afterwards. Every request asks for an ack; the
batch is sent in as few datagrams as fit and the acks are read back, the first error naming
its request. The socket is opened by a thread inside the target namespace
(:func:`nsthread.run_in`), and is bound to that namespace for its life.
"""
from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from . import nsthread

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 20, 24
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
IFF_UP = 0x1
IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_GATEWAY = 1, 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
LOOPBACK_INDEX = 1  # lo is the first device of every network namespace
CHUNK = 32 * 1024  # bytes of requests per datagram, well under the socket's send buffer
IFINFO = struct.Struct("=BxHiII")
HEADER = struct.Struct("=IHHII")


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _name(ifname: str) -> bytes:
    if not 0 < len(ifname) < 16 or "/" in ifname or "\0" in ifname:
        raise ValueError(f"not an interface name: {ifname!r}")
    return _attr(IFLA_IFNAME, ifname.encode() + b"\0")


def _ifinfo(index: int, up: bool = False) -> bytes:
    return IFINFO.pack(socket.AF_UNSPEC, 0, index, IFF_UP if up else 0, IFF_UP if up else 0)


@dataclass
class Batch:
    """Requests for one namespace, in order; ``send`` performs them all."""

    label: str
    requests: list[tuple[int, int, bytes, str]] = field(default_factory=list)  # type, flags, body, what

    def _add(self, kind: int, flags: int, body: bytes, what: str) -> None:
        self.requests.append((kind, flags, body, what))

    def bridge(self, index: int, ifname: str) -> None:
        """A bridge device, created up."""
        info = _attr(IFLA_INFO_KIND, b"bridge\0")
        self._add(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                  _ifinfo(index, up=True) + _name(ifname) + _attr(IFLA_LINKINFO, info), f"bridge {ifname}")

    def veth(self, index: int, ifname: str, master: int, peer_index: int, peer_name: str, peer_ns_fd: int) -> None:
        """A veth pair: ``ifname`` here, up and a port of bridge ``master``; its peer made directly
        in the namespace ``peer_ns_fd`` (down until that namespace's batch sets it up)."""
        peer = _ifinfo(peer_index) + _name(peer_name) + _attr(IFLA_NET_NS_FD, struct.pack("=I", peer_ns_fd))
        info = _attr(IFLA_INFO_KIND, b"veth\0") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer))
        self._add(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                  _ifinfo(index, up=True) + _name(ifname) + _attr(IFLA_MASTER, struct.pack("=I", master))
                  + _attr(IFLA_LINKINFO, info), f"veth {ifname} / {peer_name}")

    def up(self, index: int, what: str) -> None:
        """Set an existing link up."""
        self._add(RTM_NEWLINK, 0, _ifinfo(index, up=True), f"link {what} up")

    def enslave(self, ifname: str, master: int) -> None:
        """Make the existing link ``ifname`` (found by name) a port of bridge ``master``, up."""
        self._add(RTM_NEWLINK, 0, _ifinfo(0, up=True) + _name(ifname) + _attr(IFLA_MASTER, struct.pack("=I", master)),
                  f"link {ifname} master {master} up")

    def address(self, index: int, address: str, prefixlen: int) -> None:
        """An IPv4 address on link ``index``."""
        packed = IPv4Address(address).packed
        body = struct.pack("=BBBBI", socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
        self._add(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL,
                  body + _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed), f"address {address}/{prefixlen}")

    def route(self, destination: str, gateway: str) -> None:
        """A route to ``destination`` (CIDR) via ``gateway``."""
        net = IPv4Network(destination)
        body = struct.pack("=BBBBBBBBI", socket.AF_INET, net.prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT,
                           RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
        attrs = _attr(RTA_DST, net.network_address.packed) if net.prefixlen else b""
        self._add(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL,
                  body + attrs + _attr(RTA_GATEWAY, IPv4Address(gateway).packed), f"route {destination} via {gateway}")

    def send(self, ns_fd: int) -> None:
        """Perform every request inside ``ns_fd``'s namespace; RuntimeError naming the first refused."""
        if not self.requests:
            return
        sock = nsthread.run_in(ns_fd, lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE))
        with sock:
            sock.bind((0, 0))
            _exchange(sock, self.requests, self.label)


def _exchange(sock: socket.socket, requests: list[tuple[int, int, bytes, str]], label: str) -> None:
    chunk, pending = b"", dict[int, str]()
    for seq, (kind, flags, body, what) in enumerate(requests, 1):
        message = HEADER.pack(HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0) + body
        if len(chunk) + len(message) > CHUNK:
            sock.send(chunk)
            _read_acks(sock, pending, label)
            chunk = b""
        chunk += message
        pending[seq] = what
    sock.send(chunk)
    _read_acks(sock, pending, label)


def _read_acks(sock: socket.socket, pending: dict[int, str], label: str) -> None:
    """Read acks until every pending request is answered; the first error raises."""
    while pending:
        data = sock.recv(1 << 20)
        offset = 0
        while offset + HEADER.size <= len(data):
            length, kind, _, seq, _ = HEADER.unpack_from(data, offset)
            if kind == NLMSG_ERROR:
                (error,) = struct.unpack_from("=i", data, offset + HEADER.size)
                what = pending.pop(seq, "?")
                if error:
                    raise RuntimeError(f"{label}: netlink {what}: {os.strerror(-error)}")
            offset += max(length + (-length % 4), HEADER.size)
