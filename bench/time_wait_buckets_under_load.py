"""The TIME_WAIT bucket test, many times, while busy processes load every core.

    python3 bench/time_wait_buckets_under_load.py            # 20 runs, one busy loop per core
    python3 bench/time_wait_buckets_under_load.py --layout two-workers --runs 150   # the old layout
    python3 bench/time_wait_buckets_under_load.py --layout probe --runs 150         # the probe's, fast

The kernel's check of tcp_max_tw_buckets (inet_twsk_alloc) reads the count and adds one
later with no lock between, so two CPUs making TIME_WAIT entries at once can both pass at
limit - 1. The probe therefore churns from one process with the server on the same CPU;
``--layout two-workers`` runs the churn as it was before (two workers, no CPU pinning)
through the agent directly, to show the race; ``--layout probe`` the probe's churn the
same fast way, for a like-for-like count. Every run is bounded (300 s) and the loads are
stopped at the end.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BUSY = "while True: pass"


def _one_run() -> tuple[bool, str]:
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rN",
                           str(REPO / "labs" / "test_time_wait_state.py"), "-k", "bucket_overflow"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    observed = re.findall(r"observed (\d+)", done.stdout)
    return done.returncode == 0, observed[0] if observed else "100 (passed)" if done.returncode == 0 else "?"


def _direct_run(lab: object, two_workers: bool) -> int:
    """One churn of 1,100 connects past tcp_max_tw_buckets=100 in ``lab``; the TIME_WAIT count it
    leaves. ``two_workers``: the old layout (two workers, nothing pinned); else the probe's."""
    from pytest_connlab.probes.common import start_agent_server
    from pytest_connlab.probes.time_wait_buckets import drain_time_wait
    client = lab.clients[0]  # type: ignore[attr-defined]
    drain_time_wait(client)
    pin = () if two_workers else ("--one-cpu",)
    server = start_agent_server(lab, "close", extra=pin)  # type: ignore[arg-type]
    client.agent_once("churn", "--target", server.endpoint, "--source", client.address, "--count", "1100",
                      "--deadline", "50", "--workers", "2" if two_workers else "1", *pin, timeout=80)
    count = int(client.observe(server.port)["sockets"]["remote_port"].get("TIME_WAIT", 0))
    server.stop()
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--layout", choices=("probe", "two-workers", "pytest"), default="pytest",
                        help="probe: the probe's churn through the agent in one lab per run; two-workers: "
                             "the old unpinned two-worker churn; pytest: the labs test itself")
    args = parser.parse_args()
    print(describe())
    loads = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(os.cpu_count() or 1)]
    passed, seen = 0, []
    start = time.monotonic()
    try:
        for _ in range(max(1, min(args.runs, 1000))):
            if args.layout != "pytest":
                from pytest_connlab.scripted import standalone_lab
                with standalone_lab("linux-default") as lab:
                    lab.set_sysctls(lab.clients[0], {"net.ipv4.tcp_max_tw_buckets": "100"})
                    count = _direct_run(lab, args.layout == "two-workers")
                seen.append(str(count))
                passed += count == 100
            else:
                ok, observed = _one_run()
                passed += ok
                seen.append(observed)
    finally:
        for load in loads:
            load.kill()
            load.wait()
    layout = {"two-workers": "two unpinned churn workers", "probe": "the probe's churn (one process, one CPU)",
              "pytest": "the labs test"}[args.layout]
    print(f"{layout}, tcp_max_tw_buckets=100, {len(loads)} busy loops: exactly 100 TIME_WAIT in "
          f"{passed} of {len(seen)} runs ({time.monotonic() - start:.0f} s); counts: {' '.join(seen)}")
    return 0 if passed == len(seen) else 1


if __name__ == "__main__":
    sys.exit(main())
