"""The reproduction suite on real netns labs, run as a user would (pytester subprocesses)."""
import pytest

from pytest_connlab.lab.reaper import LOCK_DIR
from pytest_connlab.profiles.emulation import FIDELITIES
from pytest_connlab.profiles.limits import CATALOG, LIMITS

from .labtools import REPO, host_links, host_nft_ruleset, host_sysctls, namespaces_of, narrow_profile, results

pytestmark = pytest.mark.usefixtures("needs_netns")

SUITE_WORKERS = 6  # README: pytest --lab=all -n 6 labs/ (about 3.5 minutes on 2 cores)
EXPECTED = {  # (test, profile): (observed, ended_by), as measured on kernel 6.18
    ('test_a_thread_pool_serves_its_size_and_an_event_loop_serves_all', 'linux-default'): (200, 'no answer within 2 s'),
    ('test_a_thread_pool_serves_its_size_and_an_event_loop_serves_all', 'linux-tuned'): (200, 'no answer within 2 s'),
    ('test_a_thread_pool_serves_its_size_and_an_event_loop_serves_all', 'vista-sp2'): (200, 'no answer within 2 s'),
    ('test_a_thread_pool_serves_its_size_and_an_event_loop_serves_all', 'win2000-server'): (200, 'no answer within 2 s'),  # noqa: E501
    ('test_a_thread_pool_serves_its_size_and_an_event_loop_serves_all', 'win2003'): (200, 'no answer within 2 s'),
    ('test_a_thread_pool_serves_its_size_and_an_event_loop_serves_all', 'win2008r2'): (200, 'no answer within 2 s'),
    ('test_a_thread_pool_serves_its_size_and_an_event_loop_serves_all', 'winxp-home'): (200, 'no answer within 2 s'),
    ('test_a_thread_pool_serves_its_size_and_an_event_loop_serves_all', 'winxp-sp2'): (200, 'no answer within 2 s'),
    ('test_keepalive_finds_your_own_server_gone', 'linux-default'): (9, 'ETIMEDOUT'),
    ('test_keepalive_finds_your_own_server_gone', 'linux-tuned'): (5, 'ETIMEDOUT'),
    ('test_keepalive_finds_your_own_server_gone', 'vista-sp2'): (10, 'ETIMEDOUT'),
    ('test_keepalive_finds_your_own_server_gone', 'win2000-server'): (5, 'ETIMEDOUT'),
    ('test_keepalive_finds_your_own_server_gone', 'win2003'): (5, 'ETIMEDOUT'),
    ('test_keepalive_finds_your_own_server_gone', 'win2008r2'): (10, 'ETIMEDOUT'),
    ('test_keepalive_finds_your_own_server_gone', 'winxp-home'): (5, 'ETIMEDOUT'),
    ('test_keepalive_finds_your_own_server_gone', 'winxp-sp2'): (5, 'ETIMEDOUT'),
    ('test_the_backlog_probe_counts_your_own_listener', 'linux-default'): (9, 'ETIMEDOUT'),
    ('test_the_backlog_probe_counts_your_own_listener', 'linux-tuned'): (9, 'ETIMEDOUT'),
    ('test_the_backlog_probe_counts_your_own_listener', 'vista-sp2'): (9, 'ECONNREFUSED'),
    ('test_the_backlog_probe_counts_your_own_listener', 'win2000-server'): (9, 'ECONNREFUSED'),
    ('test_the_backlog_probe_counts_your_own_listener', 'win2003'): (9, 'ECONNREFUSED'),
    ('test_the_backlog_probe_counts_your_own_listener', 'win2008r2'): (9, 'ECONNREFUSED'),
    ('test_the_backlog_probe_counts_your_own_listener', 'winxp-home'): (6, 'ECONNREFUSED'),
    ('test_the_backlog_probe_counts_your_own_listener', 'winxp-sp2'): (6, 'ECONNREFUSED'),
    ('test_a_vanished_peer_is_found_by_keepalive_only', 'linux-default'): (9, 'ETIMEDOUT'),
    ('test_a_vanished_peer_is_found_by_keepalive_only', 'linux-tuned'): (5, 'ETIMEDOUT'),
    ('test_a_vanished_peer_is_found_by_keepalive_only', 'vista-sp2'): (10, 'ETIMEDOUT'),
    ('test_a_vanished_peer_is_found_by_keepalive_only', 'win2000-server'): (5, 'ETIMEDOUT'),
    ('test_a_vanished_peer_is_found_by_keepalive_only', 'win2003'): (5, 'ETIMEDOUT'),
    ('test_a_vanished_peer_is_found_by_keepalive_only', 'win2008r2'): (10, 'ETIMEDOUT'),
    ('test_a_vanished_peer_is_found_by_keepalive_only', 'winxp-home'): (5, 'ETIMEDOUT'),
    ('test_a_vanished_peer_is_found_by_keepalive_only', 'winxp-sp2'): (5, 'ETIMEDOUT'),
    ('test_backlog_of_a_listener_that_never_accepts', 'linux-default'): (4097, 'ETIMEDOUT'),
    ('test_backlog_of_a_listener_that_never_accepts', 'linux-tuned'): (65536, 'ETIMEDOUT'),
    ('test_backlog_of_a_listener_that_never_accepts', 'vista-sp2'): (4097, 'ECONNREFUSED'),
    ('test_backlog_of_a_listener_that_never_accepts', 'win2000-server'): (201, 'ECONNREFUSED'),
    ('test_backlog_of_a_listener_that_never_accepts', 'win2003'): (201, 'ECONNREFUSED'),
    ('test_backlog_of_a_listener_that_never_accepts', 'win2008r2'): (4097, 'ECONNREFUSED'),
    ('test_backlog_of_a_listener_that_never_accepts', 'winxp-home'): (6, 'ECONNREFUSED'),
    ('test_backlog_of_a_listener_that_never_accepts', 'winxp-sp2'): (6, 'ECONNREFUSED'),
    ('test_bucket_overflow_hides_port_exhaustion', 'linux-default'): (100, 'none'),
    ('test_bucket_overflow_hides_port_exhaustion', 'linux-tuned'): (100, 'none'),
    ('test_bucket_overflow_hides_port_exhaustion', 'vista-sp2'): (100, 'none'),
    ('test_bucket_overflow_hides_port_exhaustion', 'win2000-server'): (100, 'none'),
    ('test_bucket_overflow_hides_port_exhaustion', 'win2003'): (100, 'none'),
    ('test_bucket_overflow_hides_port_exhaustion', 'win2008r2'): (100, 'none'),
    ('test_bucket_overflow_hides_port_exhaustion', 'winxp-home'): (100, 'none'),
    ('test_bucket_overflow_hides_port_exhaustion', 'winxp-sp2'): (100, 'none'),
    ('test_forty_http_clients', 'linux-default'): (40, 'none'),
    ('test_forty_http_clients', 'linux-tuned'): (40, 'none'),
    ('test_forty_http_clients', 'vista-sp2'): (40, 'none'),
    ('test_forty_http_clients', 'win2000-server'): (40, 'none'),
    ('test_forty_http_clients', 'win2003'): (40, 'none'),
    ('test_forty_http_clients', 'win2008r2'): (40, 'none'),
    ('test_forty_http_clients', 'winxp-home'): (40, 'none'),
    ('test_forty_http_clients', 'winxp-sp2'): (10, 'HTTP 403.9'),
    ('test_http_sys_answers_503_past_max_connections', 'linux-default'): (1024, 'HTTP 503'),
    ('test_http_sys_answers_503_past_max_connections', 'linux-tuned'): (1024, 'HTTP 503'),
    ('test_http_sys_answers_503_past_max_connections', 'vista-sp2'): (1024, 'HTTP 503'),
    ('test_http_sys_answers_503_past_max_connections', 'win2000-server'): (1024, 'HTTP 503'),
    ('test_http_sys_answers_503_past_max_connections', 'win2003'): (1024, 'HTTP 503'),
    ('test_http_sys_answers_503_past_max_connections', 'win2008r2'): (1024, 'HTTP 503'),
    ('test_http_sys_answers_503_past_max_connections', 'winxp-home'): (1024, 'HTTP 503'),
    ('test_http_sys_answers_503_past_max_connections', 'winxp-sp2'): (1024, 'HTTP 503'),
    ('test_inbound_cap_counts_computers', 'linux-default'): (12, 'none'),
    ('test_inbound_cap_counts_computers', 'linux-tuned'): (12, 'none'),
    ('test_inbound_cap_counts_computers', 'vista-sp2'): (12, 'none'),
    ('test_inbound_cap_counts_computers', 'win2000-server'): (12, 'none'),
    ('test_inbound_cap_counts_computers', 'win2003'): (12, 'none'),
    ('test_inbound_cap_counts_computers', 'win2008r2'): (12, 'none'),
    ('test_inbound_cap_counts_computers', 'winxp-home'): (5, 'ECONNREFUSED'),
    ('test_inbound_cap_counts_computers', 'winxp-sp2'): (10, 'ECONNREFUSED'),
    ('test_late_handshakes_on_a_full_accept_queue', 'linux-default'): (0, 'none'),
    ('test_late_handshakes_on_a_full_accept_queue', 'linux-tuned'): (0, 'none'),
    ('test_late_handshakes_on_a_full_accept_queue', 'vista-sp2'): (4, 'ECONNRESET'),
    ('test_late_handshakes_on_a_full_accept_queue', 'win2000-server'): (4, 'ECONNRESET'),
    ('test_late_handshakes_on_a_full_accept_queue', 'win2003'): (4, 'ECONNRESET'),
    ('test_late_handshakes_on_a_full_accept_queue', 'win2008r2'): (4, 'ECONNRESET'),
    ('test_late_handshakes_on_a_full_accept_queue', 'winxp-home'): (4, 'ECONNRESET'),
    ('test_late_handshakes_on_a_full_accept_queue', 'winxp-sp2'): (4, 'ECONNRESET'),
    ('test_more_connections_than_hash_buckets', 'linux-default'): (2000, 'none'),
    ('test_more_connections_than_hash_buckets', 'linux-tuned'): (2000, 'none'),
    ('test_more_connections_than_hash_buckets', 'vista-sp2'): (2000, 'none'),
    ('test_more_connections_than_hash_buckets', 'win2000-server'): (2048, 'none'),
    ('test_more_connections_than_hash_buckets', 'win2003'): (2048, 'none'),
    ('test_more_connections_than_hash_buckets', 'win2008r2'): (2000, 'none'),
    ('test_more_connections_than_hash_buckets', 'winxp-home'): (2000, 'none'),
    ('test_more_connections_than_hash_buckets', 'winxp-sp2'): (2000, 'none'),
    ('test_router_connection_table_fills', 'linux-default'): (64, 'ETIMEDOUT'),
    ('test_router_connection_table_fills', 'linux-tuned'): (64, 'ETIMEDOUT'),
    ('test_router_connection_table_fills', 'vista-sp2'): (64, 'ETIMEDOUT'),
    ('test_router_connection_table_fills', 'win2000-server'): (64, 'ETIMEDOUT'),
    ('test_router_connection_table_fills', 'win2003'): (64, 'ETIMEDOUT'),
    ('test_router_connection_table_fills', 'win2008r2'): (64, 'ETIMEDOUT'),
    ('test_router_connection_table_fills', 'winxp-home'): (64, 'ETIMEDOUT'),
    ('test_router_connection_table_fills', 'winxp-sp2'): (64, 'ETIMEDOUT'),
    ('test_server_runs_out_of_descriptors_while_clients_think_they_are_connected', 'linux-default'): (1019, 'EMFILE'),
    ('test_server_runs_out_of_descriptors_while_clients_think_they_are_connected', 'linux-tuned'): (19995, 'EMFILE'),
    ('test_server_runs_out_of_descriptors_while_clients_think_they_are_connected', 'vista-sp2'): (1100, 'none'),
    ('test_server_runs_out_of_descriptors_while_clients_think_they_are_connected', 'win2000-server'): (1100, 'none'),
    ('test_server_runs_out_of_descriptors_while_clients_think_they_are_connected', 'win2003'): (1100, 'none'),
    ('test_server_runs_out_of_descriptors_while_clients_think_they_are_connected', 'win2008r2'): (1100, 'none'),
    ('test_server_runs_out_of_descriptors_while_clients_think_they_are_connected', 'winxp-home'): (1100, 'none'),
    ('test_server_runs_out_of_descriptors_while_clients_think_they_are_connected', 'winxp-sp2'): (1100, 'none'),
    ('test_syn_flood_fills_the_syn_queue_and_cookies_let_clients_in', 'linux-default'): (129, 'none'),
    ('test_syn_flood_fills_the_syn_queue_and_cookies_let_clients_in', 'linux-tuned'): (129, 'none'),
    ('test_syn_flood_fills_the_syn_queue_and_cookies_let_clients_in', 'vista-sp2'): (129, 'none'),
    ('test_syn_flood_fills_the_syn_queue_and_cookies_let_clients_in', 'win2000-server'): (129, 'pending after 1 s'),
    ('test_syn_flood_fills_the_syn_queue_and_cookies_let_clients_in', 'win2003'): (129, 'pending after 1 s'),
    ('test_syn_flood_fills_the_syn_queue_and_cookies_let_clients_in', 'win2008r2'): (129, 'none'),
    ('test_syn_flood_fills_the_syn_queue_and_cookies_let_clients_in', 'winxp-home'): (6, 'pending after 1 s'),
    ('test_syn_flood_fills_the_syn_queue_and_cookies_let_clients_in', 'winxp-sp2'): (6, 'pending after 1 s'),
    ('test_tcp_connection_cap', 'linux-default'): (100, 'ECONNREFUSED'),
    ('test_tcp_connection_cap', 'linux-tuned'): (100, 'ECONNREFUSED'),
    ('test_tcp_connection_cap', 'vista-sp2'): (100, 'ECONNREFUSED'),
    ('test_tcp_connection_cap', 'win2000-server'): (100, 'ECONNREFUSED'),
    ('test_tcp_connection_cap', 'win2003'): (100, 'ECONNREFUSED'),
    ('test_tcp_connection_cap', 'win2008r2'): (100, 'ECONNREFUSED'),
    ('test_tcp_connection_cap', 'winxp-home'): (100, 'ECONNREFUSED'),
    ('test_tcp_connection_cap', 'winxp-sp2'): (100, 'ECONNREFUSED'),
    ('test_time_wait_entries_outlive_their_timer_by_nothing', 'linux-default'): (60, 'none'),
    ('test_time_wait_exhausts_ephemeral_ports', 'linux-default'): (28232, 'EADDRNOTAVAIL'),
    ('test_time_wait_exhausts_ephemeral_ports', 'linux-tuned'): (10000, 'none'),
    ('test_time_wait_exhausts_ephemeral_ports', 'vista-sp2'): (16384, 'EADDRNOTAVAIL'),
    ('test_time_wait_exhausts_ephemeral_ports', 'win2000-server'): (3976, 'EADDRNOTAVAIL'),
    ('test_time_wait_exhausts_ephemeral_ports', 'win2003'): (3976, 'EADDRNOTAVAIL'),
    ('test_time_wait_exhausts_ephemeral_ports', 'win2008r2'): (16384, 'EADDRNOTAVAIL'),
    ('test_time_wait_exhausts_ephemeral_ports', 'winxp-home'): (3976, 'EADDRNOTAVAIL'),
    ('test_time_wait_exhausts_ephemeral_ports', 'winxp-sp2'): (3976, 'EADDRNOTAVAIL'),
    ('test_time_wait_reuse_never_runs_out', 'linux-default'): (10000, 'none'),
    ('test_time_wait_reuse_never_runs_out', 'linux-tuned'): (10000, 'none'),
    ('test_time_wait_reuse_never_runs_out', 'vista-sp2'): (10000, 'none'),
    ('test_time_wait_reuse_never_runs_out', 'win2000-server'): (10000, 'none'),
    ('test_time_wait_reuse_never_runs_out', 'win2003'): (10000, 'none'),
    ('test_time_wait_reuse_never_runs_out', 'win2008r2'): (10000, 'none'),
    ('test_time_wait_reuse_never_runs_out', 'winxp-home'): (10000, 'none'),
    ('test_time_wait_reuse_never_runs_out', 'winxp-sp2'): (10000, 'none'),
    ('test_time_wait_timer', 'linux-default'): (60, 'none'),
    ('test_time_wait_timer', 'linux-tuned'): (60, 'none'),
    ('test_time_wait_timer', 'vista-sp2'): (60, 'none'),
    ('test_time_wait_timer', 'win2000-server'): (60, 'none'),
    ('test_time_wait_timer', 'win2003'): (60, 'none'),
    ('test_time_wait_timer', 'win2008r2'): (60, 'none'),
    ('test_time_wait_timer', 'winxp-home'): (60, 'none'),
    ('test_time_wait_timer', 'winxp-sp2'): (60, 'none'),
    ('test_twenty_connects_to_a_black_hole', 'linux-default'): (20, 'none'),
    ('test_twenty_connects_to_a_black_hole', 'linux-tuned'): (20, 'none'),
    ('test_twenty_connects_to_a_black_hole', 'vista-sp2'): (20, 'none'),
    ('test_twenty_connects_to_a_black_hole', 'win2000-server'): (20, 'none'),
    ('test_twenty_connects_to_a_black_hole', 'win2003'): (20, 'none'),
    ('test_twenty_connects_to_a_black_hole', 'win2008r2'): (20, 'none'),
    ('test_twenty_connects_to_a_black_hole', 'winxp-home'): (10, 'none'),
    ('test_twenty_connects_to_a_black_hole', 'winxp-sp2'): (10, 'none'),
    ('test_wininet_queues_requests_on_two_connections', 'linux-default'): (2, 'none'),
    ('test_wininet_queues_requests_on_two_connections', 'linux-tuned'): (2, 'none'),
    ('test_wininet_queues_requests_on_two_connections', 'vista-sp2'): (2, 'none'),
    ('test_wininet_queues_requests_on_two_connections', 'win2000-server'): (2, 'none'),
    ('test_wininet_queues_requests_on_two_connections', 'win2003'): (2, 'none'),
    ('test_wininet_queues_requests_on_two_connections', 'win2008r2'): (2, 'none'),
    ('test_wininet_queues_requests_on_two_connections', 'winxp-home'): (2, 'none'),
    ('test_wininet_queues_requests_on_two_connections', 'winxp-sp2'): (2, 'none'),
    ('test_one_ip_holds_its_port_range', 'linux-default'): (28232, 'EADDRNOTAVAIL'),
    ('test_one_ip_holds_its_port_range', 'vista-sp2'): (16384, 'EADDRNOTAVAIL'),
    ('test_one_ip_holds_its_port_range', 'win2000-server'): (3976, 'EADDRNOTAVAIL'),
    ('test_one_ip_holds_its_port_range', 'win2003'): (3976, 'EADDRNOTAVAIL'),
    ('test_one_ip_holds_its_port_range', 'win2008r2'): (16384, 'EADDRNOTAVAIL'),
    ('test_one_ip_holds_its_port_range', 'winxp-home'): (3976, 'EADDRNOTAVAIL'),
    ('test_one_ip_holds_its_port_range', 'winxp-sp2'): (3976, 'EADDRNOTAVAIL'),
    ('test_one_port_holds_more_than_64k', 'linux-default'): (70000, 'none'),
    ('test_one_port_holds_more_than_64k', 'linux-tuned'): (70000, 'none'),
    ('test_one_port_holds_more_than_64k', 'vista-sp2'): (70000, 'none'),
    ('test_one_port_holds_more_than_64k', 'win2000-server'): (70000, 'none'),
    ('test_one_port_holds_more_than_64k', 'win2003'): (70000, 'none'),
    ('test_one_port_holds_more_than_64k', 'win2008r2'): (70000, 'none'),
    ('test_one_port_holds_more_than_64k', 'winxp-home'): (17500, 'ECONNREFUSED'),
    ('test_one_port_holds_more_than_64k', 'winxp-sp2'): (35000, 'ECONNREFUSED'),
    ('test_server_push_reaches_3000_clients', 'linux-default'): (3000, 'none'),
    ('test_server_push_reaches_3000_clients', 'linux-tuned'): (3000, 'none'),
    ('test_server_push_reaches_3000_clients', 'vista-sp2'): (3000, 'none'),
    ('test_server_push_reaches_3000_clients', 'win2000-server'): (3000, 'none'),
    ('test_server_push_reaches_3000_clients', 'win2003'): (3000, 'none'),
    ('test_server_push_reaches_3000_clients', 'win2008r2'): (3000, 'none'),
    ('test_server_push_reaches_3000_clients', 'winxp-home'): (3000, 'none'),
    ('test_server_push_reaches_3000_clients', 'winxp-sp2'): (3000, 'none'),
    ('test_your_own_server_is_capped_at_tcp_num_connections', 'linux-default'): (20, 'ECONNREFUSED'),
    ('test_your_own_server_is_capped_at_tcp_num_connections', 'linux-tuned'): (20, 'ECONNREFUSED'),
    ('test_your_own_server_is_capped_at_tcp_num_connections', 'vista-sp2'): (20, 'ECONNREFUSED'),
    ('test_your_own_server_is_capped_at_tcp_num_connections', 'win2000-server'): (20, 'ECONNREFUSED'),
    ('test_your_own_server_is_capped_at_tcp_num_connections', 'win2003'): (20, 'ECONNREFUSED'),
    ('test_your_own_server_is_capped_at_tcp_num_connections', 'win2008r2'): (20, 'ECONNREFUSED'),
    ('test_your_own_server_is_capped_at_tcp_num_connections', 'winxp-home'): (20, 'ECONNREFUSED'),
    ('test_your_own_server_is_capped_at_tcp_num_connections', 'winxp-sp2'): (20, 'ECONNREFUSED'),
    ('test_your_own_server_behind_a_full_router_table', 'linux-default'): (16, 'ETIMEDOUT'),
    ('test_your_own_server_behind_a_full_router_table', 'linux-tuned'): (16, 'ETIMEDOUT'),
    ('test_your_own_server_behind_a_full_router_table', 'vista-sp2'): (16, 'ETIMEDOUT'),
    ('test_your_own_server_behind_a_full_router_table', 'win2000-server'): (16, 'ETIMEDOUT'),
    ('test_your_own_server_behind_a_full_router_table', 'win2003'): (16, 'ETIMEDOUT'),
    ('test_your_own_server_behind_a_full_router_table', 'win2008r2'): (16, 'ETIMEDOUT'),
    ('test_your_own_server_behind_a_full_router_table', 'winxp-home'): (16, 'ETIMEDOUT'),
    ('test_your_own_server_behind_a_full_router_table', 'winxp-sp2'): (16, 'ETIMEDOUT'),
}


