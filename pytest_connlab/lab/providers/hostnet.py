"""Addressing a host the provider did not wire itself (docker, vagrant): read its NICs, run ip -batch."""
from __future__ import annotations

from .base import Host, run


def interfaces_by_address(host: Host) -> dict[str, str]:
    """{IPv4 address: interface name} as ``ip -o -4 addr show`` lists them on ``host``."""
    listing = run(host, ["ip", "-o", "-4", "addr", "show"], timeout=30)
    by_address = {}
    for line in listing.stdout.decode().splitlines():
        parts = line.split()
        by_address[parts[3].split("/")[0]] = parts[1].split("@")[0]
    return by_address


def ip_batch(host: Host, commands: list[str]) -> None:
    """Run ``ip -batch -`` with ``commands`` on ``host``; RuntimeError with ip's message on failure."""
    if not commands:
        return
    done = run(host, ["ip", "-batch", "-"], input=("\n".join(commands) + "\n").encode(), timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{host.label}: ip -batch: {done.stderr.decode(errors='replace')}")
