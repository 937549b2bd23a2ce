"""Probe 'push_fanout': N clients hold an event stream open; the server pushes updates to all.

The seed question: can a server (IIS 6 in the question) keep 3,000 "server push"
users connected and reach every one? The agent's hold server answers each
``GET /events`` with ``text/event-stream`` and, on each push, writes the update to
every subscriber; each client records the time from the push's start (one
CLOCK_MONOTONIC for the whole lab) to the update's arrival. Observed: the clients
that received every update. Evidence: fan-out latency percentiles.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..lab.providers.agentproc import AgentProcess
from ..report.observation import NO_ERROR, Observation
from .common import expectation, observation
from .hold import hold, next_named

if TYPE_CHECKING:
    from ..lab.lab import Lab

LIMIT = "push_fanout"


def percentiles(values_us: list[int]) -> dict[str, float]:
    """p50, p90, p99 and max of microsecond values, in milliseconds."""
    if not values_us:
        return {}
    ordered = sorted(values_us)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000, 3)
    return {"p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99), "max_ms": round(ordered[-1] / 1000, 3)}


class Pusher:
    """Pushes ``updates`` updates during the hold and gathers what the clients received."""

    def __init__(self, updates: int, interval_s: float, settle_s: float) -> None:
        self.updates = updates
        self.interval_s = interval_s
        self.settle_s = settle_s
        self.pushed: list[dict[str, Any]] = []
        self.received: dict[int, list[int]] = {}
        self.lost = 0

    def __call__(self, server: AgentProcess | None, clients: list[AgentProcess]) -> None:
        assert server is not None, "push_fanout needs the agent's hold server"
        for _ in range(self.updates):
            server.command("push")
            self.pushed.append(next_named(server, "pushed", timeout=120))
            time.sleep(self.interval_s)
        want = sum(int(p["subscribers"]) for p in self.pushed)
        deadline = time.monotonic() + self.settle_s
        while True:
            self._collect(clients)
            if sum(len(v) for v in self.received.values()) >= want or time.monotonic() > deadline:
                return
            time.sleep(0.2)

    def _collect(self, clients: list[AgentProcess]) -> None:
        self.lost = 0
        for proc in clients:
            proc.command("report")
            report = next_named(proc, "updates", timeout=60)
            self.lost += int(report.get("lost", 0))
            for seq, values in report["latencies_us"].items():
                self.received.setdefault(int(seq), []).extend(values)


def log_histogram(values_us: list[int]) -> list[tuple[int, int]]:
    """(upper bound in microseconds, count) over power-of-two buckets: the latency distribution."""
    counts: dict[int, int] = {}
    for value in values_us:
        bound = 1 << max(0, int(value) - 1).bit_length()
        counts[bound] = counts.get(bound, 0) + 1
    return sorted(counts.items())


def push_fanout(lab: Lab, clients: int = 3000, updates: int = 5, interval_s: float = 0.2,
        settle_s: float = 10.0) -> Observation:
    """Hold ``clients`` subscribers, push ``updates`` updates, count who got every one."""
    exp = expectation(lab, LIMIT, (None, "an event-loop server writes to every subscriber"))
    pusher = Pusher(updates, interval_s, settle_s)
    result = hold(lab, None, clients, 0.2, subscribe=True, during_hold=pusher)
    per_update = [len(pusher.received.get(p["seq"], [])) for p in pusher.pushed]
    every = min(per_update) if per_update else 0
    all_values = [v for values in pusher.received.values() for v in values]
    evidence = {
        "subscribed": result.established, "updates": updates, "delivered_per_update": per_update,
        "written_per_update": [p["written"] for p in pusher.pushed],
        "failed_writes": sum(int(p["failed"]) for p in pusher.pushed), "lost_connections": pusher.lost,
        "fanout_latency": percentiles(all_values),
        "fanout_latency_histogram_us": log_histogram(all_values),
        "fanout_latency_per_update": [percentiles(pusher.received.get(p["seq"], [])) for p in pusher.pushed],
        "hold": result.to_json(),
        "how": f"{updates} updates to {result.established} subscribers; latency "
               f"{percentiles(all_values)} from the push's start to arrival",
    }
    ended = NO_ERROR if every >= clients and not result.errors else \
        (max(result.errors.items(), key=lambda kv: kv[1])[0] if result.errors else "update not delivered")
    return observation(lab, LIMIT, exp, observed=every, ended_by=ended, bound=clients,
                       duration_s=result.ramp_s + result.held_for_s, evidence=evidence)
