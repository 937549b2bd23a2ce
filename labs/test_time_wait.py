"""Ephemeral port exhaustion through TIME_WAIT: MaxUserPort on Windows, ip_local_port_range on Linux.

Windows Server 2003 runs out after 3976 outbound connections to one server
(ports 1025-5000, each held in TIME_WAIT) and fails connect() with WSAENOBUFS
10055 [KB196271, PortExh]. The lab churns connections from one client IP to one
server ip:port and counts how many succeed before connect() fails.
"""
import pytest


@pytest.mark.limit("ephemeral_ports")
def test_time_wait_exhausts_ephemeral_ports(lab):
    obs = lab.probe.ephemeral_ports()
    assert obs.ok, obs.explain()
    # Every connection made still holds its port toward that server, nearly all in TIME_WAIT
    # (the last few may still be closing when the observer looks), except the ports the
    # kernel took back from TIME_WAIT for a new connect (tcp_tw_reuse=1: TcpExtTWRecycled).
    recycled = obs.counters.get("TcpExtTWRecycled", 0)
    assert obs.evidence["ports_held_toward_server"] + recycled == obs.observed, obs.explain()
    if obs.ended_by != "none":  # the pool ran out: (nearly) every port it had is in TIME_WAIT
        assert obs.evidence["time_wait_toward_server"] >= obs.observed * 0.99, obs.explain()
    # every connect() sent a SYN; the few a peer reset (tcp_tw_reuse, see peer_resets) did not count
    assert obs.counters["TcpActiveOpens"] == obs.observed + obs.evidence["peer_resets"], obs.explain()
