"""outbound_half_open: how many outbound connects may wait for an answer at once.

XP SP2 lets 10 outbound connects be incomplete at once and queues the rest
(event 4226) [Ev4226]; Vista SP2 and later have it off unless
EnableConnectionRateLimiting=1 [KB969710]. The client starts connects to a
black-holed port of the server, whose SYNs are never answered; the server counts
the distinct connections whose SYN reached it. Then, with those slots still
held, a connect to a live server is started: it waits (delayed, not failed) until
the black-holed connects are closed, and completes as soon as a slot frees.

Emulation (lab-wide, profiles.emulation HALF_OPEN_OUTBOUND): the half-open-outbound
watcher of every host holds SYNs past the cap in an NFQUEUE; its counters are the
evidence of what waited.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..profiles.emulation import HALF_OPEN_OUTBOUND, nft_chain
from ..report.observation import NO_ERROR, Observation
from .common import expectation, nft_set_size, observation, start_agent_server

if TYPE_CHECKING:
    from ..lab.lab import Lab
    from ..lab.providers.agentproc import AgentProcess

LIMIT = "outbound_half_open"
BLACK_HOLE_PORT = 9  # discard; the server drops every packet to it
WATCHER = "half-open-outbound"


def _black_hole(lab: Lab) -> None:
    lab.load_nft(lab.server, [
        "set syn_seen { type ipv4_addr . inet_service; size 65535; flags dynamic; }",
        nft_chain("black_hole", "input",
                  [f"tcp dport {BLACK_HOLE_PORT} add @syn_seen {{ ip saddr . tcp sport }} drop"]),
    ])


def _watcher_stats(watcher: AgentProcess | None) -> dict[str, Any]:
    """The counters of the client's half-open watcher now (empty without a cap)."""
    if watcher is None:
        return {}
    watcher.command("stats")
    return dict(watcher.expect("stats", timeout=10))


def outbound_half_open(lab: Lab, connects: int = 20, settle_s: float = 1.5, live_wait_s: float = 1.0,
                       bound_s: float = 30.0) -> Observation:
    """Count SYNs that leave for a black hole; then time a connect to a live server meanwhile."""
    client = lab.clients[0]
    cap = lab.emulated.get(HALF_OPEN_OUTBOUND)
    watcher = lab.watcher(WATCHER, client) if cap else None
    exp = expectation(lab, LIMIT, (cap, f"the lab-wide watcher of {cap} half-open connects per host" if cap else
                                   "no half-open outbound cap in this profile's settings"),
                      lab_endings=(NO_ERROR,))  # nothing fails here: a failure is a finding
    server = start_agent_server(lab, "close")
    _black_hole(lab)
    before = _watcher_stats(watcher)
    start = time.monotonic()
    burst = client.agent("burst", "--target", f"{lab.server.address}:{BLACK_HOLE_PORT}", "--sources",
                         client.address, "--count", str(connects), "--settle", str(settle_s), "--hold", "60",
                         "--check", "0")
    states = burst.expect("burst", timeout=settle_s + 30)["states"]
    reached = nft_set_size(lab, lab.server, "syn_seen") or 0
    live = client.agent("open", "--target", server.endpoint, "--sources", client.address, "--count", "1",
                        "--timeout", str(bound_s), "--deadline", str(bound_s), "--hold", "60")
    time.sleep(live_wait_s)  # the live connect waits behind the black-holed ones meanwhile
    burst.release()  # closing the black-holed connects frees their slots (and drops the waiting ones)
    burst.expect("released", timeout=30)
    burst.stop()
    opened = live.expect("opened", timeout=bound_s + 30)
    live.stop()
    after = _watcher_stats(watcher)
    duration = time.monotonic() - start
    server.stop()
    waited = {k: after[k] - before.get(k, 0) for k in ("syns", "waited", "duplicates_dropped",
                                                        "closed_while_waiting")} if after else {}
    result = {"completed": opened["established"] == 1, "after_s": opened["elapsed_s"],
              "error": opened["errors"][0]["name"] if opened["errors"] else None}
    evidence = {"connects_to_black_hole": connects, "client_states": states,
                "syns_that_reached_the_server": reached, "watcher": waited,
                "connects_that_waited": waited.get("waited", 0), "live_connect_meanwhile": result,
                "how": (f"{reached} connects sent their SYN; {waited.get('waited', 0)} waited in the "
                        f"client's queue (the live one too, {result['after_s']} s, until the "
                        f"black-holed connects were closed after {live_wait_s} s)" if cap else
                        f"{reached} of {connects} SYNs left at once")}
    return observation(lab, LIMIT, exp, observed=reached, ended_by=NO_ERROR, bound=connects,
                       duration_s=duration, evidence=evidence)
