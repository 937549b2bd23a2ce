"""tcb_hash: a small TCB hash table (MaxHashTableSize, tcp_child_ehash_entries) is no cap.

The server's namespace is born from a parent with tcp_child_ehash_entries set
(the netns provider does this for the emulation of Tcpip.MaxHashTableSize), or
its guest kernel boots with thash_entries (the vm provider).
The client holds several times more connections than there are buckets, and the
server counts them established. The namespace's birth values show the side
effect: tcp_max_tw_buckets and tcp_max_syn_backlog shrink with the hash.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..report.observation import NO_ERROR, Observation
from .common import expectation, observation, pin_measuring_server, start_agent_server

if TYPE_CHECKING:
    from ..lab.lab import Lab


def tcb_hash(lab: Lab, per_bucket: int = 4, at_least: int = 2000, at_most: int = 16_000) -> Observation:
    """Hold ``per_bucket`` connections per hash bucket (bounded); count them on the server."""
    born = lab.server.birth_report
    buckets = abs(int(born.get("net.ipv4.tcp_ehash_entries") or 0))
    count = max(at_least, min(at_most, buckets * per_bucket)) if born else at_least
    exp = expectation(lab, "tcb_hash", (None, f"{buckets or 'shared'} hash buckets are no cap"),
                      lab_endings=(NO_ERROR,))
    pin_measuring_server(lab)
    server = start_agent_server(lab, "hold")
    client = lab.clients[0]
    start = time.monotonic()
    proc = client.agent("open", "--target", server.endpoint, "--sources", ",".join(client.addresses),
                        "--count", str(count), "--timeout", "3", "--deadline", "120", "--hold", "300")
    opened = proc.expect("opened", timeout=180)
    seen = lab.server.observe(server.port)["sockets"]["local_port"]
    now = lab.server.sysctls(["net.ipv4.tcp_ehash_entries", "net.ipv4.tcp_max_tw_buckets"])
    duration = time.monotonic() - start
    proc.stop()
    server.stop()
    established = int(seen.get("ESTABLISHED", 0))
    errors = opened["errors"]
    evidence = {"hash_buckets": now["net.ipv4.tcp_ehash_entries"], "born_with": born,
                "tcp_max_tw_buckets_now": now["net.ipv4.tcp_max_tw_buckets"],
                "connections_per_bucket": round(established / buckets, 1) if buckets else None,
                "how": (f"{established} connections in {buckets} buckets; the server was born with "
                        f"tcp_max_tw_buckets {born.get('net.ipv4.tcp_max_tw_buckets')}" if born else
                        "the server's namespace shares the host's hash table (tcp_ehash_entries < 0)")}
    return observation(lab, "tcb_hash", exp, observed=established,
                       ended_by=errors[0]["name"] if errors else NO_ERROR, bound=count, duration_s=duration,
                       evidence=evidence)
