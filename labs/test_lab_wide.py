"""The lab is the profile for every program in it, not only for the probes.

Each test starts a plain program of its own in the lab (not the agent) and checks, with
real clients from Debian (curl, hping3, ping, ss), that the lab behaves as the profile says.
"""
import re
import subprocess
import time

import pytest

from pytest_connlab.profiles.emulation import (
    HALF_OPEN_OUTBOUND,
    INBOUND_COMPUTERS,
    INBOUND_IDLE_S,
    REFUSE_ON_FULL_BACKLOG,
    nft_chain,
)

BACKLOG = 8
NEVER_ACCEPTS = ["python3", "-c", f"""
import socket, time
listener = socket.create_server(("0.0.0.0", 8080), backlog={BACKLOG})
time.sleep(300)
"""]


def _needs(lab, *tools: str) -> None:
    """Skip where a lab host lacks a client this test drives (the docker image carries none)."""
    for host in {lab.server.name: lab.server, lab.clients[0].name: lab.clients[0]}.values():
        missing = [t for t in tools if host.run(["sh", "-c", f"command -v {t}"]).returncode != 0]
        if missing:
            pytest.skip(f"{host.name} has no {', '.join(missing)}")


def _fill_then_try(client, url: str, fillers: int) -> int:
    """Hold ``fillers`` curl connections on the listener (they never get an answer), then time one
    more curl's connect; its exit status (7: refused, 28: timed out, connecting or, connected, waiting
    for an answer). Every curl is bounded, killed and
    waited for, so the server's answers to their FINs are over before the caller looks at the wire."""
    script = (f"pids=''; for i in $(seq {fillers}); do curl -s -o /dev/null --max-time 20 {url} >/dev/null 2>&1 & "
              f"pids=\"$pids $!\"; done; sleep 1; "
              f"curl -s -o /dev/null --connect-timeout 3 --max-time 6 {url}; code=$?; "
              f"kill $pids 2>/dev/null; wait; sleep 0.2; echo $code")
    return int(client.run(["sh", "-c", script], timeout=30).stdout.split()[-1])


@pytest.mark.limit("listen_backlog")
def test_your_own_listener_that_stops_accepting_is_refused_as_the_profile_says(lab):
    _needs(lab, "curl", "hping3", "ss")
    server = lab.server.start(NEVER_ACCEPTS, port=8080)
    somaxconn = lab.server.int_sysctls(["net.core.somaxconn"])["net.core.somaxconn"]
    queued = min(BACKLOG, somaxconn) + 1  # Linux queues backlog + 1 before it counts a listener full
    client = lab.clients[0]
    code = _fill_then_try(client, f"http://{lab.server.address}:8080/", queued)
    ss = lab.server.run(["ss", "-Hltn", "sport = :8080"]).stdout.decode()
    # a source port no filler can hold (outside the ephemeral range), so the SYN meets only the listener
    syn = client.run(["hping3", "-S", "-s", "1999", "-k", "-p", "8080", "-c", "2", lab.server.address], timeout=15)
    replies = syn.stdout.decode()
    assert server.process.running
    if lab.emulated.get(REFUSE_ON_FULL_BACKLOG):  # Windows: a connect to a full backlog is refused
        assert code == 7, f"curl exit {code}: the connect past the backlog was not refused ({ss})"
        assert re.search(r"flags=RA", replies), replies  # the SYN itself got a reset
    else:  # Linux: the SYN is dropped and the client times out
        assert code == 28, f"curl exit {code}: expected a connect timeout ({ss})"
        # neither accepted (SYN-ACK) nor refused (reset); hping3 also shows the server's stray ACKs
        # to the killed fillers' FINs, which say nothing about the SYN
        assert not re.search(r"flags=(SA|RA|R)\b", replies), replies
    # ss on the server: the listener's accept queue held every filler (Recv-Q), its backlog is Send-Q;
    # killed curls leave their connections queued until accepted, so the count stands
    state, recv_q, send_q = ss.split()[:3]
    assert (state, int(recv_q), int(send_q)) == ("LISTEN", queued, queued - 1), ss


