"""Command line of the agent: ``python3 -m agent ROLE [options]``."""
from __future__ import annotations

import argparse
import json
import os
import sys

from . import proto, sysctl
from .churn import churn
from .connect import PORT_POOLS
from .hold import open_and_hold
from .limits import raise_nofile_to_hard, set_nofile
from .observe import observe
from .server import MODES, serve
from .workers import chunks, spread


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
    s.add_argument("--mode", choices=MODES, default="close")
    s.add_argument("--max-seconds", type=float, default=600.0)
    s.add_argument("--nofile", type=int, default=0, help="lower RLIMIT_NOFILE to this")
    c = sub.add_parser("churn", help="connect+close until connect fails")
    c.add_argument("--target", type=_target, required=True)
    c.add_argument("--source", default=None)
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--deadline", type=float, required=True)
    c.add_argument("--timeout", type=float, default=3.0)
    c.add_argument("--port-pool", choices=PORT_POOLS, default="per-destination")
    c.add_argument("--workers", type=int, default=1, help="processes sharing the port pool")
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
    ob = sub.add_parser("observe", help="socket states and counters")
    ob.add_argument("--port", type=int, default=None)
    sy = sub.add_parser("sysctl", help="read or set sysctls")
    sy.add_argument("--get", nargs="*", default=[])
    sy.add_argument("--set", default="", help='JSON object {"key": "value"}')
    return p


def _open(args: argparse.Namespace, raw: list[str]) -> None:
    budget = raise_nofile_to_hard()
    if args.count > budget and not args.no_spread:
        role_args = [a for a in _strip_count(raw)]
        spread(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), role_args,
               chunks(args.count, budget), args.hold)
        return
    sources = [s for s in args.sources.split(",") if s] or [None]
    open_and_hold(args.target, sources, args.count, args.timeout, args.deadline, args.extra,
                  args.hold, stop_on_error=not args.keep_going)


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


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.role == "server":
        if args.nofile:
            set_nofile(args.nofile)
        serve(args.bind, args.port, args.backlog, args.mode, args.max_seconds)
    elif args.role == "churn":
        churn(args.target, args.source, args.count, args.deadline, args.timeout, args.port_pool,
              args.workers)
    elif args.role == "open":
        _open(args, argv)
    elif args.role == "observe":
        proto.emit("observation", **observe(args.port))
    elif args.role == "sysctl":
        result = sysctl.apply(json.loads(args.set)) if args.set else {}
        values = {k: _safe_read(k) for k in args.get}
        proto.emit("sysctl", values=values, **result)
    return 0


def _safe_read(key: str) -> str | None:
    try:
        return sysctl.read(key)
    except (OSError, ValueError):
        return None


sys.exit(main(sys.argv[1:]))
