"""outbound_half_open: how many outbound connects may wait for an answer at once.

XP SP2 lets 10 outbound connects be incomplete at once and queues the rest
(event 4226) [Ev4226]; Vista SP2 and later have it off unless
EnableConnectionRateLimiting=1 [KB969710]. The client starts connects to a
black-holed port of the server, whose SYNs are never answered; the server counts
the distinct connections whose SYN reached it. Then, with those slots still
held, one connect to a live server shows the queueing: delayed, not failed.

Emulation (probe-scoped, it throttles every connect of the host): an nft set of
half-open connections of the cap's size on the client, entries timing out after
Windows' give-up time (TcpMaxConnectRetransmissions 2, initial RTO 3 s: 21 s),
scaled by ``time_scale`` and printed.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..profiles.emulation import HALF_OPEN_OUTBOUND, half_open_outbound_rules, nft_chain
from ..report.observation import NO_ERROR, Observation
from .common import expectation, nft_counter, nft_set_size, observation, start_agent_server

if TYPE_CHECKING:
    from ..lab.lab import Lab
    from ..lab.labhost import LabHost

LIMIT = "outbound_half_open"
BLACK_HOLE_PORT = 9  # discard; the server drops every packet to it
WINDOWS_GIVE_UP_S = 21.0  # 3 + 6 + 12 s: TcpMaxConnectRetransmissions 2, initial RTO 3 s [KB314053]


def _black_hole(lab: Lab) -> None:
    lab.load_nft(lab.server, [
        "set syn_seen { type ipv4_addr . inet_service; size 65535; flags dynamic; }",
        nft_chain("black_hole", "input",
                  [f"tcp dport {BLACK_HOLE_PORT} add @syn_seen {{ ip saddr . tcp sport }} drop"]),
    ])


def _live_connect(client: LabHost, endpoint: str, bound_s: float) -> dict[str, object]:
    proc = client.agent("open", "--target", endpoint, "--sources", client.address, "--count", "1",
                        "--timeout", str(bound_s), "--deadline", str(bound_s), "--hold", "60")
    opened = proc.expect("opened", timeout=bound_s + 30)
    proc.stop()
    return {"completed": opened["established"] == 1, "after_s": opened["elapsed_s"],
            "error": opened["errors"][0]["name"] if opened["errors"] else None}


def outbound_half_open(lab: Lab, connects: int = 20, time_scale: float = 0.25, settle_s: float = 1.5) -> Observation:
    """Count SYNs that leave for a black hole; then time a connect to a live server."""
    client = lab.clients[0]
    cap = lab.emulated.get(HALF_OPEN_OUTBOUND)
    give_up_s = WINDOWS_GIVE_UP_S * time_scale
    exp = expectation(lab, LIMIT, (cap, f"the client's nft set of {cap} half-open connects" if cap else
                                   "no half-open outbound cap in this profile's settings"),
                      lab_endings=(NO_ERROR,))  # nothing fails here: a failure is a finding
    server = start_agent_server(lab, "close")
    _black_hole(lab)
    if cap:
        lab.load_nft(client, half_open_outbound_rules(cap, int(give_up_s * 1000)))
    start = time.monotonic()
    burst = client.agent("burst", "--target", f"{lab.server.address}:{BLACK_HOLE_PORT}", "--sources",
                         client.address, "--count", str(connects), "--settle", str(settle_s), "--hold", "60",
                         "--check", "0")
    states = burst.expect("burst", timeout=settle_s + 30)["states"]
    reached = nft_set_size(lab, lab.server, "syn_seen") or 0
    held_back = nft_counter(lab, client, "held_back") if cap else 0
    burst.release()  # closing a SYN_SENT socket sends nothing: its slot stays taken until it times out
    burst.expect("released", timeout=30)
    burst.stop()
    live = _live_connect(client, server.endpoint, bound_s=give_up_s * 3 + 10)
    duration = time.monotonic() - start
    server.stop()
    evidence = {"connects_to_black_hole": connects, "client_states": states,
                "syns_that_reached_the_server": reached, "syns_held_back": held_back,
                "live_connect_meanwhile": live,
                "time_scale": f"give-up {WINDOWS_GIVE_UP_S:.0f} s x {time_scale} = {give_up_s:.2f} s",
                "how": (f"{reached} connections sent their SYN; the rest were held back by the "
                        f"emulated cap and retried by the kernel; a live connect waited "
                        f"{live['after_s']} s for a slot" if cap else
                        f"{reached} of {connects} SYNs left at once")}
    return observation(lab, LIMIT, exp, observed=reached, ended_by=NO_ERROR, bound=connects,
                       duration_s=duration, evidence=evidence)
