"""Probe 'hold': ramp to N concurrent connections, hold them T seconds, count them server-side.

The load is spread over every client host, source IP and worker process the plan
needs (holdplan). The count that matters is the server's: the agent's hold server
counts what its workers accepted and still hold; for your own program the kernel
is asked (ESTABLISHED on the port minus what still waits in the accept queue),
because a client-side count also includes connections nobody accepted.
Kernel memory per connection is the Slab delta of the lab's kernel (both ends in a
netns lab); user memory is the Pss growth of every client and server process.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..agent.fleet import merge_counts
from ..lab.providers.agentproc import AgentProcess
from ..lab.target import Target
from ..report.observation import NO_ERROR
from .holdplan import HoldPlan, plan_hold, ports_in_range

if TYPE_CHECKING:
    from ..lab.lab import Lab
    from ..lab.labhost import LabHost

SAMPLE_EVERY_S = 0.5
PROGRESS_EVERY_S = 2.0
HOLD_BACKLOG = 65535  # the hold server's listen() backlog and the server's queues, so a paced server drops nothing
LISTEN_OVERFLOWS, SYN_RETRANSMITS = "TcpExtListenOverflows", "TcpExtTCPSynRetrans"


@dataclass
class HoldResult:
    """What a held load did: counted on the server, over time, with its memory cost."""

    target: str
    requested: int
    established: int  # server-side, when the ramp ended
    held_at_end: int  # server-side, at the end of the hold
    lowest_during_hold: int
    client_held: int
    ramp_s: float
    held_for_s: float
    counted_by: str
    layout: str
    port_capacity: int  # connections the sources' port ranges allow toward this target
    errors: dict[str, int] = field(default_factory=dict)
    exhausted_sources: list[str] = field(default_factory=list)
    not_attempted: int = 0
    samples: list[tuple[float, int]] = field(default_factory=list)  # (s since start, server count)
    kernel_bytes: int | None = None  # Slab growth from idle to full hold
    user_bytes: int | None = None  # Pss growth of the client and server processes
    user_bytes_total: int | None = None  # Pss of those processes at full hold
    mem_available: int = 0
    release_s: float = 0.0  # closing every connection and stopping the processes
    conditions: dict[str, str] = field(default_factory=dict)
    disturbed: str = ""  # why the host distorted this hold ("": it did not); see lab.pressure
    listen_overflows: int = 0  # the server kernel's TcpExtListenOverflows over the ramp: SYNs a full queue dropped
    syn_retransmits: int = 0  # the clients' TcpExtTCPSynRetrans over the ramp: SYNs sent again after no answer

    @property
    def memory_measured(self) -> bool:
        """Whether the memory figures mean anything: a Slab that grew by nothing or shrank while
        connections were added was moved by other work on the host, not by this load."""
        return self.kernel_bytes is not None and self.kernel_bytes > 0 and self.established > 0

    @property
    def rate_per_s(self) -> float:
        return self.established / self.ramp_s if self.ramp_s > 0 else 0.0

    def per_connection(self, total: int | None) -> float | None:
        return None if total is None or not self.memory_measured else total / self.established

    @property
    def kernel_bytes_per_conn(self) -> float | None:
        return self.per_connection(self.kernel_bytes)

    @property
    def user_bytes_per_conn(self) -> float | None:
        return self.per_connection(self.user_bytes)

    def projection(self) -> int | None:
        """Connections this machine's available memory would hold at the measured cost per connection
        (None when the cost could not be measured: never projected from a bad figure)."""
        if not self.memory_measured:
            return None
        per = (self.kernel_bytes_per_conn or 0) + max(0.0, self.user_bytes_per_conn or 0)
        return int(self.mem_available / per) if per > 0 and self.mem_available else None

    def explain(self) -> str:
        """A few lines for an assertion message or a report."""
        errs = ", ".join(f"{k} x{v}" for k, v in sorted(self.errors.items())) or "none"
        lines = [f"hold {self.requested} on {self.target}: {self.established} established "
                 f"(counted by {self.counted_by}) in {self.ramp_s:.2f} s ({self.rate_per_s:,.0f}/s); "
                 f"{self.held_at_end} still held after {self.held_for_s:.1f} s "
                 f"(lowest {self.lowest_during_hold})",
                 f"  layout: {self.layout}; the port ranges allow {self.port_capacity}",
                 f"  client side held {self.client_held}; errors: {errs}"
                 + (f"; sources out of ports: {', '.join(self.exhausted_sources)}"
                    if self.exhausted_sources else "")
                 + (f"; never attempted {self.not_attempted}" if self.not_attempted else ""),
                 f"  queues: {self.listen_overflows} listen overflows on the server, "
                 f"{self.syn_retransmits} SYN retransmits by the clients"]
        if self.kernel_bytes is not None and not self.memory_measured:
            lines.append(f"  memory per connection: not measurable (Slab changed by {self.kernel_bytes:,} B "
                         f"over {self.established:,} connections: other work on the host moved it)")
        if self.kernel_bytes_per_conn is not None:
            lines.append(f"  memory per connection: kernel {self.kernel_bytes_per_conn:,.0f} B "
                         f"(Slab, both ends), user {self.user_bytes_per_conn or 0:,.0f} B "
                         f"(Pss growth of the load's processes); "
                         f"the {self.mem_available / 2**30:.1f} GiB available would hold "
                         f"~{self.projection() or 0:,} at this cost")
        if self.disturbed:
            lines.append(f"  disturbed by the host: {self.disturbed}")
        if self.conditions:
            lines.append("  conditions: " + ", ".join(f"{k}={v}" for k, v in self.conditions.items()))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(rate_per_s=round(self.rate_per_s, 1),
                    kernel_bytes_per_conn=self.kernel_bytes_per_conn,
                    user_bytes_per_conn=self.user_bytes_per_conn, projection=self.projection())
        return data


@dataclass
class ServerCount:
    """Reads the server-side count of open connections: the agent server's or the kernel's."""

    target: Target
    agent: AgentProcess | None
    latest: int = 0

    @property
    def counted_by(self) -> str:
        return ("the agent server's workers (accepted, not yet closed)" if self.agent else
                f"the kernel of {self.target.host.name} (ESTABLISHED on port {self.target.port} "
                "minus the accept queue)")

    def poll(self, wait_s: float) -> int:
        if self.agent is not None:
            for event in self.agent.events_within(wait_s):
                if event.get("event") == "progress":
                    self.latest = int(event["open"])
            return self.latest
        time.sleep(wait_s)
        sockets = self.target.host.observe(self.target.port)["sockets"]
        self.latest = int(sockets["local_port"].get("ESTABLISHED", 0)) - int(sockets["accept_queue"] or 0)
        return self.latest


def _sources(lab: Lab, sources: list[str] | None) -> list[tuple[str, str]]:
    pairs = [(c.name, ip) for c in lab.clients for ip in c.addresses]
    if sources is None:
        return pairs
    known = dict((ip, host) for host, ip in pairs)
    unknown = [ip for ip in sources if ip not in known]
    if unknown:
        from ..errors import LabSetupError
        raise LabSetupError(f"hold: sources {', '.join(unknown)} are not client addresses of this lab "
                            f"(it has {', '.join(known)})")
    return [(known[ip], ip) for ip in sources]


def _budget(host: LabHost) -> dict[str, int]:
    return dict(host.agent_once("limits"))


def client_ports(host: LabHost) -> int:
    """Ports one source IP of ``host`` has toward one destination (its ip_local_port_range)."""
    rng = host.sysctls(["net.ipv4.ip_local_port_range"])["net.ipv4.ip_local_port_range"]
    return ports_in_range(rng or "0 -1")


def _capacity(lab: Lab, sources: list[tuple[str, str]]) -> int:
    """Connections the port ranges of ``sources`` allow toward one server ip:port."""
    per_host = {host: client_ports(lab.hosts[host]) for host in {h for h, _ in sources}}
    return sum(per_host[host] for host, _ in sources)


TCP_MEM = "net.ipv4.tcp_mem"


def pin_hold_server(lab: Lab) -> None:
    """Queues the ramp cannot overflow: the limit held is the point, not SYN-flood handling."""
    lab.pin("server", {"net.core.somaxconn": str(HOLD_BACKLOG), "net.ipv4.tcp_max_syn_backlog": str(HOLD_BACKLOG)},
            "a fast ramp must not overflow the accept or SYN queue", override=True)


def pin_own_kernel_for_hold(lab: Lab, connections: int) -> None:
    """On hosts whose kernel is the lab's own (vm), a guest's TCP limits are sized to its small RAM:
    the release closes every held connection at once, each an orphan until its FIN is answered, and
    tcp_max_orphans (half the TCP hash: 2,048 in a 384 MB guest) would have the kernel reset them
    (from a quarter of the limit, hence 4 x); TCP memory of that many sockets passes tcp_mem's
    pressure threshold (55 MB in a 1 GB guest). Either marks the figure disturbed, though the hold
    measures ports, not memory; memory_per_connection measures memory, so it leaves the server's
    limits alone and raises only the clients' tcp_mem."""
    if not lab.server.own_kernel:
        return
    lab.pin("all", {"net.ipv4.tcp_max_orphans": str(4 * connections), TCP_MEM: tcp_mem_for(lab, "all", connections)},
            "closing every held connection at once must not run past the guest's orphan and TCP memory limits")


