"""What a full accept queue does to a handshake that completes late: Linux drops the final
ACK (tcp_abort_on_overflow=0, the client hangs) or resets it (=1); Windows refuses a
connect to a full backlog [listen()], emulated with tcp_abort_on_overflow=1.
"""
import pytest


@pytest.mark.topology(clients=2)
@pytest.mark.limit("accept_overflow")
def test_late_handshakes_on_a_full_accept_queue(lab):
    obs = lab.probe.accept_overflow()
    assert obs.ok, obs.explain()
    ev = obs.evidence
    assert ev["accept_queue_when_acks_arrived"] == ev["accept_queue_size"], obs.explain()
    assert obs.counters["TcpExtListenOverflows"] >= ev["late_clients"], obs.explain()
    # Nobody is told anything else: every late client is either reset or still believes it is connected.
    assert sum(ev["late_after"].values()) == ev["late_clients"], obs.explain()
