"""keepalive: how a connection learns that its peer vanished.

Two idle connections, one with SO_KEEPALIVE and one without; then the server
vanishes (its host drops every packet of the port) and the server-side nft
counter counts the keepalive probes that arrive. The connection with keepalive
dies after time + interval x probes with ETIMEDOUT; the one without never learns
within the bound. Timers are scaled so the test takes seconds: the idle time to
1 s (2 h would be x 1/7200) and the interval to 1 s; the probe count, the
limit measured, is never scaled. Both scales are printed in the evidence.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..profiles.emulation import nft_chain
from ..report.observation import NO_ERROR, Observation
from .common import expectation, nft_counter, observation, own_or_agent_server, stop_own

if TYPE_CHECKING:
    from ..lab.lab import Lab
    from ..lab.target import Target

LIMIT = "keepalive"
KEYS = ("net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes")
SCALED_TIME_S = 1
SCALED_INTERVAL_S = 1


def keepalive(lab: Lab, target: Target | None = None, slack_s: float = 1.5) -> Observation:
    """Let the server vanish under two idle connections; count the keepalive probes. ``target``:
    your own server (it must keep an idle connection open without writing to it)."""
    client = lab.clients[0]
    idle, interval, probes = client.int_sysctls(KEYS).values()
    scale = {"tcp_keepalive_time": f"{idle} s -> {SCALED_TIME_S} s (x 1/{idle // SCALED_TIME_S})",
             "tcp_keepalive_intvl": f"{interval} s -> {SCALED_INTERVAL_S} s (x 1/{interval // SCALED_INTERVAL_S})",
             "tcp_keepalive_probes": f"{probes} (not scaled)"}
    lab.pin("client", {KEYS[0]: str(SCALED_TIME_S), KEYS[1]: str(SCALED_INTERVAL_S)},
            f"keepalive timers scaled: {scale['tcp_keepalive_time']}, {scale['tcp_keepalive_intvl']}",
            override=True)
    exp = expectation(lab, LIMIT, (probes, f"tcp_keepalive_probes {probes}"), lab_endings=("ETIMEDOUT",))
    expected_s = SCALED_TIME_S + SCALED_INTERVAL_S * probes
    server, which = own_or_agent_server(lab, target, "hold")
    start = time.monotonic()
    ka = client.agent("keepalive", "--target", server.endpoint, "--source", client.address,
                      "--deadline", str(expected_s + slack_s))
    connected = ka.expect("connected", timeout=30)
    ka_port = connected["ports"]["keepalive"]
    lab.load_nft(lab.server, ["counter keepalive_probes {}", "counter resets {}", "counter other {}",
                              nft_chain("vanished_in", "input", [
                                  f"tcp dport {server.port} tcp flags rst counter name resets drop",
                                  f"tcp dport {server.port} tcp sport {ka_port} counter name keepalive_probes drop",
                                  f"tcp dport {server.port} counter name other drop"], priority="-10"),
                              nft_chain("vanished_out", "output", [f"tcp sport {server.port} drop"], priority="-10")])
    ended = ka.expect("ended", timeout=expected_s + slack_s + 30)["connections"]
    duration = time.monotonic() - start
    seen = nft_counter(lab, lab.server, "keepalive_probes") or 0  # before the client's FINs at stop
    resets, other = nft_counter(lab, lab.server, "resets"), nft_counter(lab, lab.server, "other")
    ka.stop()
    stop_own(server, target)
    with_ka, without = ended["keepalive"], ended["no_keepalive"]
    evidence = {"server": which, "resets_after_the_last_probe": resets, "other_packets": other,
                "timers_on_socket": connected["timers"], "scale": scale,
                "detected_after_s": with_ka["after_s"], "expected_after_s": expected_s,
                "without_keepalive": without["error"] or f"still open after {expected_s + slack_s:.0f} s",
                "how": (f"{seen} keepalive probes went unanswered; the connection died with "
                        f"{with_ka['error']} after {with_ka['after_s']} s "
                        f"(time {SCALED_TIME_S} s + {probes} x {SCALED_INTERVAL_S} s, scaled)")}
    return observation(lab, LIMIT, exp, observed=seen, ended_by=with_ka["error"] or NO_ERROR,
                       bound=probes, duration_s=duration, evidence=evidence)