def tcp_mem_for(lab: Lab, role: str, connections: int) -> str:
    """A tcp_mem (pages) with room for ``connections``: 1, 2 and 4 pages each (about 0.4 a connection
    was seen while held, more as they close), and lower than no host of ``role`` has now."""
    wanted = [connections, 2 * connections, 4 * connections]
    for host in lab.hosts_for(role):  # one value for every host, lower than none of theirs
        have = [int(v) for v in (host.sysctls([TCP_MEM])[TCP_MEM] or "0 0 0").split()]
        wanted = [max(a, b) for a, b in zip(wanted, have)]
    return " ".join(map(str, wanted))


def hold(lab: Lab, target: Target | None = None, connections: int = 10_000, for_s: float = 5.0,
        sources: list[str] | None = None, in_flight: int = 256, timeout: float = 5.0,
        deadline_s: float | None = None, subscribe: bool = False,
        during_hold: Callable[[AgentProcess | None, list[AgentProcess]], None] | None = None) -> HoldResult:
    """Ramp to ``connections``, hold ``for_s`` seconds, release; see the module docstring."""
    pairs = _sources(lab, sources)
    deadline_s = deadline_s or max(60.0, connections / 5000)
    client_limits = {c.name: _budget(c) for c in lab.clients if any(h == c.name for h, _ in pairs)}
    server_limits = _budget(lab.server)
    plan = plan_hold(connections, pairs, min(v["budget"] for v in client_limits.values()),
                     server_limits["budget"])
    capacity = _capacity(lab, pairs)
    own_server = target is None
    if target is None:
        pin_hold_server(lab)
        target = start_hold_server(lab, plan.server_workers, push=subscribe)
    pin_own_kernel_for_hold(lab, connections)
    counter = ServerCount(target, target.process if own_server else None)  # type: ignore[arg-type]
    before = _memory(lab, target, own_server)
    clients, clients_pss = _start_clients(lab, plan, target, in_flight, timeout, deadline_s, for_s,
                                          subscribe)
    if before["pss"] is not None:
        before["pss"] += clients_pss
    queues_before = _queue_counters(lab, clients=list(plan.clients))
    start = time.monotonic()
    result = _ramp(lab, plan, clients, counter, start, deadline_s, connections)
    queues = {k: v - queues_before[k] for k, v in _queue_counters(lab, clients=list(plan.clients)).items()}
    after = _memory(lab, target, own_server)
    if after["pss"] is not None:
        after["pss"] += result["clients_pss"]
    samples: list[tuple[float, int]] = result["samples"]
    hold_start = time.monotonic()
    lowest = counter.latest
    if during_hold is not None:
        during_hold(target.process if own_server else None, clients)  # type: ignore[arg-type]
    while time.monotonic() - hold_start < for_s:
        count = counter.poll(min(SAMPLE_EVERY_S, max(0.0, for_s - (time.monotonic() - hold_start))))
        lowest = min(lowest, count)
        samples.append((round(time.monotonic() - start, 2), count))
    held_for = time.monotonic() - hold_start
    held_at_end = counter.poll(0.05) if own_server else counter.poll(0)
    lowest = min(lowest, held_at_end)
    released_at = time.monotonic()
    for proc in clients:
        proc.release()
    for proc in clients:
        next_named(proc, "released", timeout=120)
        proc.stop()
    if own_server:
        target.stop()
    release_s = time.monotonic() - released_at
    return HoldResult(
        target=target.endpoint, requested=connections, established=result["established"],
        held_at_end=held_at_end, lowest_during_hold=lowest, client_held=result["client_held"],
        ramp_s=round(result["ramp_s"], 3), held_for_s=round(held_for, 2), counted_by=counter.counted_by,
        layout=plan.describe(), port_capacity=capacity, errors=result["errors"],
        exhausted_sources=result["exhausted"], not_attempted=result["not_attempted"], samples=samples,
        kernel_bytes=after["slab"] - before["slab"],
        user_bytes=after["pss"] - before["pss"] if before["pss"] is not None and after["pss"] is not None
        else None,
        user_bytes_total=after["pss"], mem_available=before["mem_available"],
        release_s=round(release_s, 2), conditions={k: v for k, v in lab.conditions.items()},
        listen_overflows=queues[LISTEN_OVERFLOWS], syn_retransmits=queues[SYN_RETRANSMITS])


