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
