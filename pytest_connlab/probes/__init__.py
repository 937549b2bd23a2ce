"""Probes: each drives load on a lab through the agent and returns an Observation."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..report.observation import Observation
from . import (
    accept_overflow,
    caps,
    ephemeral_ports,
    hold,
    inbound_cap,
    keepalive,
    listen_backlog,
    outbound_half_open,
    port_myth,
    push,
    servers,
    syn_backlog,
    tcb_hash,
    time_wait,
)

if TYPE_CHECKING:
    from ..lab.lab import Lab
    from ..lab.target import Target


class Probes:
    """``lab.probe.<limit>(...)``: run one probe on this lab."""

    def __init__(self, lab: Lab) -> None:
        self._lab = lab

    def hold(self, target: Target | None = None, connections: int = 10_000, for_s: float = 5.0,
             **kwargs: Any) -> hold.HoldResult:
        """Ramp to ``connections`` held connections (to ``target``, or the agent's hold server), hold
        them ``for_s`` seconds, count them server-side; rate, errors, memory per connection."""
        return hold.run(self._lab, target, connections, for_s, **kwargs)

    def ports_per_source(self, **kwargs: Any) -> Observation:
        """Hold connections from one client IP to one server port until its port range runs out."""
        return port_myth.per_source(self._lab, **kwargs)

    def one_port_connections(self, **kwargs: Any) -> Observation:
        """Hold more than 65,536 connections from many client IPs to one listening port."""
        return port_myth.one_port(self._lab, **kwargs)

    def push_fanout(self, **kwargs: Any) -> Observation:
        """Hold event-stream clients, push updates to all, count who received every one."""
        return push.run(self._lab, **kwargs)

    def ephemeral_ports(self, **kwargs: Any) -> Observation:
        """Connect+close from one client IP to one server ip:port until connect fails."""
        return ephemeral_ports.run(self._lab, **kwargs)

    def listen_backlog(self, **kwargs: Any) -> Observation:
        """Count handshakes a never-accepting listener completes, and how the next ends."""
        return listen_backlog.run(self._lab, **kwargs)

    def inbound_cap(self, **kwargs: Any) -> Observation:
        """Count the client computers served at once."""
        return inbound_cap.run(self._lab, **kwargs)

    def syn_backlog(self, **kwargs: Any) -> Observation:
        """SYN flood with no final ACKs: count SYN_RECV; then see if legitimate clients get in."""
        return syn_backlog.run(self._lab, **kwargs)

    def accept_overflow(self, **kwargs: Any) -> Observation:
        """Count late handshakes reset (not dropped) when the accept queue is full."""
        return accept_overflow.run(self._lab, **kwargs)

    def outbound_half_open(self, **kwargs: Any) -> Observation:
        """Count SYNs that leave at once for a black hole; time a live connect meanwhile."""
        return outbound_half_open.run(self._lab, **kwargs)

    def time_wait_length(self, **kwargs: Any) -> Observation:
        """Read (or with watch=True, outlive) the TIME_WAIT timer of closed connections."""
        return time_wait.length(self._lab, **kwargs)

    def time_wait_buckets(self, **kwargs: Any) -> Observation:
        """Churn past tcp_max_tw_buckets and count the TIME_WAIT entries kept."""
        return time_wait.buckets(self._lab, **kwargs)

    def connection_cap(self, **kwargs: Any) -> Observation:
        """Hold connections to the server until one is refused."""
        return caps.connection_cap(self._lab, **kwargs)

    def http_connection_cap(self, **kwargs: Any) -> Observation:
        """Hold HTTP clients and count those answered 200 (not 403.9 / 503)."""
        return caps.http_connection_cap(self._lab, **kwargs)

    def router_table(self, **kwargs: Any) -> Observation:
        """Hold connections through the router until its connection table is full."""
        return caps.router_table(self._lab, **kwargs)

    def keepalive(self, **kwargs: Any) -> Observation:
        """Count keepalive probes until a vanished peer is declared dead."""
        return keepalive.run(self._lab, **kwargs)

    def fd_limit(self, **kwargs: Any) -> Observation:
        """Count connections a server accepts before EMFILE."""
        return servers.fd_limit(self._lab, **kwargs)

    def thread_pool(self, **kwargs: Any) -> Observation:
        """Count connections a thread-per-connection server answers."""
        return servers.thread_pool(self._lab, **kwargs)

    def per_server_cap(self, **kwargs: Any) -> Observation:
        """Count the connections a pooling HTTP client opens to one server."""
        return servers.per_server_cap(self._lab, **kwargs)

    def tcb_hash(self, **kwargs: Any) -> Observation:
        """Hold more connections than TCB hash buckets and count them."""
        return tcb_hash.run(self._lab, **kwargs)
