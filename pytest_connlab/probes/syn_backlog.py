"""syn_backlog: a SYN flood whose final ACKs never arrive, then legitimate clients.

The server drops the final ACK from the attacking address, so each attacking
connect leaves a half-open (SYN_RECV) request on the listener. With SYN cookies
off the SYN queue caps at min(backlog + 1, max - max/4 + 1), max being
tcp_max_syn_backlog (the 3/4 rule), and later SYNs, legitimate ones included, are
dropped. With cookies on the queue caps at backlog + 1 and every legitimate
client still completes, answered from a cookie. The count is read on the server.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..report.observation import NO_ERROR, Observation, counter_delta
from .common import drop_final_acks, expectation, observation, second_source, start_agent_server

if TYPE_CHECKING:
    from ..lab.lab import Lab

LIMIT = "syn_backlog"
KEYS = ("net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_syncookies")
COUNTERS = ("TcpExtSyncookiesSent", "TcpExtTCPReqQFullDrop", "TcpExtTCPReqQFullDoCookies",
            "TcpExtListenDrops")


def syn_queue_cap(backlog: int, somaxconn: int, max_syn_backlog: int, syncookies: int) -> int:
    """Half-open requests a Linux listener keeps (net/ipv4/tcp_input.c, tcp_conn_request)."""
    if syncookies == 2:
        return 0
    cap = min(backlog, somaxconn) + 1
    if syncookies == 0:
        cap = min(cap, max_syn_backlog - max_syn_backlog // 4 + 1)
    return cap


def syn_backlog(lab: Lab, attackers: int = 300, legitimate: int = 20, backlog: int = 128,
        settle_s: float = 1.0) -> Observation:
    """Flood the listener with half-open connects, count SYN_RECV, then try legitimate clients."""
    attacker = lab.clients[0]
    legit_host, legit_ip = second_source(lab)
    somaxconn, max_syn, cookies = lab.server.int_sysctls(KEYS).values()
    cap = syn_queue_cap(backlog, somaxconn, max_syn, cookies)
    how = (f"syncookies={cookies}: min(backlog {backlog}, somaxconn {somaxconn}) + 1"
           + (f", max - max/4 + 1 with tcp_max_syn_backlog {max_syn}" if cookies == 0 else ""))
    pending = f"pending after {settle_s:g} s"  # what the agent saw: connects with no answer yet
    # without cookies the SYNs past a full queue are dropped and their connects stay pending
    exp = expectation(lab, LIMIT, (min(cap, attackers), how),
                      lab_endings=(pending,) if cookies == 0 and attackers > cap else (NO_ERROR,))
    server = start_agent_server(lab, "hold", backlog=backlog)
    drop_final_acks(lab, "syn_flood_no_final_ack", attacker.address, server.port)
    before = lab.server.observe(server.port)["counters"]
    start = time.monotonic()
    flood = attacker.agent("burst", "--target", server.endpoint, "--sources", attacker.address,
                           "--count", str(attackers), "--settle", str(settle_s), "--hold", "120")
    flooded = flood.expect("burst", timeout=settle_s + 60)
    during = lab.server.observe(server.port)
    legit = legit_host.agent("burst", "--target", server.endpoint, "--sources", legit_ip,
                             "--count", str(legitimate), "--settle", str(settle_s + 1), "--hold", "120")
    legit_states = legit.expect("burst", timeout=settle_s + 60)["states"]
    duration = time.monotonic() - start
    after = lab.server.observe(server.port)
    legit.stop()
    flood.stop()
    stats = server.stop()
    syn_recv = int(during["sockets"]["local_port"].get("SYN_RECV", 0))
    queue_full = syn_recv >= cap and attackers > cap
    legit_expected = legitimate if (cookies >= 1 or not queue_full) else 0
    flood_states = flooded["states"]
    evidence = {"attackers": attackers, "backlog": backlog, "somaxconn": somaxconn,
                "tcp_max_syn_backlog": max_syn, "syncookies": cookies, "attacker_states": flood_states,
                "legitimate": legitimate, "legitimate_states": legit_states,
                "legitimate_accepted_by_server": stats.get("accepted"),
                "legitimate_expected": legit_expected,
                "how": (f"{syn_recv} half-open requests held; "
                        + ("later SYNs were answered with cookies" if cookies and queue_full else
                           "later SYNs were dropped (the clients keep retrying)" if queue_full else
                           "the flood did not fill the SYN queue"))}
    ended = pending if flood_states.get("pending") else NO_ERROR
    return observation(lab, LIMIT, exp, observed=syn_recv, ended_by=ended, bound=attackers,
                       duration_s=duration,
                       counters=counter_delta(before, after["counters"], COUNTERS),
                       states={"server": during["sockets"]["local_port"]}, evidence=evidence)
