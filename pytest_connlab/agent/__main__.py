"""Command line of the agent: ``python3 -m agent ROLE [options]``."""
from __future__ import annotations

import argparse
import json
import os
import sys

from . import proto
from .connect import PORT_POOLS
from .server import MODES

# Each role imports what it needs when it runs: an agent is started for every one-shot read and every
# load, and the modules of all roles together took about half of its start-up time.


def _target(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="connlab-agent")
    sub = p.add_subparsers(dest="role", required=True)
    s = sub.add_parser("server", help="listen and accept/hold/echo/never accept")
    s.add_argument("--bind", default="0.0.0.0")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--backlog", type=int, default=128)
    s.add_argument("--mode", choices=(*MODES, "threaded"), default="close")
    s.add_argument("--max-seconds", type=float, default=600.0)
    s.add_argument("--nofile", type=int, default=0, help="set RLIMIT_NOFILE to this")
    s.add_argument("--max-conns", type=int, default=0, help="http: live connections served")
    s.add_argument("--over-status", choices=("403.9", "503"), default="503")
    s.add_argument("--delay", type=float, default=0.0, help="http: seconds before each answer")
    s.add_argument("--threads", type=int, default=0, help="threaded: worker threads")
    s.add_argument("--one-cpu", action="store_true", help="run on the lowest CPU this process may use")
    b = sub.add_parser("burst", help="start many connects at once and hold them")
    b.add_argument("--target", type=_target, required=True)
    b.add_argument("--sources", default="")
    b.add_argument("--count", type=int, required=True)
    b.add_argument("--settle", type=float, default=2.0)
    b.add_argument("--hold", type=float, default=600.0)
    b.add_argument("--check", type=float, default=0.5, help="seconds to wait for news at release")
    h = sub.add_parser("http", help="HTTP requests over kept-alive connections")
    h.add_argument("--target", type=_target, required=True)
    h.add_argument("--sources", default="")
    h.add_argument("--requests", type=int, required=True)
    h.add_argument("--pool", type=int, default=0, help="connections shared by the requests (0: one each)")
    h.add_argument("--timeout", type=float, default=3.0)
    h.add_argument("--hold", type=float, default=600.0)
    h.add_argument("--deadline", type=float, default=120.0)
    r = sub.add_parser("refuse-on-full", help="keep an nft set of the ports whose listener is full")
    r.add_argument("--table", required=True)
    r.add_argument("--set", dest="set_name", required=True)
    r.add_argument("--interval", type=float, default=0.005)
    r.add_argument("--max-seconds", type=float, default=7200.0)
    c = sub.add_parser("inbound-computers", help="free the inbound-cap slot of a computer that has gone")
    c.add_argument("--table", required=True)
    c.add_argument("--sets", required=True, help="comma-separated nft sets of admitted addresses")
    c.add_argument("--idle", type=float, default=1.0)
    c.add_argument("--interval", type=float, default=0.25)
    c.add_argument("--max-seconds", type=float, default=7200.0)
    q = sub.add_parser("half-open-outbound", help="at most --cap outbound connects incomplete at once")
    q.add_argument("--cap", type=int, required=True)
    q.add_argument("--give-up", type=float, default=21.0)
    q.add_argument("--queue", type=int, default=4226)
    q.add_argument("--max-seconds", type=float, default=7200.0)
    k = sub.add_parser("keepalive", help="idle connections with and without SO_KEEPALIVE")
    k.add_argument("--target", type=_target, required=True)
    k.add_argument("--source", default=None)
    k.add_argument("--deadline", type=float, required=True)
    c = sub.add_parser("churn", help="connect+close until connect fails")
    c.add_argument("--target", type=_target, required=True)
    c.add_argument("--source", default=None)
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--deadline", type=float, required=True)
    c.add_argument("--timeout", type=float, default=3.0)
    c.add_argument("--port-pool", choices=PORT_POOLS, default="per-destination")
    c.add_argument("--workers", type=int, default=1, help="processes sharing the port pool")
    c.add_argument("--one-cpu", action="store_true", help="run on the lowest CPU this process may use")
    o = sub.add_parser("open", help="open connections and hold them")
    o.add_argument("--target", type=_target, required=True)
    o.add_argument("--sources", default="", help="comma-separated source IPs")
    o.add_argument("--count", type=int, required=True)
    o.add_argument("--timeout", type=float, default=3.0)
    o.add_argument("--deadline", type=float, required=True)
    o.add_argument("--extra", type=int, default=0)
    o.add_argument("--hold", type=float, default=600.0)
    o.add_argument("--keep-going", action="store_true", help="do not stop at the first error")
    o.add_argument("--no-spread", action="store_true")
    hc = sub.add_parser("hold-clients", help="many held connections from worker processes")
    hc.add_argument("--target", type=_target, required=True)
    hc.add_argument("--plan", required=True, help='JSON: one {"source IP": count} per worker')
    hc.add_argument("--in-flight", type=int, default=256, help="connects pending per worker")
    hc.add_argument("--timeout", type=float, default=5.0)
    hc.add_argument("--deadline", type=float, required=True)
    hc.add_argument("--hold", type=float, default=600.0)
    hc.add_argument("--subscribe", action="store_true", help="GET /events and time pushed updates")
    hs = sub.add_parser("hold-server", help="worker processes sharing one port; hold or push")
    hs.add_argument("--bind", default="0.0.0.0")
    hs.add_argument("--port", type=int, default=0)
    hs.add_argument("--backlog", type=int, default=4096)
    hs.add_argument("--workers", type=int, default=1)
    hs.add_argument("--push", action="store_true", help="answer requests with an event stream")
    hs.add_argument("--max-seconds", type=float, default=900.0)
    sub.add_parser("limits", help="this host's descriptor limits and memory")
    ob = sub.add_parser("observe", help="socket states and counters")
    ob.add_argument("--port", type=int, default=None)
    ob.add_argument("--until-time-wait", type=int, default=0, metavar="N",
                    help="first wait (--within s at most) until N connections to --port are in TIME_WAIT")
    ob.add_argument("--within", type=float, default=30.0)
    sub.add_parser("pressure", help="kernel-wide TCP state and the counters of trouble, no socket scan")
    sy = sub.add_parser("sysctl", help="read or set sysctls")
    sy.add_argument("--get", nargs="*", default=[])
    sy.add_argument("--set", default="", help='JSON object {"key": "value"}')
    sy.add_argument("--kernel-wide", action="store_true",
                    help="this host's kernel is the lab's own (a VM): fs.* keys may be set too")
    return p