@pytest.mark.all_profiles
def test_every_profile_reproduces_its_limits_and_leaves_nothing(pytester):
    before_sysctls, before_links, before_nft = host_sysctls(), host_links(), host_nft_ruleset()
    out = pytester.path / "results.json"
    # in parallel, as the README runs it: every row must come out as it does in one process
    result = pytester.runpytest_subprocess(str(REPO / "labs"), "--lab=all", "-n", str(SUITE_WORKERS),
                                           f"--lab-json={out}", "-p", "no:cacheprovider")
    # skipped: the 60 s TIME_WAIT watch runs once; one IP exhausting linux-tuned's 64,512 ports takes minutes
    # labs/test_lab_wide.py: 3 tests per profile that check the lab with real clients, no probe row
    # labs/test_memory.py: 2 tests per profile, measured only where a host's RAM is its own (vm)
    result.assert_outcomes(passed=len(EXPECTED) + 3 * 8, skipped=8 + 2 * 8)
    run_id, rows = results(out)
    seen = {(r["test"].split("::")[-1].split("[")[0], r["profile"]): (r["observed"], r["ended_by"])
            for r in rows}
    assert seen == EXPECTED
    # every row reproduced, except what a Linux lab cannot show (fidelity none), which says so
    assert all(r["verdict"] == ("not emulable" if r["fidelity"] == "none" else "ok") and r["provider"] == "netns"
               for r in rows), [(r["test"], r["verdict"], r.get("disturbed")) for r in rows if r["verdict"] != "ok"]
    assert {r["profile"] for r in rows if r["verdict"] == "not emulable"} >= {"win2003", "winxp-sp2"}
    assert all(r["fidelity"] in FIDELITIES for r in rows)
    # every limit connlab knows was observed, but those only a host with its own kernel shows (vm)
    assert {r["limit"] for r in rows} == {name for name in LIMITS if not CATALOG[name].needs_own_kernel}
    result.stdout.fnmatch_lines(["*connlab results*",
                                 "*ephemeral_ports*win2003*3976*3976*EADDRNOTAVAIL (WSAENOBUFS 10055)*exact*ok*",
                                 "*listen_backlog*win2003*201*201*ECONNREFUSED (WSAECONNREFUSED 10061)*approximate*ok*",
                                 "*time_wait_length*win2003*120*60*none*not emulable*"])
    assert namespaces_of(run_id) == []
    assert not (LOCK_DIR / f"{run_id}.lock").exists()
    assert host_sysctls() == before_sysctls
    assert host_links() == before_links
    assert host_nft_ruleset() == before_nft


