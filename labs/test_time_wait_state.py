"""TIME_WAIT: how long it lasts (Windows TcpTimedWaitDelay 120/240 s; Linux 60 s compiled in)
and how many entries a host keeps (tcp_max_tw_buckets; past it, port exhaustion vanishes).
"""
import pytest


@pytest.mark.limit("time_wait_length")
def test_time_wait_timer(lab):
    obs = lab.probe.time_wait_length()
    if obs.fidelity == "none":  # Windows' TcpTimedWaitDelay: no Linux knob, the kernel keeps its 60 s
        assert obs.verdict == "not emulable" and obs.observed == 60 != obs.expected, obs.explain()
    else:
        assert obs.ok, obs.explain()
    assert obs.evidence["time_wait_entries"] == 3, obs.explain()


@pytest.mark.limit("time_wait_length")
def test_time_wait_entries_outlive_their_timer_by_nothing(lab_profile, lab):
    if lab_profile.name != "linux-default":
        pytest.skip("a 60 s watch runs on linux-default only; the timer read covers the others")
    obs = lab.probe.time_wait_length(watch=True)
    assert obs.ok, obs.explain()
    assert obs.observed <= obs.evidence["watched_lifetime_s"] <= obs.observed + 3, obs.explain()


@pytest.mark.settings(sysctl={"net.ipv4.tcp_max_tw_buckets": 100})
@pytest.mark.limit("time_wait_buckets")
def test_bucket_overflow_hides_port_exhaustion(lab):
    obs = lab.probe.time_wait_buckets()
    assert obs.ok, obs.explain()
    assert obs.ended_by == "none", obs.explain()  # more connects than ports, none failed
    assert obs.counters["TcpExtTCPTimeWaitOverflow"] == obs.evidence["connects"] - 100, obs.explain()


@pytest.mark.settings(sysctl={"net.ipv4.tcp_tw_reuse": 1, "net.ipv4.tcp_tw_reuse_delay": 1})
@pytest.mark.limit("ephemeral_ports")
def test_time_wait_reuse_never_runs_out(lab):
    obs = lab.probe.ephemeral_ports()
    assert obs.ok, obs.explain()
    assert obs.counters["TcpExtTWRecycled"] > 0, obs.explain()
