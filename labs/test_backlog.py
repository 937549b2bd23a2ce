"""Listen backlog: how many handshakes complete on a listener that never calls accept().

NT4 Workstation and 2000/XP cap listen() at 5, server editions at 200; a full
queue refuses (WSAECONNREFUSED) [KB127144, listen()]. Linux completes
min(backlog, somaxconn) + 1 handshakes, then drops further SYNs silently.
"""
import pytest


@pytest.mark.topology(ips_per_client=2)  # a 65535 backlog needs more than one IP's ports
@pytest.mark.limit("listen_backlog")
def test_backlog_of_a_listener_that_never_accepts(lab):
    obs = lab.probe.listen_backlog()
    assert obs.ok, obs.explain()
    if obs.ended_by == "ETIMEDOUT":
        # The server's kernel counts the SYNs it dropped because the accept queue was full.
        assert obs.counters["TcpExtListenOverflows"] > 0, obs.explain()
    # Every attempt past the queue failed the same way; none sneaked in.
    assert obs.evidence["next_attempts_completed"] == 0, obs.explain()
