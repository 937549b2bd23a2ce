"""Observer role: TCP socket states and kernel counters of the host's network namespace."""
from __future__ import annotations

import os
import time
from collections import Counter

from .sockdiag import listeners

USER_HZ = 100  # /proc/net/tcp reports timers in clock ticks
# This thread's namespace: /proc/net is /proc/self/net, the namespace of the process's first thread, but
# a controller's thread may have entered a lab namespace to read it (kernels before 3.17: /proc/net)
PROC_NET = "/proc/thread-self/net" if os.path.isdir("/proc/thread-self/net") else "/proc/net"
# include/net/tcp_states.h
TCP_STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
    6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
}


def _tcp_rows(path: str) -> list[list[str]]:
    """Rows of /proc/net/tcp or tcp6 (missing file: no rows)."""
    try:
        with open(path) as f:
            return [line.split() for line in f.readlines()[1:]]
    except FileNotFoundError:
        return []


def socket_states(port: int | None = None) -> dict[str, object]:
    """Count sockets by TCP state; with ``port``, split by local/remote port and read the
    listener's accept queue (for a LISTEN socket the rx_queue column is sk_ack_backlog)."""
    states: Counter[str] = Counter()
    local: Counter[str] = Counter()
    remote: Counter[str] = Counter()
    accept_queue: int | None = None
    tw_left: list[float] = []
    for path in (f"{PROC_NET}/tcp", f"{PROC_NET}/tcp6"):
        for row in _tcp_rows(path):
            state = TCP_STATES.get(int(row[3], 16), row[3])
            states[state] += 1
            if port is None:
                continue
            lport = int(row[1].rsplit(":", 1)[1], 16)
            rport = int(row[2].rsplit(":", 1)[1], 16)
            if lport == port:
                local[state] += 1
                if state == "LISTEN":
                    accept_queue = int(row[4].split(":")[1], 16)
            if rport == port:
                remote[state] += 1
                if state == "TIME_WAIT":
                    tw_left.append(int(row[5].split(":")[1], 16) / USER_HZ)
    backlogs = [backlog for lport, _, backlog in listeners() if lport == port] if port is not None else []
    return {"all": dict(states), "local_port": dict(local), "remote_port": dict(remote),
            "accept_queue": accept_queue, "listen_backlog": max(backlogs) if backlogs else None,
            "time_wait_left_s": [min(tw_left), max(tw_left)] if tw_left else None}


def _paired_counters(path: str) -> dict[str, int]:
    """Parse /proc/net/netstat or /proc/net/snmp: header line, value line, per prefix."""
    out: dict[str, int] = {}
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return out
    for head, values in zip(lines[0::2], lines[1::2]):
        prefix, names = head.split(":", 1)
        _, nums = values.split(":", 1)
        for name, num in zip(names.split(), nums.split()):
            try:
                out[f"{prefix}{name}"] = int(num)
            except ValueError:
                continue
    return out


def counters() -> dict[str, int]:
    """TcpExt*, IpExt*, Tcp*, Ip* ... counters of this namespace."""
    merged = _paired_counters(f"{PROC_NET}/netstat")
    merged.update(_paired_counters(f"{PROC_NET}/snmp"))
    return merged


def conntrack_stats() -> dict[str, int] | None:
    """The conntrack table's own counters summed over CPUs (/proc/net/stat/nf_conntrack): ``drop`` counts
    packets dropped because the table was full, ``early_drop`` entries evicted to make room."""
    try:
        with open(f"{PROC_NET}/stat/nf_conntrack") as f:
            header, *rows = [line.split() for line in f if line.strip()]
    except (OSError, ValueError):
        return None
    totals = dict.fromkeys(header, 0)
    for row in rows:
        for name, value in zip(header, row):
            totals[name] += int(value, 16)
    totals.pop("entries", None)  # the same global count on every row, not a per-CPU counter
    return totals


def conntrack_count() -> int | None:
    """Entries in this namespace's conntrack table, when conntrack is loaded."""
    try:
        with open("/proc/sys/net/netfilter/nf_conntrack_count") as f:
            return int(f.read())
    except (FileNotFoundError, ValueError):
        return None


def _int_fields(path: str) -> list[int] | None:
    """The whitespace-separated integers of a /proc file, or None when it is not there."""
    try:
        with open(path) as f:
            return [int(v) for v in f.read().split()]
    except (FileNotFoundError, ValueError):
        return None


def _sockstat_tcp() -> dict[str, int]:
    """The ``TCP:`` line of /proc/net/sockstat: inuse and tw are this namespace's, orphan, alloc
    and mem (pages) the whole kernel's."""
    try:
        with open(f"{PROC_NET}/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    words = line.split()[1:]
                    return {k: int(v) for k, v in zip(words[0::2], words[1::2])}
    except (FileNotFoundError, ValueError):
        pass
    return {}


def pressure() -> dict[str, object]:
    """Kernel-wide state shared by every namespace that can distort a lab's figures: orphaned TCP
    sockets against tcp_max_orphans, TCP memory against tcp_mem, and the host's free memory.
    tcp_max_orphans and tcp_mem are visible only in the initial namespace: None elsewhere."""
    tcp = _sockstat_tcp()
    max_orphans = _int_fields("/proc/sys/net/ipv4/tcp_max_orphans")
    memory: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("MemTotal", "MemAvailable"):
                    memory[key] = int(rest.split()[0]) * 1024
    except (FileNotFoundError, ValueError):
        pass
    return {"orphans": tcp.get("orphan"), "tcp_mem_pages": tcp.get("mem"),
            "time_wait": tcp.get("tw"), "in_use": tcp.get("inuse"),  # these two: this namespace's own
            "max_orphans": max_orphans[0] if max_orphans else None,
            "tcp_mem": _int_fields("/proc/sys/net/ipv4/tcp_mem"),
            "mem_available": memory.get("MemAvailable"), "mem_total": memory.get("MemTotal")}


def pressure_reading() -> dict[str, object]:
    """The ``pressure`` role's event: the shared kernel state and this namespace's counters."""
    return {"event": "pressure", "pressure": pressure(), "counters": counters()}


def observe(port: int | None) -> dict[str, object]:
    """Everything the observer reads, in one snapshot."""
    return {"sockets": socket_states(port), "counters": counters(),
            "conntrack_count": conntrack_count(), "conntrack_stats": conntrack_stats(), "pressure": pressure(),
            "pid": os.getpid()}


def first_time_wait(port: int, count: int, within_s: float, every_s: float = 0.01) -> dict[str, object]:
    """Poll (every ``every_s``, at most ``within_s``) until ``count`` connections to ``port`` are in
    TIME_WAIT, then snapshot: started before the connections close, the timers are read within one
    poll of their start, however slow the host is to start a process."""
    deadline = time.monotonic() + within_s
    while True:
        seen = socket_states(port)
        remote = seen["remote_port"]
        tw = remote.get("TIME_WAIT", 0) if isinstance(remote, dict) else 0
        if tw >= count or time.monotonic() >= deadline:
            return {"sockets": seen, "waited_s": round(within_s - max(0.0, deadline - time.monotonic()), 3)}
        time.sleep(every_s)
