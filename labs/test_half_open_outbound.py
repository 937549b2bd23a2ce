"""Outbound half-open cap: XP SP2 lets 10 connects be incomplete at once and queues the
rest (event 4226) [Ev4226]; Vista SP2+ has it off [KB969710].

Twenty connects go to a black-holed port at once; the server counts the SYNs that
reached it. Meanwhile a connect to a live server waits behind them (capped), never
fails, and completes once they are closed.
"""
import pytest


@pytest.mark.limit("outbound_half_open")
def test_twenty_connects_to_a_black_hole(lab):
    obs = lab.probe.outbound_half_open()
    assert obs.ok, obs.explain()
    live = obs.evidence["live_connect_meanwhile"]
    assert live["completed"] and live["error"] is None, obs.explain()
    if obs.expected is not None:  # capped: the rest waited in the queue, and so did the live connect
        assert obs.evidence["connects_that_waited"] >= 20 - obs.expected + 1, obs.explain()
        assert live["after_s"] > 0.5, obs.explain()
    else:
        assert live["after_s"] < 0.5, obs.explain()
