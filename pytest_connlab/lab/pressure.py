"""Host pressure: kernel-wide state that every namespace shares and that can distort a lab's figures.

TCP orphans and TCP memory are counted for the whole kernel, not per namespace: other
work on the machine (or another lab) that holds many orphaned connections makes the
kernel reset closing connections of this lab too ("too many orphaned sockets",
TcpExtTCPAbortOnMemory), and a figure measured then is not the limit the profile
names. A probe's observation is "disturbed" when, before or after it, the host is past
one of these thresholds, or when a counter of trouble moved on a lab host meanwhile:

- orphans x 4 > tcp_max_orphans. tcp_too_many_orphans() shifts the orphan count left by
  up to 2 as a socket keeps retransmitting (tcp_out_of_resources), so resets begin at a
  quarter of the limit (net/ipv4/tcp_timer.c);
- TCP memory (sockstat mem, pages) above tcp_mem's pressure threshold (its second value);
- MemAvailable under 5 % of MemTotal;
- TcpExtTCPAbortOnMemory or TcpExtTCPMemoryPressures grew on any lab host during the probe.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .labhost import LabHost

TROUBLE_COUNTERS = ("TcpExtTCPAbortOnMemory", "TcpExtTCPMemoryPressures")
ORPHAN_SHIFT = 2  # the most tcp_too_many_orphans() shifts by: resets start at max_orphans >> 2
LOW_MEMORY_FRACTION = 0.05


def _local_ints(name: str) -> list[int] | None:
    """A kernel-wide sysctl of this machine (the controller's), for labs that share its kernel."""
    try:
        return [int(v) for v in Path("/proc/sys/net/ipv4", name).read_text().split()]
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Pressure:
    """One host's reading of the shared kernel state, and its trouble counters."""

    host: str
    orphans: int | None
    max_orphans: int | None
    tcp_mem_pages: int | None
    tcp_mem_pressure: int | None
    mem_available: int | None
    mem_total: int | None
    counters: dict[str, int]

    @classmethod
    def of(cls, name: str, seen: dict[str, Any]) -> Pressure:
        """From an agent observation; thresholds a namespace cannot see come from this machine."""
        p = seen.get("pressure") or {}
        max_orphans = p.get("max_orphans")
        if max_orphans is None:
            local = _local_ints("tcp_max_orphans")
            max_orphans = local[0] if local else None
        tcp_mem = p.get("tcp_mem") or _local_ints("tcp_mem")
        counters = seen.get("counters") or {}
        return cls(name, p.get("orphans"), max_orphans, p.get("tcp_mem_pages"),
                   tcp_mem[1] if tcp_mem and len(tcp_mem) == 3 else None,
                   p.get("mem_available"), p.get("mem_total"),
                   {k: int(counters.get(k, 0)) for k in TROUBLE_COUNTERS})

    def problems(self) -> list[str]:
        """What is past a threshold in this reading (empty: nothing)."""
        out = []
        if self.orphans is not None and self.max_orphans and self.orphans << ORPHAN_SHIFT > self.max_orphans:
            out.append(f"the host holds {self.orphans:,} orphaned TCP sockets (tcp_max_orphans "
                       f"{self.max_orphans:,}; the kernel resets closing connections from "
                       f"{self.max_orphans >> ORPHAN_SHIFT:,})")
        if self.tcp_mem_pages is not None and self.tcp_mem_pressure and self.tcp_mem_pages > self.tcp_mem_pressure:
            out.append(f"TCP memory {self.tcp_mem_pages:,} pages is past tcp_mem's pressure threshold "
                       f"{self.tcp_mem_pressure:,}")
        if self.mem_available is not None and self.mem_total and \
                self.mem_available < self.mem_total * LOW_MEMORY_FRACTION:
            out.append(f"the host has {self.mem_available / 2**20:,.0f} MiB available of "
                       f"{self.mem_total / 2**20:,.0f} MiB")
        return out


def read(hosts: list[LabHost]) -> list[Pressure]:
    """One reading per host (the kernel-wide part is the same on hosts that share a kernel)."""
    return [Pressure.of(h.name, h.pressure()) for h in hosts]


def disturbance(before: list[Pressure], after: list[Pressure]) -> str:
    """Why a probe between these readings is disturbed by the host, or "" when it is not."""
    reasons: list[str] = []
    for when, readings in (("before", before), ("after", after)):
        for problem in dict.fromkeys(p for r in readings for p in r.problems()):
            reasons.append(f"{when} the probe {problem}")
    old = {r.host: r for r in before}
    for r in after:
        if r.host not in old:
            continue
        for key in TROUBLE_COUNTERS:
            grew = r.counters.get(key, 0) - old[r.host].counters.get(key, 0)
            if grew > 0:
                reasons.append(f"{key} +{grew} on {r.host} during the probe")
    return "; ".join(reasons)
