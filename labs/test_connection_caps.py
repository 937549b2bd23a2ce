"""Caps on live connections: TcpNumConnections (nft ct count), IIS 5.1 on XP (10, then HTTP
403.9) [IIS-client], HTTP.SYS MaxConnections (503) [KB820129], and a router whose connection
table fills in front of the server.
"""
import pytest


@pytest.mark.settings(windows={"Tcpip.TcpNumConnections": 100})
@pytest.mark.limit("connection_cap")
def test_tcp_connection_cap(lab):
    obs = lab.probe.connection_cap()
    assert obs.ok, obs.explain()
    assert obs.evidence["server_established"] == 100, obs.explain()
    assert obs.evidence["next_attempts_completed"] == 0, obs.explain()


@pytest.mark.limit("http_connection_cap")
def test_forty_http_clients(lab):
    obs = lab.probe.http_connection_cap(clients=40)
    assert obs.ok, obs.explain()
    assert sum(obs.evidence["statuses"].values()) == 40, obs.explain()
    assert obs.evidence["server_over_cap"] == 40 - obs.observed, obs.explain()


@pytest.mark.settings(windows={"HTTP.MaxConnections": 1024}, rlimit={"nofile": 4096})  # HTTP.SYS is in the kernel
@pytest.mark.limit("http_connection_cap")
def test_http_sys_answers_503_past_max_connections(lab):
    obs = lab.probe.http_connection_cap(clients=1100)
    assert obs.ok, obs.explain()
    assert obs.evidence["statuses"] == {"200": 1024, "503": 76}, obs.explain()


@pytest.mark.topology(clients=2, router=True)
@pytest.mark.settings(emulated={"Router.ConnectionTableSize": 64})
@pytest.mark.limit("router_table")
def test_router_connection_table_fills(lab):
    obs = lab.probe.router_table()
    assert obs.ok, obs.explain()
    assert obs.evidence["router_conntrack_entries"] >= 64, obs.explain()
    assert obs.evidence["router_table_full_drops"] > 0, obs.explain()
