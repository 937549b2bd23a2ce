"""Inbound connection cap: XP Professional serves 10 other computers at once, XP Home 5 [KB314882].

Twelve client hosts connect in turn and hold their connection; each host that
got in then opens two more, because the cap counts computers, not sockets.
"""
import pytest

COMPUTERS = 12


@pytest.mark.topology(clients=COMPUTERS)
@pytest.mark.limit("inbound_cap")
def test_inbound_cap_counts_computers(lab):
    obs = lab.probe.inbound_cap()
    assert obs.ok, obs.explain()
    served = [o for o in obs.evidence["outcomes"] if o["served"]]
    assert [o.get("more_opened") for o in served] == [2] * len(served), obs.explain()
    assert obs.evidence["server_accepted"] == 3 * len(served), obs.explain()
