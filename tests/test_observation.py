"""Observation verdicts and explanations (pure data)."""
from pytest_connlab.report.observation import NO_ERROR, Observation, counter_delta


def obs(**kw):
    base = dict(limit="ephemeral_ports", profile="p", provider="netns", observed=3976, expected=3976,
                ended_by="EADDRNOTAVAIL", expected_ended_by=("EADDRNOTAVAIL",), bound=4040)
    return Observation(**{**base, **kw})


def test_ok_needs_the_value_and_the_ending():
    assert obs().verdict == "ok"
    assert obs(observed=3975).verdict == "failed"
    assert obs(ended_by="ECONNREFUSED").verdict == "failed"


def test_a_disturbed_or_unemulable_figure_is_never_ok():
    assert obs(disturbed="the host holds 122,910 orphaned TCP sockets").verdict == "disturbed"
    assert not obs(disturbed="TcpExtTCPAbortOnMemory +68 on client1 during the probe").ok
    assert obs(fidelity="none", expected=120, observed=60).verdict == "not emulable"
    assert obs(fidelity="none").verdict == "not emulable"  # even when the numbers happen to agree
    assert "disturbed by the host: TcpExt" in obs(disturbed="TcpExtTCPAbortOnMemory +1").explain()
    assert obs(disturbed="x").to_json()["disturbed"] == "x"


def test_no_limit_is_ok_only_when_the_bound_was_reached_without_error():
    assert obs(expected=None, observed=12, bound=12, ended_by=NO_ERROR, expected_ended_by=()).ok
    assert not obs(expected=None, observed=11, bound=12, ended_by="ECONNREFUSED", expected_ended_by=()).ok


def test_explain_names_numbers_winsock_error_and_notes():
    text = obs(observed=3000, evidence={"time_wait_race": "churn took 61 s"}).explain()
    assert "observed 3000, expected 3976" in text
    assert "EADDRNOTAVAIL (WSAENOBUFS 10055)" in text
    assert "note: churn took 61 s" in text


def test_json_carries_the_required_fields():
    data = obs().to_json()
    for key in ("test", "profile", "provider", "limit", "expected", "observed", "ended_by",
                "fidelity", "verdict", "duration_s"):
        assert key in data
    assert data["windows_error"] == "WSAENOBUFS 10055"


def test_counter_delta_keeps_changed_tcp_counters_and_named_ones():
    before = {"TcpActiveOpens": 5, "TcpExtTW": 0, "IpInReceives": 1, "TcpExtListenDrops": 2}
    after = {"TcpActiveOpens": 9, "TcpExtTW": 0, "IpInReceives": 7, "TcpExtListenDrops": 2}
    assert counter_delta(before, after, keep=("TcpExtListenDrops",)) == {"TcpActiveOpens": 4,
                                                                          "TcpExtListenDrops": 0}
