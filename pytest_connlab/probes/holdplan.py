"""How a held load is spread: connections over source IPs, source IPs over worker processes.

Pure arithmetic, so it is unit-tested without a lab. A source IP can hold at most
its port range toward one server ip:port (IP_BIND_ADDRESS_NO_PORT); a process at
most its descriptor budget; the server's workers share one port (SO_REUSEPORT),
whose hash spreads connections unevenly, hence the headroom.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..agent.workers import split_evenly

SERVER_HEADROOM = 1.15  # SO_REUSEPORT's hash is not perfectly even


def ports_in_range(text: str, reserved: int = 0) -> int:
    """Ports an ``ip_local_port_range`` value ("32768 60999") offers, less reserved ones."""
    try:
        low, high = (int(x) for x in text.split())
    except ValueError:
        raise ValueError(f"net.ipv4.ip_local_port_range: {text!r} is not two numbers") from None
    return max(0, high - low + 1 - reserved)


@dataclass(frozen=True)
class HoldPlan:
    """Per client host, one {source IP: connections} map per worker process; server workers."""

    clients: dict[str, list[dict[str, int]]]
    server_workers: int
    per_source: dict[str, int]

    @property
    def client_workers(self) -> int:
        return sum(len(w) for w in self.clients.values())

    def describe(self) -> str:
        hosts = len(self.clients)
        return (f"{len(self.per_source)} source IPs on {hosts} client host{'s' * (hosts != 1)}, "
                f"{self.client_workers} client and {self.server_workers} server processes")


def fill_workers(per_source: dict[str, int], budget: int) -> list[dict[str, int]]:
    """Cut one host's sources into as few workers as its descriptor budget allows, evenly."""
    total = sum(per_source.values())
    if total == 0:
        return []
    quotas = split_evenly(total, -(-total // budget))
    workers: list[dict[str, int]] = []
    ips = [ip for ip, n in per_source.items() if n > 0]
    left = {ip: per_source[ip] for ip in ips}
    for quota in quotas:
        worker: dict[str, int] = {}
        while quota and ips:
            ip = ips[0]
            take = min(quota, left[ip])
            worker[ip] = worker.get(ip, 0) + take
            quota -= take
            left[ip] -= take
            if left[ip] == 0:
                ips.pop(0)
        workers.append(worker)
    return workers


def plan_hold(connections: int, sources: list[tuple[str, str]], client_budget: int,
              server_budget: int) -> HoldPlan:
    """Spread ``connections`` evenly over ``sources`` ((host, IP) pairs), then over workers."""
    if connections < 1:
        raise ValueError("connections must be at least 1")
    if not sources:
        raise ValueError("no client source IPs to connect from")
    shares = split_evenly(connections, len(sources))
    per_host: dict[str, dict[str, int]] = {}
    per_source: dict[str, int] = {}
    for (host, ip), share in zip(sources, shares):
        per_host.setdefault(host, {})[ip] = per_host.get(host, {}).get(ip, 0) + share
        per_source[ip] = per_source.get(ip, 0) + share
    clients = {host: fill_workers(ips, client_budget) for host, ips in per_host.items()}
    server_workers = max(1, -(-int(connections * SERVER_HEADROOM) // server_budget))
    return HoldPlan({h: w for h, w in clients.items() if w}, server_workers, per_source)


__all__ = ["HoldPlan", "fill_workers", "plan_hold", "ports_in_range", "split_evenly"]
