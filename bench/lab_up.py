"""Lab bring-up through the plugin against `ip -batch` for the same topology.

    python3 bench/lab_up.py                  # 1 server + 4 clients x 16 IPs, 5 repeats, medians

`ip -batch` makes the same namespaces, bridge, veth pairs, addresses and links
(one batch for the namespaces and veths, one per namespace for what is inside);
the plugin's netns provider does it with its own rtnetlink batches from threads (no fork). Teardown is timed too.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe  # noqa: E402
from pytest_connlab.lab.addressing import SubnetAllocator, worker_slice  # noqa: E402
from pytest_connlab.lab.names import new_run_id  # noqa: E402
from pytest_connlab.lab.providers.netns import NetnsProvider  # noqa: E402
from pytest_connlab.lab.topology import Topology, TopologyRequest, plan  # noqa: E402

BIRTH = {"net.ipv4.tcp_child_ehash_entries": "65536"}  # a birth sysctl: the new namespace's own TCP hash size


def _ip(args: list[str], script: str) -> None:
    subprocess.run(["ip", *args, "-batch", "-"], input=script.encode(), check=True)


def ip_batch_up(topology: Topology, prefix: str) -> list[str]:
    """The same lab with `ip -batch`; returns the namespaces made."""
    seg = f"{prefix}-lan"
    names = [seg] + [f"{prefix}-{h.name}" for h in topology.hosts]
    prefixlen = topology.segments["lan"].prefixlen
    top = [f"netns add {n}" for n in names]
    top += [f"link add eth0 netns {prefix}-{h.name} type veth peer name p{i} netns {seg}"
            for i, h in enumerate(topology.hosts)]
    _ip([], "\n".join(top) + "\n")
    _ip(["-n", seg], "link add br0 type bridge\nlink set br0 up\n"
        + "".join(f"link set p{i} master br0 up\n" for i in range(len(topology.hosts))))
    for h in topology.hosts:
        lines = [f"addr add {a}/{prefixlen} dev eth0" for a in h.addresses]
        _ip(["-n", f"{prefix}-{h.name}"], "\n".join([*lines, "link set eth0 up", "link set lo up"]) + "\n")
    return names


def ip_batch_down(names: list[str]) -> None:
    _ip([], "".join(f"netns delete {n}\n" for n in names))


def timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--ips", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    topology = plan(TopologyRequest(args.clients, args.ips), SubnetAllocator(worker_slice(0, 1)))
    born = plan(TopologyRequest(args.clients, args.ips), SubnetAllocator(worker_slice(0, 1)),
                {role: dict(BIRTH) for role in ("server", "client")})
    provider = NetnsProvider()
    times: dict[str, list[float]] = {"ip -batch up": [], "ip -batch down": [], "plugin up": [], "plugin down": [],
                                     "plugin up, birth sysctls": []}
    for i in range(args.repeats):
        prefix = f"connlab-{new_run_id()}-bench-{i + 1}"
        up, names = timed(ip_batch_up, topology, prefix)
        down, _ = timed(ip_batch_down, names)
        times["ip -batch up"].append(up)
        times["ip -batch down"].append(down)
        up, hosts = timed(provider.realise, topology, f"connlab-{new_run_id()}-bench-{i + 1}")
        down, _ = timed(provider.destroy, hosts)
        times["plugin up"].append(up)
        times["plugin down"].append(down)
        up, hosts = timed(provider.realise, born, f"connlab-{new_run_id()}-bench-{i + 1}")
        provider.destroy(hosts)
        times["plugin up, birth sysctls"].append(up)
    print(f"machine: {describe()}")
    print(f"topology: 1 server + {args.clients} clients x {args.ips} IPs on one bridge; "
          f"median of {args.repeats}")
    med = {k: statistics.median(v) for k, v in times.items()}
    for key, value in med.items():
        print(f"  {key:<25} {value * 1000:8.1f} ms")
    print(f"ratio plugin / ip -batch, bring-up: {med['plugin up'] / med['ip -batch up']:.2f} (target <= 1.0, "
          f"stretch 0.5); teardown: {med['plugin down'] / med['ip -batch down']:.2f}; bring-up with birth "
          f"sysctls ({', '.join(BIRTH)} on every host): {med['plugin up, birth sysctls'] / med['plugin up']:.2f} "
          "of without")
    return 0


if __name__ == "__main__":
    sys.exit(main())
