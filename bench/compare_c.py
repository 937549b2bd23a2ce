"""The plugin's driver against a C epoll pair, on the same lab and layout, one after the other.

    python3 bench/compare_c.py                         # 200,000 connections, linux-tuned, 4 x 8 IPs
    python3 bench/compare_c.py --connections 500000

Builds bench/c/holdpair.c with gcc, brings up one lab, runs lab.probe.hold (the
agent's Python hold-clients and hold-server), then the C pair with the same plan
(the same source IPs, counts per process, connects in flight and server
processes). Both rates are the connections counted on the server side divided by the
slowest client process's ramp time; the C clients' own count is printed beside as
client-side. Rounds alternate the order (plugin first, then C first; at least one of
each), and the ratios are reported per order. Exits 1 when
any server-side count is short of the connections asked for.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe  # noqa: E402
from pytest_connlab.lab.lab import Lab  # noqa: E402
from pytest_connlab.probes.holdplan import plan_hold  # noqa: E402
from pytest_connlab.scripted import standalone_lab  # noqa: E402

C_SOURCE = Path(__file__).resolve().parent / "c" / "holdpair.c"
C_PORT = 9099


def build(out_dir: str) -> str:
    binary = os.path.join(out_dir, "holdpair")
    subprocess.run(["gcc", "-O2", "-Wall", "-o", binary, str(C_SOURCE)], check=True)
    return binary


def run_c_pair(lab: Lab, binary: str, connections: int, in_flight: int) -> dict[str, float]:
    """The C pair with the plan the plugin would make; its rate and server-side count."""
    pairs = [(c.name, ip) for c in lab.clients for ip in c.addresses]
    budget = int(lab.server.agent_once("limits")["budget"])
    plan = plan_hold(connections, pairs, budget, budget)
    server = lab.server.start([binary, "server", str(C_PORT), str(plan.server_workers)], port=C_PORT)
    procs = []
    for host, workers in plan.clients.items():
        specs = [",".join(f"{ip}={n}" for ip, n in w.items()) for w in workers]
        procs.append((lab.hosts[host].popen([binary, "client", lab.server.address, str(C_PORT), str(in_flight),
                                             *specs], stdout=subprocess.PIPE), len(workers)))
    held = errors = 0
    slowest = 0.0
    for proc, workers in procs:
        assert proc.stdout is not None
        for _ in range(workers):
            _, h, e, secs = proc.stdout.readline().split()
            held, errors, slowest = held + int(h), errors + int(e), max(slowest, float(secs))
    time.sleep(1)
    server_count = lab.server.observe(C_PORT)["sockets"]["local_port"].get("ESTABLISHED", 0)
    for proc, _ in procs:
        proc.kill()
        proc.wait()
    server.stop()
    return {"held": held, "errors": errors, "ramp_s": slowest, "server_count": server_count,
            "rate": server_count / slowest if slowest else 0.0, "layout": plan.describe()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connections", type=int, default=200_000)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--ips", type=int, default=8)
    p.add_argument("--profile", default="linux-tuned")
    p.add_argument("--in-flight", type=int, default=256)
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds, alternating plugin-first and C-first (at least 2, so both orders run)")
    args = p.parse_args()
    if args.rounds < 2:
        p.error("--rounds must be at least 2: one round in each order")
    print(f"machine: {describe()}")
    with tempfile.TemporaryDirectory() as tmp, \
            standalone_lab(args.profile, clients=args.clients, ips_per_client=args.ips,
                        connections=args.connections) as lab:
        binary = build(tmp)
        rounds = []
        for i in range(args.rounds):
            if i % 2 == 0:
                r = lab.probe.hold(connections=args.connections, for_s=1, in_flight=args.in_flight)
                c = run_c_pair(lab, binary, args.connections, args.in_flight)
            else:
                c = run_c_pair(lab, binary, args.connections, args.in_flight)
                r = lab.probe.hold(connections=args.connections, for_s=1, in_flight=args.in_flight)
            rounds.append((r, c))
    print(f"layout: {rounds[0][0].layout}; {args.in_flight} connects in flight per client process")
    short = []
    by_order: dict[str, list[float]] = {"plugin first": [], "C first": []}
    for i, (r, c) in enumerate(rounds, 1):
        ratio = r.rate_per_s / c["rate"] if c["rate"] else 0.0
        order = "plugin first" if i % 2 else "C first"
        by_order[order].append(ratio)
        print(f"round {i} ({order}{', on cold slab caches' if i == 1 else ''}):")
        print(f"  plugin (Python agent): {r.established:,} server-side in {r.ramp_s:.2f} s = {r.rate_per_s:,.0f}/s "
              f"({r.listen_overflows} listen overflows, {r.syn_retransmits} SYN retransmits)")
        print(f"  C epoll pair:          {c['server_count']:,} server-side ({c['held']:,} client-side) in "
              f"{c['ramp_s']:.2f} s = {c['rate']:,.0f}/s (errors {c['errors']})")
        print(f"  ratio plugin / C: {ratio:.2f} (target >= 1.0)")
    for order, ratios in by_order.items():
        print(f"ratio plugin / C, {order}: {', '.join(f'{x:.2f}' for x in ratios)}; "
              f"median {statistics.median(ratios):.2f}")
        short += [f"round {i}: plugin {r.established:,}"] if r.established < args.connections else []
        short += [f"round {i}: C pair {c['server_count']:,}"] if c["server_count"] < args.connections else []
    if short:
        print(f"short of {args.connections:,} server-side: {'; '.join(short)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
