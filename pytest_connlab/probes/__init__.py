"""Probes: each drives load on a lab through the agent and returns an Observation.

One module per limit, named after it, holding one function of the same name
(``listen_backlog.listen_backlog(lab, ...)``); ``lab.probe.<limit>(...)`` is that function
bound to the lab (the package binds no function names, so each submodule stays
importable as itself), so ``help(lab.probe.listen_backlog)`` and IDEs show its real parameters.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from functools import cached_property
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from ..lab import pressure
from ..lab.lab import Lab
from ..profiles.limits import CATALOG
from ..report.observation import Observation
from . import (
    accept_overflow,
    connection_cap,
    ephemeral_ports,
    fd_limit,
    hold,
    http_connection_cap,
    inbound_cap,
    keepalive,
    listen_backlog,
    memory_per_connection,
    one_port_connections,
    outbound_half_open,
    per_server_cap,
    ports_per_source,
    push_fanout,
    router_table,
    syn_backlog,
    tcb_hash,
    thread_pool,
    time_wait_buckets,
    time_wait_length,
)

P = ParamSpec("P")
R = TypeVar("R")


class _Bound(Generic[P, R]):
    """A probe function ``f(lab, ...)`` seen through ``lab.probe`` as ``f(...)`` bound to the lab.

    The bound call reads the host's shared kernel state (``lab.pressure``) on the lab's hosts
    before and after the probe; a figure measured under pressure is marked disturbed."""

    def __init__(self, func: Callable[..., R]) -> None:
        self.func = func
        self.__doc__ = func.__doc__

    @overload
    def __get__(self, probes: None, owner: type) -> _Bound[P, R]: ...
    @overload
    def __get__(self, probes: Probes, owner: type) -> Callable[P, R]: ...
    def __get__(self, probes: Probes | None, owner: type) -> Any:
        if probes is None:
            return self
        func, lab = self.func, probes.lab

        @functools.wraps(func)
        def bound(*args: Any, **kwargs: Any) -> R:
            return _watched(lab, _call_text(func.__name__, args, kwargs), lambda: func(lab, *args, **kwargs))
        full = inspect.signature(func)
        bound.__signature__ = full.replace(parameters=list(full.parameters.values())[1:])  # type: ignore[attr-defined]
        return bound


def _watched(lab: Lab, load: str, run: Callable[[], R]) -> R:
    """Run a probe between two readings of host pressure; mark its result disturbed if need be;
    tell the story (load, observation) to the lab's narrator."""
    hosts = [lab.server, *lab.clients]
    before = pressure.read(hosts)
    try:
        with lab.narrator.step(f"load: {load}"):
            result = run()
    finally:
        lab.progress.done()
    lab.check_watchers()
    limit = CATALOG.get(getattr(result, "limit", ""))
    if limit is not None and limit.pressure_is_the_limit:
        # the lab's own memory running out is the measurement (its hosts' kernels are their own), and
        # a guest it ended (a kernel panic) has nothing left to read
        why = ""
    else:
        why = pressure.disturbance(before, pressure.read(hosts))
    if why and hasattr(result, "disturbed"):
        result.disturbed = why
    if isinstance(result, Observation):
        lab.narrator.observed(lab, result)
    return result


def _call_text(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(shown)})"


def _probe(func: Callable[Concatenate[Lab, P], R]) -> _Bound[P, R]:
    return _Bound(func)


class Probes:
    """``lab.probe.<limit>(...)``: run one probe on this lab."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
    accept_overflow = _probe(accept_overflow.accept_overflow)
    connection_cap = _probe(connection_cap.connection_cap)
    ephemeral_ports = _probe(ephemeral_ports.ephemeral_ports)
    fd_limit = _probe(fd_limit.fd_limit)
    hold = _probe(hold.hold)
    http_connection_cap = _probe(http_connection_cap.http_connection_cap)
    inbound_cap = _probe(inbound_cap.inbound_cap)
    keepalive = _probe(keepalive.keepalive)
    listen_backlog = _probe(listen_backlog.listen_backlog)
    memory_per_connection = _probe(memory_per_connection.memory_per_connection)
    one_port_connections = _probe(one_port_connections.one_port_connections)
    outbound_half_open = _probe(outbound_half_open.outbound_half_open)
    per_server_cap = _probe(per_server_cap.per_server_cap)
    ports_per_source = _probe(ports_per_source.ports_per_source)
    push_fanout = _probe(push_fanout.push_fanout)
    router_table = _probe(router_table.router_table)
    syn_backlog = _probe(syn_backlog.syn_backlog)
    tcb_hash = _probe(tcb_hash.tcb_hash)
    thread_pool = _probe(thread_pool.thread_pool)
    time_wait_buckets = _probe(time_wait_buckets.time_wait_buckets)
    time_wait_length = _probe(time_wait_length.time_wait_length)


class ProbedLab(Lab):
    """A lab with its probes attached: ``lab.probe.<limit>(...)`` runs one on it. The factory builds
    these; the lab layer below knows nothing of probes."""

    @cached_property
    def probe(self) -> Probes:
        return Probes(self)
