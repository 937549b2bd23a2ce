"""Ramp a netns lab to N held connections (default 1,000,000) through the plugin; print the figures.

    python3 bench/hold.py                     # 1,000,000 on linux-tuned, 4 clients x 8 IPs
    python3 bench/hold.py --connections 100000 --hold 5

Counted server-side (the agent's hold server). Prints ramp time and rate, the count
held at the end, kernel memory (Slab growth, both ends) and user memory (Pss growth
of every client and server process) per connection, then times the teardown and
checks nothing of the lab is left.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe  # noqa: E402
from pytest_connlab.lab.providers.netns import lab_namespaces  # noqa: E402
from pytest_connlab.scripted import standalone_lab  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connections", type=int, default=1_000_000)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--ips", type=int, default=8, help="source IPs per client host")
    p.add_argument("--profile", default="linux-tuned")
    p.add_argument("--hold", type=float, default=10.0, help="seconds to hold at full count")
    p.add_argument("--in-flight", type=int, default=256, help="pending connects per client process")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("bench/hold.py: needs root (network namespaces)", file=sys.stderr)
        return 2
    print(f"machine: {describe()}")
    started = time.monotonic()
    with standalone_lab(args.profile, clients=args.clients, ips_per_client=args.ips,
                        connections=args.connections) as lab:
        up_s = time.monotonic() - started
        run_id = lab.run_id
        r = lab.probe.hold(connections=args.connections, for_s=args.hold, in_flight=args.in_flight)
        torn_at = time.monotonic()
    teardown_s = time.monotonic() - torn_at
    left = [n for lab, names in lab_namespaces().items() if lab.run == run_id for n in names]
    print(f"lab: {args.profile}, {args.clients} clients x {args.ips} IPs, up in {up_s:.2f} s; {r.layout}")
    print(f"held: {r.established:,} of {r.requested:,} counted server-side; {r.held_at_end:,} still held "
          f"after {r.held_for_s:.0f} s (lowest {r.lowest_during_hold:,})")
    print(f"ramp: {r.ramp_s:.1f} s, {r.rate_per_s:,.0f} connections/s; errors: {r.errors or 'none'}")
    if r.memory_measured:
        kernel = r.kernel_bytes_per_conn or 0
        user = r.user_bytes_per_conn or 0
        print(f"memory per connection: kernel {kernel:,.0f} B (Slab, both ends), user {user:,.0f} B "
              f"(Pss growth); user total at full hold {(r.user_bytes_total or 0) / 2**20:,.0f} MiB")
        print(f"projection: {r.mem_available / 2**30:.1f} GiB available / {kernel + max(user, 0):,.0f} B "
              f"= ~{r.projection() or 0:,} connections (both ends on this box)")
    else:
        print(f"memory per connection: not measurable (Slab changed by {r.kernel_bytes} B); no projection")
    if r.disturbed:
        print(f"disturbed by the host: {r.disturbed}")
    print(f"teardown: closing the connections {r.release_s:.1f} s, the lab {teardown_s:.1f} s; "
          f"namespaces left: {len(left)}")
    return 0 if r.established == r.requested else 1


if __name__ == "__main__":
    sys.exit(main())
