"""memory_per_connection: how many idle connections a server of N MB holds, and what each costs.

Needs a server with its own RAM (the vm provider: the guest's memory is the box's). The
clients ramp idle connections to the server until the first persistent error, the OOM
kill of the holding process, or the deadline; the server's count is sampled all along
(the peak is the observation). The guest's serial console says how it ended: the
kernel's "Out of memory: Killed process" or "TCP: out of memory" lines are quoted in
the evidence. The kernel memory per connection (Slab growth, both the server's sockets
and its descriptor) projects what other RAM sizes would hold.
"""
from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from ..errors import AgentError, LabSetupError
from ..report.observation import Observation
from .common import expectation, observation
from .hold import TCP_MEM, _start_clients, pin_hold_server, start_hold_server, tcp_mem_for
from .holdplan import plan_hold

if TYPE_CHECKING:
    from ..lab.lab import Lab
    from ..lab.providers.agentproc import AgentProcess
    from ..lab.target import Target

BYTES_FLOOR = 1500  # no idle connection costs less kernel memory than this: bounds the ramp
PANIC_LINE = re.compile(r"Kernel panic[^\n]*")
MEMORY_ENDINGS = ("OOM kill", "kernel panic", "tcp_mem")  # what ends a box that runs out of memory
OOM_LINE = re.compile(r"Out of memory: Killed process \d+ \(([^)]*)\)[^\n]*")
TCP_OOM_LINE = re.compile(r"TCP: out of memory[^\n]*")
WIDE_PORTS = "1024 65535"
SLAB_EVERY_S = 10.0
EPOLL_WATCHES = "4194304"
ABORT_ON_MEMORY = "TcpExtTCPAbortOnMemory"
CLIENT_ENDING = ("held", "errors", "exhausted", "not_attempted", "unfinished", "ramp_s")
PORT_RANGE = "net.ipv4.ip_local_port_range"
IN_FLIGHT = 256  # connects in flight per client
NIC_STALL = re.compile(r"[^\n]*(?:NETDEV WATCHDOG|TX timeout)[^\n]*")


def _console_endings(text: str) -> dict[str, Any]:
    """What the guest's kernel said about memory on its console."""
    oom = OOM_LINE.findall(text)
    return {"oom_killed": oom, "panic": [m.group(0).strip() for m in PANIC_LINE.finditer(text)][-2:],
            "oom_lines": [m.group(0).strip() for m in OOM_LINE.finditer(text)][-3:],
            "tcp_out_of_memory": [m.group(0).strip() for m in TCP_OOM_LINE.finditer(text)][-3:]}


