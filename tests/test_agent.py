"""The agent's pure parts, and the agent run for real on the host's loopback (no lab needed)."""
import json
import subprocess
import typing

from pytest_connlab.agent.observe import TCP_STATES, _paired_counters
from pytest_connlab.agent.workers import chunks, split_evenly
from pytest_connlab.lab.providers.base import local_agent_argv


def test_sockets_are_spread_over_processes_within_the_fd_budget():
    parts = chunks(100_000, 19_936)
    assert parts == [16_667] * 4 + [16_666] * 2
    assert sum(parts) == 100_000 and max(parts) <= 19_936
    assert chunks(10, 100) == [10]
    assert split_evenly(7, 3) == [3, 2, 2]


def test_counters_are_parsed_in_header_value_pairs(tmp_path):
    path = tmp_path / "netstat"
    path.write_text("TcpExt: SyncookiesSent ListenOverflows\nTcpExt: 3 17\nIpExt: InOctets\nIpExt: 99\n")
    assert _paired_counters(str(path)) == {"TcpExtSyncookiesSent": 3, "TcpExtListenOverflows": 17,
                                           "IpExtInOctets": 99}


def test_tcp_state_numbers_follow_the_kernel():
    assert TCP_STATES[1] == "ESTABLISHED" and TCP_STATES[6] == "TIME_WAIT" and TCP_STATES[10] == "LISTEN"


