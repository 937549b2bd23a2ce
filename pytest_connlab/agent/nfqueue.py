"""A netfilter queue (NFQUEUE) through nfnetlink, stdlib only: packets in, verdicts out.

The kernel here has no nft ``queue`` statement (CONFIG_NFT_QUEUE unset) but has the
xtables NFQUEUE target, so a rule made with iptables sends packets to a queue number
that this socket binds. Only the first ``copy_range`` bytes of each packet are copied
(headers are all a role needs).
"""
from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

from .netlink import NFGEN, NLATTR, NLM_F_ACK, NLM_F_REQUEST, NLMSG_ERROR, NLMSG_HDR, attr

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
MSG_PACKET, MSG_VERDICT, MSG_CONFIG = 0, 1, 2
CFG_CMD, CFG_PARAMS, CFG_QUEUE_MAXLEN, CFG_MASK, CFG_FLAGS = 1, 2, 3, 4, 5
CMD_BIND = 1
COPY_PACKET = 2
F_FAIL_OPEN = 0x1  # a full queue lets packets pass instead of dropping them
ATTR_PACKET_HDR, ATTR_VERDICT_HDR, ATTR_PAYLOAD = 1, 2, 10
NF_DROP, NF_ACCEPT = 0, 1


class Queue:
    """One bound NFQUEUE number of this namespace."""

    def __init__(self, number: int, copy_range: int = 80, max_len: int = 65536) -> None:
        self.number = number
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE (root)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self._seq = 0
        self._configure([attr(CFG_CMD, struct.pack("=BBH", CMD_BIND, 0, 0))])
        self._configure([attr(CFG_PARAMS, struct.pack(">IB", copy_range, COPY_PACKET)),
                         attr(CFG_QUEUE_MAXLEN, struct.pack(">I", max_len)),
                         attr(CFG_MASK, struct.pack(">I", F_FAIL_OPEN)),
                         attr(CFG_FLAGS, struct.pack(">I", F_FAIL_OPEN))])

    def _message(self, kind: int, attrs: list[bytes], flags: int) -> bytes:
        self._seq += 1
        body = NFGEN.pack(socket.AF_UNSPEC, 0, socket.htons(self.number)) + b"".join(attrs)
        return NLMSG_HDR.pack(NLMSG_HDR.size + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags,
                              self._seq, 0) + body

    def _configure(self, attrs: list[bytes]) -> None:
        """Send a config message and raise OSError when the kernel's ack carries an error."""
        self.sock.send(self._message(MSG_CONFIG, attrs, NLM_F_REQUEST | NLM_F_ACK))
        while True:
            data = self.sock.recv(65536)
            _, kind, _, seq, _ = NLMSG_HDR.unpack_from(data)
            if kind == NLMSG_ERROR and seq == self._seq:
                error = -struct.unpack_from("=i", data, NLMSG_HDR.size)[0]
                if error:
                    raise OSError(error, f"nfqueue {self.number}: config refused")
                return

    def fileno(self) -> int:
        return self.sock.fileno()

    def packets(self) -> Iterator[tuple[int, bytes]]:
        """(packet id, copied bytes) of each packet in one read (call when readable)."""
        data = self.sock.recv(1 << 20)
        offset = 0
        while offset + NLMSG_HDR.size <= len(data):
            length, kind, _, _, _ = NLMSG_HDR.unpack_from(data, offset)
            if length < NLMSG_HDR.size:
                break
            if kind == (NFNL_SUBSYS_QUEUE << 8) | MSG_PACKET:
                packet_id, payload = None, b""
                at = offset + NLMSG_HDR.size + NFGEN.size
                while at + NLATTR.size <= offset + length:
                    size, attr = NLATTR.unpack_from(data, at)
                    if size < NLATTR.size:
                        break
                    attr &= 0x3FFF
                    if attr == ATTR_PACKET_HDR:
                        packet_id = struct.unpack_from(">I", data, at + NLATTR.size)[0]
                    elif attr == ATTR_PAYLOAD:
                        payload = data[at + NLATTR.size: at + size]
                    at += (size + 3) & ~3
                if packet_id is not None:
                    yield packet_id, payload
            offset += (length + 3) & ~3

    def verdict(self, packet_id: int, accept: bool) -> None:
        body = attr(ATTR_VERDICT_HDR, struct.pack(">II", NF_ACCEPT if accept else NF_DROP, packet_id))
        self.sock.send(self._message(MSG_VERDICT, [body], NLM_F_REQUEST))

    def close(self) -> None:
        self.sock.close()


def tcp_key(packet: bytes) -> tuple[tuple[bytes, int, bytes, int] | None, int]:
    """((source address, source port, destination address, destination port), TCP flags) of a
    TCP packet (IPv4, or IPv6 without extension headers); (None, 0) for anything else."""
    if len(packet) >= 20 and packet[0] >> 4 == 4 and packet[9] == socket.IPPROTO_TCP:
        at = (packet[0] & 0xF) * 4
        if len(packet) >= at + 14:
            sport, dport = struct.unpack_from(">HH", packet, at)
            return (packet[12:16], sport, packet[16:20], dport), packet[at + 13]
    if len(packet) >= 54 and packet[0] >> 4 == 6 and packet[6] == socket.IPPROTO_TCP:
        sport, dport = struct.unpack_from(">HH", packet, 40)
        return (packet[8:24], sport, packet[24:40], dport), packet[53]
    return None, 0
