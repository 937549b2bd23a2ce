"""Process limits the agent works within (RLIMIT_NOFILE is 20,000 hard on the lab machines)."""
from __future__ import annotations

import resource

FD_RESERVE = 64  # descriptors kept free for stdio, epoll, pipes and /proc reads


def raise_nofile_to_hard() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the usable socket budget."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return max(1, soft - FD_RESERVE)


def set_nofile(limit: int) -> int:
    """Set this process's soft RLIMIT_NOFILE to ``limit`` (at most the hard limit); return it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def host_limits() -> dict[str, int]:
    """RLIMIT_NOFILE (soft, hard), the socket budget of one process, and the host's memory."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    usable = hard if hard != resource.RLIM_INFINITY else 1 << 20
    memory: dict[str, int] = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("MemTotal", "MemAvailable", "Slab"):
                memory[key] = int(rest.split()[0]) * 1024
    return {"nofile_soft": soft, "nofile_hard": usable, "budget": max(1, usable - FD_RESERVE),
            "mem_total": memory.get("MemTotal", 0), "mem_available": memory.get("MemAvailable", 0),
            "slab": memory.get("Slab", 0)}
