"""Limits that live in processes: "too many open files" (RLIMIT_NOFILE), thread-per-connection
pools (ASP worker threads, Tomcat BIO), and WinInet's 2 connections per HTTP/1.1 server
[KB183110].
"""
import pytest


@pytest.mark.limit("fd_limit")
def test_server_runs_out_of_descriptors_while_clients_think_they_are_connected(lab):
    obs = lab.probe.fd_limit()
    assert obs.ok, obs.explain()
    ev = obs.evidence
    assert ev["clients_connected"] == obs.bound, obs.explain()
    if obs.ended_by == "EMFILE":
        assert ev["accept_queue_left"] == obs.bound - obs.observed, obs.explain()


@pytest.mark.limit("thread_pool")
def test_a_thread_pool_serves_its_size_and_an_event_loop_serves_all(lab):
    obs = lab.probe.thread_pool(threads=200, clients=240)
    assert obs.ok, obs.explain()
    assert obs.evidence["event_loop_server_statuses"] == {"200": 240}, obs.explain()
    assert obs.evidence["server_peak_busy_threads"] == 200, obs.explain()


@pytest.mark.settings(windows={"WinInet.MaxConnectionsPerServer": 2})
@pytest.mark.limit("per_server_cap")
def test_wininet_queues_requests_on_two_connections(lab):
    obs = lab.probe.per_server_cap(requests=8, delay_s=0.3)
    assert obs.ok, obs.explain()
    assert obs.evidence["statuses"] == {"200": 8}, obs.explain()
    assert obs.evidence["longest_wait_for_a_connection_s"] >= 0.3 * 3 - 0.1, obs.explain()