def test_the_agent_observes_a_real_listener_and_its_accept_queue():
    server = subprocess.Popen(local_agent_argv(["server", "--bind", "127.0.0.1", "--mode", "never",
                                                "--backlog", "3", "--max-seconds", "30"]),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        port = json.loads(server.stdout.readline())["port"]
        opener = subprocess.run(local_agent_argv(["open", "--target", f"127.0.0.1:{port}", "--count", "2",
                                                  "--deadline", "10", "--hold", "0"]),
                                capture_output=True, text=True, timeout=30)
        assert json.loads(opener.stdout.splitlines()[0])["established"] == 2
        seen = subprocess.run(local_agent_argv(["observe", "--port", str(port)]),
                              capture_output=True, text=True, timeout=30)
        sockets = json.loads(seen.stdout)["sockets"]
        assert sockets["local_port"].get("LISTEN") == 1
        assert sockets["accept_queue"] == 2  # both handshakes completed, neither accepted
    finally:
        server.stdin.close()
        server.wait(timeout=10)


def test_open_spreads_over_processes_when_rlimit_nofile_is_low():
    """Under a hard RLIMIT_NOFILE of 200 (not raisable from inside) the agent keeps 64 in reserve:
    136 sockets a process, so 500 connections take 4 processes."""
    server = subprocess.Popen(local_agent_argv(["server", "--bind", "127.0.0.1", "--mode", "hold",
                                                "--backlog", "1024", "--max-seconds", "60"]),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        port = json.loads(server.stdout.readline())["port"]
        opener = subprocess.Popen(["prlimit", "--nofile=200:200", "--",
                                   *local_agent_argv(["open", "--target", f"127.0.0.1:{port}", "--count", "500",
                                                      "--deadline", "30", "--hold", "30"])],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        opened = json.loads(opener.stdout.readline())
        assert (opened["established"], opened["workers"]) == (500, 4), opened
        opener.stdin.write("release\n")
        opener.stdin.close()
        released = json.loads(opener.stdout.readline())
        assert released["still_open"] == 500, released
        opener.wait(timeout=30)
    finally:
        server.stdin.close()
        stats = json.loads(server.stdout.readline())
        server.wait(timeout=10)
    assert stats["accepted"] == 500 and stats["peak_open"] == 500


class LoopbackServer:
    """The agent's server role on 127.0.0.1, stopped with its stats at the end."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(local_agent_argv(["server", "--bind", "127.0.0.1", "--max-seconds", "60",
                                                       *args]),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.ready = json.loads(self.proc.stdout.readline())
        self.endpoint = f"127.0.0.1:{self.ready['port']}"

    def stop(self):
        self.proc.stdin.close()
        stats = json.loads(self.proc.stdout.readline())
        self.proc.wait(timeout=10)
        return stats


def _agent_events(*args, count=1):
    out = subprocess.run(local_agent_argv(list(args)), capture_output=True, text=True, timeout=60,
                         input="release\n")
    return [json.loads(line) for line in out.stdout.splitlines()[:count]]


def test_http_server_answers_403_9_past_its_cap_like_iis():
    server = LoopbackServer("--mode", "http", "--max-conns", "3", "--over-status", "403.9")
    try:
        (answers,) = _agent_events("http", "--target", server.endpoint, "--requests", "5", "--hold", "0")
    finally:
        stats = server.stop()
    assert answers["order"] == ["200", "200", "200", "403.9", "403.9"]
    assert (stats["served"], stats["over_cap"]) == (3, 2)


def test_threaded_server_answers_only_as_many_connections_as_it_has_threads():
    server = LoopbackServer("--mode", "threaded", "--threads", "4")
    try:
        (answers,) = _agent_events("http", "--target", server.endpoint, "--requests", "7", "--timeout", "1",
                                   "--hold", "0")
    finally:
        stats = server.stop()
    assert answers["statuses"] == {"200": 4, "timeout": 3}
    assert (stats["accepted"], stats["peak_busy"]) == (7, 4)


def test_a_pooling_client_never_opens_more_than_its_pool():
    server = LoopbackServer("--mode", "http", "--delay", "0.2")
    try:
        (answers,) = _agent_events("http", "--target", server.endpoint, "--requests", "6", "--pool", "2")
    finally:
        stats = server.stop()
    assert answers["statuses"] == {"200": 6}
    assert stats["peak_open"] == 2
    assert answers["longest_wait_s"] >= 0.35  # the last requests waited two rounds for a connection


def test_server_with_a_low_nofile_reports_emfile():
    server = LoopbackServer("--mode", "hold", "--nofile", "20", "--backlog", "64")
    room = server.ready["nofile"] - server.ready["fds_open"]
    try:
        (opened,) = _agent_events("open", "--target", server.endpoint, "--count", str(room + 5),
                                  "--deadline", "20", "--hold", "1")
    finally:
        stats = server.stop()
    assert opened["established"] == room + 5  # the kernel completed every handshake
    assert stats["accepted"] == room and stats["accept_errors"].get("EMFILE", 0) > 0


def test_burst_classifies_refused_connects():
    (burst, released) = _agent_events("burst", "--target", "127.0.0.1:9", "--count", "3", "--settle", "2",
                                      "--hold", "0", count=2)
    assert burst["states"] == {"ECONNREFUSED": 3}
    assert released["connected"] == {}


def test_http_status_names_the_iis_substatus():
    from pytest_connlab.agent.http import status_of
    assert status_of(b"HTTP/1.1 403 Forbidden\r\n\r\n403.9 Too many users") == "403.9"
    assert status_of(b"HTTP/1.1 503 Service Unavailable\r\n\r\n") == "503"


def _agent(args):
    from pytest_connlab.lab.providers.agentproc import AgentProcess
    return AgentProcess(subprocess.Popen, local_agent_argv(args), args[0])


def test_hold_server_workers_share_one_port_and_push_to_every_subscriber():
    """Two forked server workers (SO_REUSEPORT) and two client workers on loopback: 1,500
    subscribers, two pushes, each delivered to all 1,500; the server counts what it holds."""
    server = _agent(["hold-server", "--bind", "127.0.0.1", "--workers", "2", "--push", "--max-seconds", "60"])
    clients = None
    try:
        port = server.expect("ready", 15)["port"]
        plan = [{"127.0.0.1": 750}, {"127.0.0.1": 750}]
        clients = _agent(["hold-clients", "--target", f"127.0.0.1:{port}", "--plan", json.dumps(plan),
                          "--deadline", "30", "--hold", "60", "--subscribe"])
        clients.expect("ready", 15)
        opened = clients.expect("opened", 60)
        assert opened["held"] == 1500 and opened["errors"] == {} and opened["workers_reporting"] == 2
        for _ in range(2):
            server.command("push")
            pushed = server.expect("pushed", 30)
            assert pushed["written"] == 1500 and pushed["failed"] == 0
        received: dict = {}
        for _ in range(50):  # the updates are on their way; ask until both arrived everywhere
            clients.command("report")
            for seq, values in clients.expect("updates", 30)["latencies_us"].items():
                received.setdefault(seq, []).extend(values)
            if [len(v) for v in received.values()] == [1500, 1500]:
                break
        assert sorted(received) == ["1", "2"] and all(len(v) == 1500 for v in received.values())
        assert all(v >= 0 for values in received.values() for v in values)
        clients.release()
        assert clients.expect("released", 30)["workers_failed"] == 0
        server.release()
        stats = server.expect("stats", 30)
        assert stats["accepted"] == 1500 and stats["peak_open"] == 1500
        assert stats["closed_by_peer"] == 1500 and stats["open_at_end"] == 0
    finally:
        for proc in (clients, server):
            if proc is not None:
                proc.stop()


def test_the_events_both_sides_share_carry_the_fields_proto_declares():
    """The agent's real events against agent/proto.py's TypedDicts: the keys a total one declares are
    all there, and no event carries a key its TypedDict does not declare."""
    from pytest_connlab.agent import proto
    server = subprocess.Popen(local_agent_argv(["server", "--bind", "127.0.0.1", "--mode", "hold",
                                                "--backlog", "16", "--max-seconds", "30"]),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(server.stdout.readline())
        opener = subprocess.run(local_agent_argv(["open", "--target", f"127.0.0.1:{ready['port']}", "--count", "2",
                                                  "--deadline", "10", "--hold", "0"]),
                                capture_output=True, text=True, timeout=30)
        churn = subprocess.run(local_agent_argv(["churn", "--target", f"127.0.0.1:{ready['port']}", "--count", "3",
                                                 "--deadline", "10", "--workers", "2"]),
                               capture_output=True, text=True, timeout=30)
    finally:
        server.stdin.close()
        stats = json.loads(server.stdout.readline())
        server.wait(timeout=10)
    opened, released = (json.loads(line) for line in opener.stdout.splitlines())
    result = json.loads(churn.stdout)
    assert set(opened) == proto.Opened.__required_keys__
    assert opened["established"] == 2 and result["succeeded"] == 3
    for event, typed in ((ready, proto.Ready), (stats, proto.Stats), (released, proto.Released),
                         (result, proto.ChurnResult)):
        assert event["event"] == typing.get_args(typing.get_type_hints(typed)["event"])[0]
        assert set(event) <= set(typed.__annotations__), f"{typed.__name__}: {set(event) - set(typed.__annotations__)}"
