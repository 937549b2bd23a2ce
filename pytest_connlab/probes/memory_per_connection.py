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

from ..errors import LabSetupError
from ..report.observation import NO_ERROR, Observation
from .common import expectation, observation, pin_measuring_server
from .hold import hold, most_common_error

if TYPE_CHECKING:
    from ..lab.lab import Lab

BYTES_FLOOR = 1500  # no idle connection costs less kernel memory than this: bounds the ramp
OOM_LINE = re.compile(r"Out of memory: Killed process \d+ \(([^)]*)\)[^\n]*")
TCP_OOM_LINE = re.compile(r"TCP: out of memory[^\n]*")
WIDE_PORTS = "1024 65535"


def _console_endings(text: str) -> dict[str, Any]:
    """What the guest's kernel said about memory on its console."""
    oom = OOM_LINE.findall(text)
    return {"oom_killed": oom, "oom_lines": [m.group(0).strip() for m in OOM_LINE.finditer(text)][-3:],
            "tcp_out_of_memory": [m.group(0).strip() for m in TCP_OOM_LINE.finditer(text)][-3:]}


def memory_per_connection(lab: Lab, deadline_s: float = 600.0, in_flight: int = 256,
                          connect_timeout: float = 3.0) -> Observation:
    """Ramp idle connections to a server with its own RAM until it can hold no more; report the peak,
    how it ended (persistent error, OOM kill, deadline) and the kernel bytes per connection."""
    if not lab.server.own_kernel:
        raise LabSetupError("memory_per_connection needs a server with its own RAM (--lab-provider vm); "
                            f"the {lab.provider.name} provider's hosts share this machine's memory")
    limits = lab.server.agent_once("limits")
    mem_total = int(limits.get("mem_total") or 0)
    console = getattr(lab.server.host, "console_tail", None)
    console_before = console(200_000) if console else ""
    bound = max(1000, mem_total // BYTES_FLOOR)
    for client in lab.clients:
        lab.set_sysctls(client, {"net.ipv4.ip_local_port_range": WIDE_PORTS})
    lab.conditions["client:net.ipv4.ip_local_port_range"] = f"{WIDE_PORTS} (enough ports to reach the RAM's limit)"
    pin_measuring_server(lab)
    exp = expectation(lab, "memory_per_connection", (None, "no documented figure: measured in a guest of "
                                                     f"{mem_total // 2**20} MiB"))
    start = time.monotonic()
    result = hold(lab, connections=bound, for_s=1.0, in_flight=in_flight, timeout=connect_timeout,
                  deadline_s=deadline_s)
    duration = time.monotonic() - start
    console_after = console(200_000) if console else ""
    said = _console_endings(console_after[len(console_before):] if console_after.startswith(console_before)
                            else console_after)
    peak = max([count for _, count in result.samples] + [result.established])
    if said["oom_killed"]:
        ended_by = f"OOM kill ({said['oom_killed'][-1]})"
    elif result.errors:
        ended_by = most_common_error(result)
    elif result.established >= bound:
        ended_by = f"no error within {bound}"
    else:
        ended_by = NO_ERROR if not result.not_attempted else f"deadline {deadline_s:.0f} s"
    per_conn = result.kernel_bytes_per_conn
    evidence = {
        "mem_total": mem_total, "mem_available_before": result.mem_available, "peak_held": peak,
        "held_at_end": result.held_at_end, "kernel_bytes_per_connection": per_conn,
        "console": said, "accelerator": getattr(lab.server.host, "accel", ""),
        "samples": result.samples[-200:], "errors": result.errors,
        "projection_per_gib": int(2**30 / per_conn) if per_conn else None,
        "how": (f"a {mem_total // 2**20} MiB server held at most {peak:,} idle connections; "
                f"{ended_by}" + (f"; {per_conn:,.0f} B of kernel memory each" if per_conn else "")),
    }
    if getattr(lab.server.host, "accel", "") == "tcg":
        evidence["rates"] = "measured on TCG (qemu's software CPU): rates and times are slower than hardware"
    return observation(lab, "memory_per_connection", exp, observed=peak, ended_by=ended_by, bound=bound,
                       duration_s=duration, evidence=evidence)
