"""The TCB hash (MaxHashTableSize on 2000/2003; tcp_child_ehash_entries on Linux) is no cap
on connections; on Linux a small one quietly shrinks tcp_max_tw_buckets.
"""
import pytest


@pytest.mark.limit("tcb_hash")
def test_more_connections_than_hash_buckets(lab):
    obs = lab.probe.tcb_hash()
    assert obs.ok, obs.explain()
    born = obs.evidence["born_with"]
    if born:
        buckets = int(born["net.ipv4.tcp_ehash_entries"])
        assert obs.observed >= 4 * buckets, obs.explain()
        assert int(born["net.ipv4.tcp_max_tw_buckets"]) == buckets // 2, obs.explain()