def _queue_counters(lab: Lab, clients: list[str]) -> dict[str, int]:
    """The server's listen overflows and the clients' SYN retransmits, now (their namespaces' counters)."""
    server = lab.server.pressure()["counters"].get(LISTEN_OVERFLOWS, 0)
    retransmits = sum(lab.hosts[name].pressure()["counters"].get(SYN_RETRANSMITS, 0) for name in clients)
    return {LISTEN_OVERFLOWS: int(server), SYN_RETRANSMITS: int(retransmits)}


def start_hold_server(lab: Lab, workers: int, push: bool = False) -> Target:
    """The agent's hold server: ``workers`` processes on one port."""
    args = ["hold-server", "--workers", str(workers), "--backlog", str(HOLD_BACKLOG), "--max-seconds", "3600"]
    proc = lab.server.agent(*args, *(["--push"] if push else []))
    ready = proc.expect("ready", timeout=60)
    return Target(lab.server, lab.server.address, int(ready["port"]), proc, ready)


def _start_clients(lab: Lab, plan: HoldPlan, target: Target, in_flight: int, timeout: float,
                   deadline_s: float, for_s: float, subscribe: bool) -> tuple[list[AgentProcess], int]:
    """Start one hold-clients agent per client host; return them and their memory before the ramp."""
    procs = []
    for host, workers in plan.clients.items():
        procs.append(lab.hosts[host].agent(
            "hold-clients", "--target", target.endpoint, "--plan", json.dumps(workers),
            "--in-flight", str(in_flight), "--timeout", str(timeout), "--deadline", str(deadline_s),
            "--hold", str(deadline_s + for_s + 600), *(["--subscribe"] if subscribe else [])))
    pss = sum(int(proc.expect("ready", timeout=60)["pss"]) for proc in procs)
    return procs, pss


