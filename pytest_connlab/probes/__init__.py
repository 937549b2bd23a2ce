"""Probes: each drives load on a lab through the agent and returns an Observation.

``lab.probe.<limit>(...)`` runs one; each attribute is the probe function itself, bound
to the lab, so ``help(lab.probe.listen_backlog)`` and IDEs show its real parameters.
"""
from __future__ import annotations

import types
from collections.abc import Callable
from functools import cached_property
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from ..lab.lab import Lab
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

P = ParamSpec("P")
R = TypeVar("R")


class _Bound(Generic[P, R]):
    """A probe function ``f(lab, ...)`` seen through ``lab.probe`` as ``f(...)`` bound to the lab."""

    def __init__(self, func: Callable[..., R]) -> None:
        self.func = func
        self.__doc__ = func.__doc__

    @overload
    def __get__(self, probes: None, owner: type) -> _Bound[P, R]: ...
    @overload
    def __get__(self, probes: Probes, owner: type) -> Callable[P, R]: ...
    def __get__(self, probes: Probes | None, owner: type) -> Any:
        return self if probes is None else types.MethodType(self.func, probes.lab)


def _probe(func: Callable[Concatenate[Lab, P], R]) -> _Bound[P, R]:
    return _Bound(func)


class Probes:
    """``lab.probe.<limit>(...)``: run one probe on this lab."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
    hold = _probe(hold.run)
    ports_per_source = _probe(port_myth.per_source)
    one_port_connections = _probe(port_myth.one_port)
    push_fanout = _probe(push.run)
    ephemeral_ports = _probe(ephemeral_ports.run)
    listen_backlog = _probe(listen_backlog.run)
    inbound_cap = _probe(inbound_cap.run)
    syn_backlog = _probe(syn_backlog.run)
    accept_overflow = _probe(accept_overflow.run)
    outbound_half_open = _probe(outbound_half_open.run)
    time_wait_length = _probe(time_wait.length)
    time_wait_buckets = _probe(time_wait.buckets)
    connection_cap = _probe(caps.connection_cap)
    http_connection_cap = _probe(caps.http_connection_cap)
    router_table = _probe(caps.router_table)
    keepalive = _probe(keepalive.run)
    fd_limit = _probe(servers.fd_limit)
    thread_pool = _probe(servers.thread_pool)
    per_server_cap = _probe(servers.per_server_cap)
    tcb_hash = _probe(tcb_hash.run)


class ProbedLab(Lab):
    """A lab with its probes attached: ``lab.probe.<limit>(...)`` runs one on it. The factory builds
    these; the lab layer below knows nothing of probes."""

    @cached_property
    def probe(self) -> Probes:
        return Probes(self)