def _open(args: argparse.Namespace, raw: list[str]) -> None:
    from .hold import open_and_hold
    from .limits import raise_nofile_to_hard
    from .workers import chunks, spread
    budget = raise_nofile_to_hard()
    if args.count > budget and not args.no_spread:
        role_args = [a for a in _strip_count(raw)]
        spread(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), role_args,
               chunks(args.count, budget), args.hold)
        return
    sources = _sources(args.sources)
    open_and_hold(args.target, sources, args.count, args.timeout, args.deadline, args.extra,
                  args.hold, stop_on_error=not args.keep_going)


def _sources(text: str) -> list[str | None]:
    """Comma-separated source IPs; [None] lets the kernel choose."""
    return [s for s in text.split(",") if s] or [None]


def _strip_count(raw: list[str]) -> list[str]:
    out, skip = [], False
    for a in raw:
        if skip:
            skip = False
        elif a == "--count":
            skip = True
        else:
            out.append(a)
    return out


def _pin_to_one_cpu() -> None:
    """Run on one CPU, so this process's sockets and the softirq work its packets cause on a
    veth (handled on the sending CPU) never run on two CPUs at once."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "one_cpu", False):
        _pin_to_one_cpu()
    if args.role == "server":
        from .limits import set_nofile
        from .server import HttpPolicy, serve
        from .threaded import serve_threaded
        if args.nofile:
            set_nofile(args.nofile)
        if args.mode == "threaded":
            serve_threaded(args.bind, args.port, args.backlog, args.threads, args.max_seconds)
        else:
            serve(args.bind, args.port, args.backlog, args.mode, args.max_seconds,
                  HttpPolicy(args.max_conns, args.over_status, args.delay))
    elif args.role == "burst":
        from .burst import burst
        burst(args.target, _sources(args.sources), args.count, args.settle, args.hold, args.check)
    elif args.role == "http":
        from .http import one_connection_each, pooled
        if args.pool:
            pooled(args.target, _sources(args.sources)[0], args.requests, args.pool, args.timeout,
                   args.deadline)
        else:
            one_connection_each(args.target, _sources(args.sources), args.requests, args.timeout,
                                args.hold)
    elif args.role == "refuse-on-full":
        from .listenwatch import refuse_on_full
        refuse_on_full(args.table, args.set_name, args.interval, args.max_seconds)
    elif args.role == "inbound-computers":
        from .computers import free_slots
        free_slots(args.table, args.sets.split(","), args.idle, args.interval, args.max_seconds)
    elif args.role == "half-open-outbound":
        from .halfopen import throttle
        throttle(args.cap, args.give_up, args.queue, args.max_seconds)
    elif args.role == "keepalive":
        from .keepalive import keepalive
        keepalive(args.target, args.source, args.deadline)
    elif args.role == "churn":
        from .churn import churn
        churn(args.target, args.source, args.count, args.deadline, args.timeout, args.port_pool,
              args.workers)
    elif args.role == "open":
        _open(args, argv)
    elif args.role == "hold-clients":
        from .mass_client import run_clients
        run_clients(args.target, json.loads(args.plan), args.in_flight, args.timeout, args.deadline,
                    args.hold, args.subscribe)
    elif args.role == "hold-server":
        from .mass_server import run_server
        run_server(args.bind, args.port, args.backlog, args.workers, args.push, args.max_seconds)
    elif args.role == "limits":
        from .limits import host_limits
        proto.emit("limits", **host_limits())
    elif args.role == "pressure":
        from .observe import pressure_reading
        proto.send(pressure_reading())
    elif args.role == "observe" and args.until_time_wait and args.port is not None:
        from .observe import first_time_wait, observe
        proto.emit("ready")
        first = first_time_wait(args.port, min(args.until_time_wait, 100_000), min(args.within, 300.0))
        proto.emit("observation", **{**observe(args.port), **first})
    elif args.role == "observe":
        from .observe import observe
        proto.emit("observation", **observe(args.port))
    elif args.role == "sysctl":
        from . import sysctl
        roots = sysctl.OWN_KERNEL_ROOTS if args.kernel_wide else sysctl.WRITABLE_ROOTS
        proto.send(sysctl.exchange(json.loads(args.set) if args.set else {}, list(args.get), roots))
    return 0


sys.exit(main(sys.argv[1:]))
