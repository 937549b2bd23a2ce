"""The one grammar of sysctl keys, for every place a key enters: profiles, pins, markers,
the emulation map and every provider.

A key is a dotted name of parts made of ``[a-z0-9_-]`` (no empty part, no ``/``, no
``..``) under a subtree the provider may change. Namespace providers (netns, docker)
share the host's kernel, so only ``net.*`` keys are theirs, and of those only the ones a
child network namespace owns: the host-wide ones are refused with the reason. The agent
checks the path again before it opens anything (``agent/sysctl.py``).
"""
from __future__ import annotations

import re

from ..errors import SysctlKeyError

PART = re.compile(r"[a-z0-9_-]+")
NAMESPACE_ROOTS = ("net",)  # what a lab that shares the host's kernel may set
MAX_KEY_LENGTH = 200
# net.* keys that a child network namespace cannot set: read-only there, or absent, or shared by
# every namespace of the kernel. A lab never changes them silently.
HOST_GLOBAL_SYSCTLS = frozenset({
    "net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_buckets", "net.ipv4.tcp_mem",
    "net.ipv4.tcp_max_orphans", "net.core.netdev_max_backlog", "net.nf_conntrack_max",
    "net.ipv4.udp_mem", "net.core.netdev_budget",
})

# Kernel-wide keys outside net.* that a profile may set for a lab host with a kernel of its own (vm).
KERNEL_WIDE_FS = frozenset({"fs.nr_open", "fs.file-max", "fs.epoll.max_user_watches"})
KERNEL_WIDE = HOST_GLOBAL_SYSCTLS | KERNEL_WIDE_FS
PROFILE_ROOTS = ("net", "fs")


def is_kernel_wide(key: str) -> bool:
    """True for a key whose value is the whole kernel's, settable only on a host with its own kernel."""
    return key in KERNEL_WIDE


def check_key(key: object, roots: tuple[str, ...] = NAMESPACE_ROOTS) -> str:
    """``key`` when it is a well-formed sysctl name under one of ``roots``; SysctlKeyError otherwise."""
    if not isinstance(key, str):
        raise SysctlKeyError(f"a sysctl key is a string, got {type(key).__name__}")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise SysctlKeyError(f"a sysctl key has 1 to {MAX_KEY_LENGTH} characters")
    parts = key.split(".")
    bad = next((p for p in parts if not PART.fullmatch(p)), None)
    if bad is not None or len(parts) < 2:
        what = "an empty part" if bad == "" else (f"the part {bad!r}" if bad is not None else "one part")
        raise SysctlKeyError(f"{key!r} is not a sysctl key ({what}): a key is dotted parts of a-z, 0-9, "
                             "'_' and '-', e.g. net.ipv4.tcp_fin_timeout")
    if parts[0] not in roots:
        raise SysctlKeyError(f"{key!r} is not under {', '.join(r + '.' for r in roots)}: only network "
                             "namespace (net.*) sysctls belong to a lab; other keys are host-wide and a lab "
                             "never changes them")
    return key


def check_profile_key(key: object) -> str:
    """A key a profile may name: a lab key, or a kernel-wide one (applied only where the lab host's kernel
    is its own; namespace providers refuse it when the lab is made)."""
    if isinstance(key, str) and key in KERNEL_WIDE:
        return key
    return check_lab_key(key)


def check_lab_key(key: object, roots: tuple[str, ...] = NAMESPACE_ROOTS, own_kernel: bool = False) -> str:
    """``check_key``, and refuse the net.* keys a child network namespace shares with the host (unless
    the host's kernel is its own: then the kernel-wide keys are its settings)."""
    if own_kernel and isinstance(key, str) and key in KERNEL_WIDE:
        return key
    checked = check_key(key, roots)
    if roots == NAMESPACE_ROOTS and checked in HOST_GLOBAL_SYSCTLS:
        raise SysctlKeyError(f"{checked} is host-wide (read-only or absent in a lab namespace, shared by "
                             "every namespace of the kernel); connlab never changes it silently; it is a setting "
                             "on a lab whose hosts have their own kernel (--lab-provider vm)")
    return checked
