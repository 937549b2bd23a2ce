"""Dead peers: KeepAliveTime 2 h, KeepAliveInterval 1 s, 5 probes on 2000/XP/2003 and 10 on
Vista+ [KB314053, SIO_KA]; Linux tcp_keepalive_* (7200 s, 75 s, 9). Timers are scaled to
seconds (printed in the evidence); the probe count is not.
"""
import pytest


@pytest.mark.limit("keepalive")
def test_a_vanished_peer_is_found_by_keepalive_only(lab):
    obs = lab.probe.keepalive()
    assert obs.ok, obs.explain()
    ev = obs.evidence
    assert ev["detected_after_s"] == pytest.approx(ev["expected_after_s"], abs=0.9), obs.explain()
    assert ev["without_keepalive"].startswith("still open"), obs.explain()