def memory_per_connection(lab: Lab, deadline_s: float = 600.0, in_flight: int = IN_FLIGHT,
                          connect_timeout: float = 3.0, plateau_s: float = 20.0) -> Observation:
    """Ramp idle connections to a server with its own RAM until it can hold no more; report the peak,
    how it ended (the OOM kill of the holder, no growth for ``plateau_s`` while clients keep
    connecting, or the deadline) and the kernel bytes each connection cost the server."""
    if not lab.server.own_kernel:
        raise LabSetupError("memory_per_connection needs a server with its own RAM (--lab-provider vm); "
                            f"the {lab.provider.name} provider's hosts share this machine's memory")
    before = lab.server.agent_once("limits")
    mem_total = int(before.get("mem_total") or 0)
    consoles_before = _consoles(lab)
    sources = sum(len(c.addresses) for c in lab.clients)
    # past half its range a source's every connect() walks the used even ports first (port parity),
    # which on a software CPU stalls the ramp: no source is planned past half of WIDE_PORTS
    low, high = (int(x) for x in WIDE_PORTS.split())
    bound = max(1000, min(mem_total // BYTES_FLOOR, sources * ((high - low + 1) // 2)))
    for client in lab.clients:
        lab.set_sysctls(client, {PORT_RANGE: WIDE_PORTS})
    if all(c.own_kernel for c in lab.clients):  # the server's RAM is measured, not the clients' TCP memory
        lab.pin("client", {TCP_MEM: tcp_mem_for(lab, "client", bound)},
                "the clients' TCP memory must not end the ramp: the server's is what is measured")
    lab.conditions["client:net.ipv4.ip_local_port_range"] = f"{WIDE_PORTS} (enough ports to reach the RAM's limit)"
    # the epoll watch cap (4% of RAM) would end the agent's servers before memory does: out of the way
    lab.pin("all", {"fs.epoll.max_user_watches": EPOLL_WATCHES}, "the agent's epoll must not end the ramp")
    all_before = {h.name: h.pressure()["counters"] for h in [lab.server, *lab.clients]}
    counters_before = all_before[lab.server.name]
    exp = expectation(lab, "memory_per_connection", (None, "no figure predicted: measured in a guest of "
                                                     f"{mem_total // 2**20} MiB, which memory must end"),
                      lab_endings=MEMORY_ENDINGS)
    pin_hold_server(lab)
    server = start_hold_server(lab, workers=1)
    pairs = [(c.name, a) for c in lab.clients for a in c.addresses]
    plan = plan_hold(bound, pairs, min(int(c.agent_once("limits")["budget"]) for c in lab.clients),
                     int(before["budget"]))
    clients, _ = _start_clients(lab, plan, server, in_flight, connect_timeout, deadline_s, 1.0, False)
    ramp = _Ramp(time.monotonic(), int(before.get("slab") or 0))
    ramp_end = ramp.run(lab, server, clients, deadline_s, plateau_s)
    at_end = _at_ramp_end(lab)  # before the release: closing every connection at once has costs of its own
    for proc in clients:
        proc.stop()
    try:
        server.stop()
    except AgentError:  # it died (the OOM killer): how is in the console
        pass
    console_news = {name: text.removeprefix(consoles_before.get(name, "")) for name, text in _consoles(lab).items()}
    server_news = console_news[lab.server.name]
    said = _console_endings(server_news)
    try:  # a guest that panicked (nothing left to kill) has no session to read from: the console tells
        counters_after = lab.server.pressure()["counters"]
        tcp_mem = lab.server.sysctls(["net.ipv4.tcp_mem"])["net.ipv4.tcp_mem"]
    except Exception as exc:  # paramiko's SSHException, AgentError, OSError: the guest is gone
        counters_after, tcp_mem = counters_before, f"unread: {type(exc).__name__}"
    aborted = _delta(counters_before, at_end.get("server_counters"), ABORT_ON_MEMORY)
    at_release = _delta(at_end.get("server_counters") or counters_before, counters_after, ABORT_ON_MEMORY)
    over_tcp_mem = _over_tcp_mem(at_end.get("hosts", {}))
    detail = ramp_end
    if said["panic"]:
        ended, detail = "kernel panic", said["panic"][-1]
    elif said["oom_killed"]:
        ended, detail = "OOM kill", f"the OOM killer ended {', '.join(said['oom_killed'])}"
    elif aborted > 0 or said["tcp_out_of_memory"] or over_tcp_mem:
        ended = "tcp_mem"
        detail = "; ".join([f"TCP out of memory: {aborted:,} connections aborted during the ramp"] * (aborted > 0)
                           + [f"{h}: TCP memory {pages:,} pages at its tcp_mem limit {limit:,}"
                              for h, pages, limit in over_tcp_mem]) or "TCP out of memory (console)"
    else:
        ended = ramp_end
    per_conn = ramp.bytes_per_connection
    evidence = {
        "tcp_mem": tcp_mem, "aborted_on_memory": aborted, "aborted_on_memory_at_release": at_release,
        "ending": detail, "ramp_ended": ramp_end, "at_ramp_end": at_end.get("hosts", {}),
        "counters_grown_in_ramp": _grown(all_before, at_end.get("counters", {})),
        "console_during": [line for line in server_news.splitlines() if line.strip()][-20:],
        "clients_at_ramp_end": {name: ramp.client_endings.get(i) for i, name in enumerate(plan.clients)},
        "mem_total": mem_total, "mem_available_before": int(before.get("mem_available") or 0),
        "peak_held": ramp.peak, "kernel_bytes_per_connection": per_conn, "slab_samples": ramp.slab_samples,
        "console": said, "accelerator": getattr(lab.server.host, "accel", ""), "layout": plan.describe(),
        "samples": {"what": "connections the server held", "points": ramp.samples[-300:]},
        "projection_per_gib": int(2**30 / per_conn) if per_conn else None,
        "how": (f"a {mem_total // 2**20} MiB server held at most {ramp.peak:,} idle connections; ended by "
                f"{ended} ({detail})" + (f"; {per_conn:,.0f} B of the server's kernel memory each (Slab growth "
                                           "over the ramp)" if per_conn else "")),
    }
    if getattr(lab.server.host, "accel", "") == "tcg":
        evidence["rates"] = "measured on TCG (qemu's software CPU): rates and times are slower than hardware"
    stalls = evidence["nic_stalls"] = _nic_stalls(console_news)
    obs = observation(lab, "memory_per_connection", exp, observed=ramp.peak, ended_by=ended, bound=bound,
                      duration_s=time.monotonic() - ramp.start, evidence=evidence)
    if stalls and ended not in MEMORY_ENDINGS:  # the emulator, not the box's memory, stopped the ramp
        obs.disturbed = (f"a guest's emulated NIC stopped transmitting during the ramp ({stalls[0]}), and "
                         f"the ramp ended by '{ended}', not by memory: the count is where the emulation "
                         "stalled")
    return obs


def _consoles(lab: Lab) -> dict[str, str]:
    """Every guest's console so far (empty for hosts that have none)."""
    return {h.name: getattr(h.host, "console_tail", lambda limit: "")(200_000) for h in [lab.server, *lab.clients]}


def _nic_stalls(console_news: dict[str, str]) -> list[str]:
    """The lines of each guest's new console output in which its kernel said its NIC's transmit
    queue timed out (virtio-net under qemu's software CPU)."""
    stalls = []
    for name, new in console_news.items():
        stalls += [f"{name}: {m.group(0).strip()}" for m in NIC_STALL.finditer(new)]
    return stalls[:5]


def _at_ramp_end(lab: Lab) -> dict[str, Any]:
    """Every host's TCP memory and sockets, and the server's counters, once the ramp has ended (a
    host that cannot be read, short of memory, is left out)."""
    hosts: dict[str, Any] = {}
    out: dict[str, Any] = {"hosts": hosts}
    for host in [lab.server, *lab.clients]:
        try:
            reading = host.pressure()
        except Exception:  # AgentError, paramiko's SSHException, OSError: a guest short of memory
            continue
        seen = reading["pressure"]
        hosts[host.name] = {"tcp_mem_pages": seen.get("tcp_mem_pages"), "tcp_mem": seen.get("tcp_mem"),
                            "sockets_in_use": seen.get("in_use"), "orphans": seen.get("orphans"),
                            "mem_available": seen.get("mem_available")}
        out.setdefault("counters", {})[host.name] = reading["counters"]
        if host is lab.server:
            out["server_counters"] = reading["counters"]
        else:
            hosts[host.name]["port_range"] = host.sysctls([PORT_RANGE])[PORT_RANGE]
    return out


def _grown(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per host, the kernel counters that grew between the two readings (what the ramp made happen)."""
    grown: dict[str, dict[str, int]] = {}
    for host, counters in after.items():
        was = before.get(host, {})
        moved = {k: int(v) - int(was.get(k, 0)) for k, v in counters.items()
                 if k in was and isinstance(v, int) and int(v) > int(was.get(k, 0))}
        grown[host] = dict(sorted(moved.items()))
    return grown


def _delta(before: dict[str, Any] | None, after: dict[str, Any] | None, key: str) -> int:
    if not before or not after:
        return 0
    return int(after.get(key, 0)) - int(before.get(key, 0))


def _over_tcp_mem(hosts: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host, pages, limit) of each host whose TCP memory reached tcp_mem's hard limit."""
    over = []
    for name, seen in hosts.items():
        limits, pages = seen.get("tcp_mem") or [], seen.get("tcp_mem_pages")
        if len(limits) == 3 and pages is not None and int(pages) >= int(limits[2]):
            over.append((name, int(pages), int(limits[2])))
    return over


class _Ramp:
    """The server's count while the clients ramp: peak, samples, Slab growth per connection."""

    def __init__(self, start: float, slab_before: int) -> None:
        self.start = start
        self.slab_before = slab_before
        self.peak = 0
        self.samples: list[tuple[float, int]] = []
        self.slab_samples: list[tuple[int, int]] = []  # (connections held, Slab bytes)
        self.client_endings: dict[int, dict[str, Any]] = {}  # a client's last progress, then its 'opened' event

    @property
    def bytes_per_connection(self) -> float | None:
        """Slab growth per connection at the largest count it was read at (the server's kernel only:
        the clients are other machines)."""
        rising: list[tuple[int, int]] = []  # the samples while Slab grew with the count (after an OOM kill it falls)
        for count, slab in self.slab_samples:
            if rising and (count <= rising[-1][0] or slab <= rising[-1][1]):
                break
            rising.append((count, slab))
        if len(rising) >= 2:
            (c0, s0), (c1, s1) = rising[0], rising[-1]
            return (s1 - s0) / (c1 - c0)
        if rising and rising[0][0] and rising[0][1] > self.slab_before:
            return (rising[0][1] - self.slab_before) / rising[0][0]
        return None

    def run(self, lab: Lab, server: Target, clients: list[AgentProcess], deadline_s: float,
            plateau_s: float) -> str:
        """Follow the ramp until it ends; return how."""
        grew_at = slab_at = time.monotonic()
        done: set[int] = set()
        count = 0
        while time.monotonic() - self.start < deadline_s:
            try:
                for event in server.process.events_within(0.5):  # type: ignore[union-attr]
                    if event.get("event") == "progress":
                        count = int(event["open"])
            except AgentError:
                return "the holding server died"
            now = time.monotonic()
            self.samples.append((round(now - self.start, 1), count))
            if count > self.peak:
                self.peak, grew_at = count, now
            if now - slab_at > SLAB_EVERY_S and count > 0:
                slab_at = now
                try:
                    self.slab_samples.append((count, int(lab.server.agent_once("limits", timeout=20)["slab"])))
                except Exception:  # AgentError, a timeout, paramiko's EOFError or SSHException: a guest
                    pass  # short of memory may fail a sample; the next one, or the console, tells more
            for i, proc in enumerate(clients):
                try:
                    for event in proc.events_within(0):
                        if event.get("event") == "progress":
                            self.client_endings.setdefault(i, {}).update(held=event.get("held"),
                                                                         pending=event.get("pending"))
                        if event.get("event") == "opened":
                            done.add(i)
                            self.client_endings[i] = {k: event.get(k) for k in CLIENT_ENDING}
                except AgentError as exc:
                    done.add(i)
                    self.client_endings[i] = {"died": str(exc)[:300]}
            if len(done) == len(clients):
                return "no error: every planned connection opened"
            if self.peak and now - grew_at > plateau_s:
                return f"no growth for {plateau_s:.0f} s while the clients kept connecting"
            lab.progress.update(f"memory_per_connection: {count:,} held after {now - self.start:.0f} s")
        return f"deadline {deadline_s:.0f} s"