@pytest.mark.limit("listen_backlog")
def test_the_backlog_probe_counts_your_own_listener(lab):
    """The probe pointed at your program reads its listener's backlog (sock_diag) and counts, on the
    server, the connections it queued before the next connect was refused (Windows) or timed out."""
    server = lab.server.start(NEVER_ACCEPTS, port=8080)
    somaxconn = lab.server.int_sysctls(["net.core.somaxconn"])["net.core.somaxconn"]
    obs = lab.probe.listen_backlog(target=server)
    refused = bool(lab.emulated.get(REFUSE_ON_FULL_BACKLOG))
    assert obs.evidence["server"] == f"your program on {server.endpoint}"
    assert obs.evidence["app_backlog"] == min(BACKLOG, somaxconn)
    assert (obs.observed, obs.ended_by) == (min(BACKLOG, somaxconn) + 1,
                                            "ECONNREFUSED" if refused else "ETIMEDOUT"), obs.explain()
    assert server.process.running


HTTP_SERVER = ["python3", "-c", """
import http.server, socket, time

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(8)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

class DualStack(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6

DualStack(("::", 8080), Handler).serve_forever()
"""]
V6_PREFIX = "2001:2::"  # RFC 5180's benchmark range, inside this lab's own segment only


def _curl(client, url: str, max_time: float = 10) -> subprocess.Popen:
    return client.popen(["curl", "-s", "-g", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", str(max_time),
                         url], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _outcome(proc: subprocess.Popen) -> tuple[int, str]:
    """curl's exit status (0 answered, 7 refused, 28 timed out) and the HTTP status it got."""
    out, _ = proc.communicate(timeout=30)
    return proc.returncode, out.decode()


def _established(lab, count: int, bound_s: float = 10.0) -> None:
    """Wait (bounded) until the server holds ``count`` connections on port 8080 (at least ``count``;
    for 0: none left)."""
    deadline = time.monotonic() + bound_s
    while (lambda n: n > 0 if count == 0 else n < count)(
            lab.server.observe(8080)["sockets"]["local_port"].get("ESTABLISHED", 0)):
        assert time.monotonic() < deadline, f"the server never held {count} connections"
        time.sleep(0.1)


def _slots_freed(lab, bound_s: float = 10.0) -> None:
    """Wait until every computer has left the inbound cap's sets: the watcher frees a slot once its
    computer has had no connection for INBOUND_IDLE_S, at its next poll (later on a busy machine)."""
    time.sleep(INBOUND_IDLE_S)
    deadline = time.monotonic() + bound_s
    while _set_size(lab, "inbound_computers") or _set_size(lab, "inbound_computers6"):
        assert time.monotonic() < deadline, f"a slot was not freed within {INBOUND_IDLE_S + bound_s:.0f} s"
        time.sleep(0.1)


def _at_once(lab, urls: list[str], first: int) -> list[tuple[int, str]]:
    """Slow requests from every client, the first ``first`` of them admitted before the others start."""
    # /slow answers after 8 s: long enough for every early request to be held at once, also where
    # each curl starts slowly (a guest on a software CPU, reached over SSH: about 0.5 s each)
    early = [_curl(c, u, max_time=20) for c, u in zip(lab.clients[:first], urls)]
    _established(lab, first)
    late = [_curl(c, u, max_time=20) for c, u in zip(lab.clients[first:], urls[first:])]
    return [_outcome(p) for p in (*early, *late)]


@pytest.mark.topology(clients=12)
@pytest.mark.limit("inbound_cap")
def test_your_own_server_serves_n_computers_at_once_and_frees_their_slots(lab):
    _needs(lab, "curl", "hping3", "ping")
    cap = lab.emulated.get(INBOUND_COMPUTERS)
    at_once = min(cap or len(lab.clients), len(lab.clients))
    lab.server.start(HTTP_SERVER, port=8080)
    server = lab.server.address
    # one at a time: each computer asks, is answered and leaves; the next comes once the slot is free
    for client in lab.clients:
        assert _outcome(_curl(client, f"http://{server}:8080/")) == (0, "200"), client.name
        if cap:
            _slots_freed(lab)
    # ping and UDP take no slot: the two computers that will come last send both first
    for client in lab.clients[-2:]:
        assert client.run(["ping", "-c", "1", "-W", "2", server]).returncode == 0
        client.run(["hping3", "--udp", "-p", "9", "-c", "1", server], timeout=15)
    # all at once, IPv4: the first `at_once` computers are served, the others refused (reset to the SYN)
    if cap:
        _slots_freed(lab)
    seen = _at_once(lab, [f"http://{server}:8080/slow"] * len(lab.clients), at_once)
    assert seen[:at_once] == [(0, "200")] * at_once, seen
    assert all(code == 7 for code, _ in seen[at_once:]), seen
    # and IPv6, capped the same way
    lab.server.run(["ip", "-6", "addr", "add", f"{V6_PREFIX}1/64", "dev", "eth0", "nodad"])
    for n, client in enumerate(lab.clients, start=2):
        client.run(["ip", "-6", "addr", "add", f"{V6_PREFIX}{n:x}/64", "dev", "eth0", "nodad"])
    if cap:
        _slots_freed(lab)
    seen6 = _at_once(lab, [f"http://[{V6_PREFIX}1]:8080/slow"] * len(lab.clients), at_once)
    assert seen6[:at_once] == [(0, "200")] * at_once, seen6
    assert all(code == 7 for code, _ in seen6[at_once:]), seen6


HOLDS = ["python3", "-c", """
import selectors, socket
listener = socket.create_server(("0.0.0.0", 8080), backlog=1024)
sel = selectors.DefaultSelector()
sel.register(listener, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        if key.fileobj is listener:
            conn, _ = listener.accept()
            sel.register(conn, selectors.EVENT_READ)  # kept open, never answered
        elif not key.fileobj.recv(4096):
            sel.unregister(key.fileobj)  # the client has gone: close too
            key.fileobj.close()
"""]


@pytest.mark.limit("keepalive")
def test_keepalive_finds_your_own_server_gone(lab):
    """The keepalive probe against your program (it keeps idle connections open and never writes):
    the client's keepalive probes to it are counted on the server's side of the wire."""
    server = lab.server.start(HOLDS, port=8080)
    obs = lab.probe.keepalive(target=server)
    assert obs.ok, obs.explain()
    assert obs.evidence["server"] == f"your program on {server.endpoint}"


def _room_to_accept(lab) -> None:
    """somaxconn 4096 before the holding server listens (its backlog is fixed at listen()): a profile's
    small cap (XP Home: 5) would otherwise let the refuse-on-full watcher reset fillers that arrive at once."""
    lab.pin("server", {"net.core.somaxconn": "4096"}, "the cap measured is elsewhere", override=True)


@pytest.mark.settings(windows={"Tcpip.TcpNumConnections": 20})
@pytest.mark.limit("connection_cap")
def test_your_own_server_is_capped_at_tcp_num_connections(lab):
    """The cap (nft ct count on the server's input) holds for your program: the probe counts 20 on it,
    and curl's 21st connect, after 20 of curl's own, is refused."""
    _needs(lab, "curl")
    _room_to_accept(lab)
    server = lab.server.start(HOLDS, port=8080)
    obs = lab.probe.connection_cap(target=server)
    assert (obs.observed, obs.ended_by) == (20, "ECONNREFUSED"), obs.explain()
    assert obs.evidence["server"] == f"your program on {server.endpoint}"
    _established(lab, 0, bound_s=15.0)  # the probe's connections are gone before curl's
    code = _fill_then_try(lab.clients[0], f"http://{lab.server.address}:8080/", 20)
    assert code == 7, f"curl exit {code}: the 21st connection was not refused"
    assert server.process.running


@pytest.mark.topology(router=True)
@pytest.mark.settings(emulated={"Router.ConnectionTableSize": 16})
@pytest.mark.limit("router_table")
def test_your_own_server_behind_a_full_router_table(lab):
    """Through a router whose table holds 16 connections, your program gets 16; curl's 17th SYN is
    dropped at the router (curl times out)."""
    _needs(lab, "curl")
    _room_to_accept(lab)
    server = lab.server.start(HOLDS, port=8080)
    obs = lab.probe.router_table(target=server)
    assert (obs.observed, obs.ended_by) == (16, "ETIMEDOUT"), obs.explain()
    _established(lab, 0, bound_s=15.0)
    code = _fill_then_try(lab.clients[0], f"http://{lab.server.address}:8080/", 16)
    assert code == 28, f"curl exit {code}: the 17th connection was not dropped at the router"


def _unanswered_port(lab, port: int) -> None:
    """The server drops every SYN to ``port`` and keeps each connection's (source, port) in a set."""
    lab.load_nft(lab.server, [
        "set unanswered { type ipv4_addr . inet_service; size 65535; flags dynamic; }",
        nft_chain("unanswered", "input", [f"tcp dport {port} add @unanswered {{ ip saddr . tcp sport }} drop"]),
    ])


def _set_size_once_at(lab, name: str, want: int, at_least_s: float, bound_s: float) -> int:
    """The nft set's size once it holds ``want`` elements and ``at_least_s`` have passed, or at
    ``bound_s`` (what it holds then)."""
    start = time.monotonic()
    while True:
        size = _set_size(lab, name)
        waited = time.monotonic() - start
        if (size >= want and waited >= at_least_s) or waited >= bound_s:
            return size
        time.sleep(0.1 if size >= want or waited < at_least_s else 0.05)


def _set_size(lab, name: str) -> int:
    import json
    out = lab.server.run(["nft", "-j", "list", "set", "inet", lab.nft_table, name]).stdout
    return sum(len(item["set"].get("elem", [])) for item in json.loads(out)["nftables"] if "set" in item)


@pytest.mark.limit("outbound_half_open")
def test_every_program_of_a_client_waits_past_the_half_open_cap(lab):
    """curl, not the agent: 20 curls connect to a port that never answers; on XP SP2 only 10 SYNs leave
    the client, and one more curl to a live server waits for a slot (until the 20 give up at 3 s)
    instead of failing."""
    _needs(lab, "curl")
    lab.server.start(HTTP_SERVER, port=8080)
    _unanswered_port(lab, 9)
    server = lab.server.address
    script = (f"for i in $(seq 20); do curl -s -o /dev/null --max-time 3 http://{server}:9/ & done; sleep 0.5; "
              f"curl -s -o /dev/null -w '%{{http_code}} %{{time_connect}}' --max-time 10 http://{server}:8080/; wait")
    curls = lab.clients[0].popen(["sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    cap = lab.emulated.get(HALF_OPEN_OUTBOUND)
    # read while the 20 still wait (when they give up, the ones that waited go out one by one): as soon
    # as the SYNs that can leave have, 2 s at least (a guest on a software CPU starts 20 curls slowly)
    reached = _set_size_once_at(lab, "unanswered", cap or 20, at_least_s=2.0, bound_s=15.0)
    status, connect_s = curls.communicate(timeout=30)[0].decode().split()
    assert status == "200", f"the live curl got {status}"
    if cap:  # XP SP2: cap SYNs left at once; the live connect waited until the 20 gave up, then completed
        assert reached == cap, f"{reached} SYNs reached the server, expected {cap}"
        assert 1.5 < float(connect_s) < 6, f"the live curl connected after {connect_s} s"
    else:
        assert reached == 20, f"{reached} SYNs reached the server"
        assert float(connect_s) < 1, f"the live curl connected after {connect_s} s"
