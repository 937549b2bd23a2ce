"""Half-open connections on the server: SynAttackProtect / TcpMaxHalfOpen on Windows 2000-2003,
always-on protection on Vista+ [W3-SAP, W3-THO, nettracer]; tcp_syncookies and
tcp_max_syn_backlog on Linux.

An attacking address sends 300 SYNs whose final ACKs never arrive; the server
counts its SYN_RECV requests. Then 20 legitimate clients connect: with SYN
protection (cookies) every one gets in; without it none does while the queue is full.
"""
import pytest


@pytest.mark.topology(clients=2)
@pytest.mark.limit("syn_backlog")
def test_syn_flood_fills_the_syn_queue_and_cookies_let_clients_in(lab):
    obs = lab.probe.syn_backlog()
    assert obs.ok, obs.explain()
    ev = obs.evidence
    assert ev["legitimate_accepted_by_server"] == ev["legitimate_expected"], obs.explain()
    if ev["syncookies"] and obs.observed < ev["attackers"]:
        assert obs.counters["TcpExtSyncookiesSent"] > 0, obs.explain()