def _ramp(lab: Lab, plan: HoldPlan, clients: list[AgentProcess], counter: ServerCount,
          start: float, deadline_s: float, connections: int) -> dict[str, Any]:
    """Sample the server while the clients ramp; wait for the server's count to settle."""
    opened: dict[int, dict[str, Any]] = {}
    samples: list[tuple[float, int]] = []
    progress_at = start + PROGRESS_EVERY_S
    limit = start + deadline_s + 30
    while len(opened) < len(clients) and time.monotonic() < limit:
        count = counter.poll(SAMPLE_EVERY_S / 2)
        for i, proc in enumerate(clients):
            if i in opened:
                continue
            for event in proc.events_within(0):
                if event.get("event") == "opened":
                    opened[i] = event
        now = time.monotonic()
        samples.append((round(now - start, 2), count))
        if now >= progress_at:
            lab.progress.update(f"hold {connections:,}: {count:,} held on the server after {now - start:.0f} s "
                         f"({count / (now - start):,.0f}/s)")
            progress_at = now + PROGRESS_EVERY_S
    client_held = sum(int(e["held"]) for e in opened.values())
    settle_until = time.monotonic() + 10
    count = counter.poll(0.1)
    while count < client_held and time.monotonic() < settle_until:
        count = counter.poll(0.25)
    ramp_s = max([float(e["ramp_s"]) for e in opened.values()] or [time.monotonic() - start])
    samples.append((round(time.monotonic() - start, 2), count))
    errors = merge_counts(list(opened.values()), "errors")
    return {"samples": samples, "client_held": client_held, "established": count,
            "ramp_s": ramp_s, "errors": errors,
            "exhausted": sorted({s for e in opened.values() for s in e.get("exhausted", [])}),
            "not_attempted": sum(int(e.get("not_attempted", 0)) for e in opened.values()),
            "clients_pss": sum(int(e.get("pss", 0)) for e in opened.values())}


def _memory(lab: Lab, target: Target, own_server: bool) -> dict[str, Any]:
    """Slab and available memory of the lab's kernel; Pss of the agent server (None for yours)."""
    limits = _budget(lab.server)
    pss: int | None = None
    if own_server and isinstance(target.process, AgentProcess):
        target.process.command("sample")
        pss = int(next_named(target.process, "sampled")["pss"])
    return {"slab": limits["slab"], "mem_available": limits["mem_available"], "pss": pss}


def next_named(proc: AgentProcess, name: str, timeout: float = 30.0) -> dict[str, Any]:
    """The next event called ``name``, skipping progress reports."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in proc.events_within(min(1.0, deadline - time.monotonic())):
            if event.get("event") == name:
                return event
    raise TimeoutError(f"no {name!r} event within {timeout:.0f} s")


def most_common_error(result: HoldResult) -> str:
    """The error that ended most of a hold's failed connects, or no error."""
    if not result.errors:
        return NO_ERROR
    return max(result.errors.items(), key=lambda kv: kv[1])[0]


def hold_evidence(result: HoldResult) -> dict[str, object]:
    """A hold's result as evidence, with the first line of its explanation as the how."""
    return {"hold": result.to_json(), "how": result.explain().splitlines()[0]}


__all__ = ["HoldResult", "client_ports", "hold", "hold_evidence", "most_common_error", "start_hold_server"]
