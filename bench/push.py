"""Server push fan-out through the plugin: N subscribers, U updates; print the latency figures.

    python3 bench/push.py                        # 10,000 then 100,000 subscribers
    python3 bench/push.py --clients 100000 --updates 3

Each subscriber holds a GET /events response (text/event-stream) open on the
agent's hold server; each update is written by every server worker to all its
subscribers, and each client times its arrival against the push's start on one
CLOCK_MONOTONIC. Prints, per size, subscribers held, deliveries per update,
failed writes, and fan-out latency percentiles (push start to arrival).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe  # noqa: E402
from pytest_connlab.scripted import standalone_lab  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, action="append",
                   help="subscribers (repeatable; default 10000 and 100000)")
    p.add_argument("--updates", type=int, default=5)
    p.add_argument("--hosts", type=int, default=4, help="client hosts")
    p.add_argument("--ips", type=int, default=4, help="source IPs per client host")
    p.add_argument("--profile", default="linux-tuned")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("bench/push.py: needs root (network namespaces)", file=sys.stderr)
        return 2
    print(f"machine: {describe()}")
    worst = 0
    for size in args.clients or [10_000, 100_000]:
        with standalone_lab(args.profile, clients=args.hosts, ips_per_client=args.ips) as lab:
            obs = lab.probe.push_fanout(clients=size, updates=args.updates, settle_s=30.0)
        ev = obs.evidence
        lat = ev["fanout_latency"]
        print(f"{size:,} subscribers ({ev['subscribed']:,} held, {ev['hold']['layout']}):")
        print(f"  delivered per update: {ev['delivered_per_update']}; failed writes {ev['failed_writes']}; "
              f"lost connections {ev['lost_connections']}")
        print(f"  fan-out latency (push start to arrival): p50 {lat.get('p50_ms')} ms, "
              f"p90 {lat.get('p90_ms')} ms, p99 {lat.get('p99_ms')} ms, max {lat.get('max_ms')} ms")
        for seq, per in enumerate(ev["fanout_latency_per_update"], 1):
            print(f"    update {seq}: p50 {per.get('p50_ms')} ms, p99 {per.get('p99_ms')} ms, "
                  f"max {per.get('max_ms')} ms")
        worst = max(worst, 0 if obs.observed >= size else 1)
    return worst


if __name__ == "__main__":
    sys.exit(main())