def _observed(out):
    return sorted((r["test"], r["observed"], r["ended_by"]) for r in results(out)[1])


def test_xdist_gives_the_same_results_as_one_process(pytester):
    serial, parallel = pytester.path / "serial.json", pytester.path / "parallel.json"
    subset = ("-k", "backlog or inbound or overflow or connection_cap or tcb")
    pytester.runpytest_subprocess(str(REPO / "labs"), "--lab=win2003", *subset, "-p", "no:xdist",
                                  f"--lab-json={serial}").assert_outcomes(passed=10)
    run = pytester.runpytest_subprocess(str(REPO / "labs"), "--lab=win2003", *subset, "-n", "2",
                                        f"--lab-json={parallel}")
    run.assert_outcomes(passed=10)
    assert _observed(serial) == _observed(parallel)
    assert namespaces_of(results(parallel)[0]) == []




def test_a_user_profile_is_measured_and_a_wrong_expectation_fails_with_the_real_number(pytester):
    labs = pytester.path / "mylabs"
    labs.mkdir()
    (labs / "narrow.yaml").write_text(narrow_profile(value=1000))
    (labs / "wrong.yaml").write_text(narrow_profile(value=900))
    pytester.makeini("[pytest]\nconnlab_labs = mylabs\n")
    (pytester.path / "test_ports.py").write_text((REPO / "labs" / "test_time_wait.py").read_text())
    out = pytester.path / "r.json"
    result = pytester.runpytest_subprocess("--lab=narrow,wrong", f"--lab-json={out}")
    result.assert_outcomes(passed=1, failed=1)
    rows = {r["profile"]: r for r in results(out)[1]}
    assert rows["narrow"]["observed"] == rows["wrong"]["observed"] == 1000
    assert rows["wrong"]["verdict"] == "failed"
    result.stdout.fnmatch_lines(["*ephemeral_ports on profile wrong (netns): observed 1000, expected 900*"])
