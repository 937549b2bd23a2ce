"""A figure measured while the host is under pressure is "disturbed", never "ok".

The pressure is made here, bounded, inside a lab of this test's own: a client whose FINs
never leave (nft drops them on its output) closes >100,000 connections, each of which
stays an orphan (FIN_WAIT1). Its route's rto_min of 2 s keeps the retransmissions few,
and tcp_orphan_retries=3 ends every orphan by itself after 2+4+8+16 s, even if this
test dies. Then the port probe runs in a second, clean lab.
"""
import time

import pytest

from pytest_connlab.lab.topology import TopologyRequest
from pytest_connlab.probes.common import start_agent_server
from pytest_connlab.profiles.emulation import nft_chain

pytestmark = pytest.mark.usefixtures("needs_netns")

LISTENERS = 5
SOURCES = 10  # source IPs, two per listener: each uses 11,000 of its 28,232 ports, so connect() finds one fast
PER_SOURCE = 11_000
ORPHANS_WANTED = 100_000


def _make_orphans(lab) -> int:
    """Close SOURCES x PER_SOURCE connections whose FIN never leaves the client; the host's orphan
    count afterwards."""
    lab.pin("server", {"net.core.somaxconn": "65535"}, "room for the never-accepted connections", override=True)
    servers = [start_agent_server(lab, "never", backlog=30_000) for _ in range(LISTENERS)]
    client = lab.clients[0]
    lab.pin("client", {"net.ipv4.ip_local_port_range": "32768 60999"},
            "28,232 ports per source whatever the profile says", override=True)
    lab.set_sysctls(client, {"net.ipv4.tcp_orphan_retries": "3"})
    route = client.run(["ip", "-4", "route", "show", "dev", "eth0"]).stdout.decode().split()[0]
    client.run(["ip", "route", "replace", route, "dev", "eth0", "rto_min", "2s"])
    lab.load_nft(client, [nft_chain("drop_fin", "output", ["tcp flags & fin == fin drop"])])
    churns = [client.agent("churn", "--target", servers[i % LISTENERS].endpoint, "--source", ip,
                           "--count", str(PER_SOURCE), "--deadline", "60")
              for i, ip in enumerate(client.addresses)]
    for churn in churns:
        churn.next_event(90)
        churn.stop()
    return int(client.observe()["pressure"]["orphans"])


def _let_the_fins_go(lab, bound_s: float = 60.0) -> int:
    """Stop dropping the client's FINs and wait (bounded) until its orphans are acknowledged away,
    so no later test runs on a pressed host; the orphans left."""
    client = lab.clients[0]
    client.run(["nft", "flush", "chain", "inet", lab.nft_table, "drop_fin"])
    deadline = time.monotonic() + bound_s
    while True:
        seen = client.observe()["pressure"]["orphans"]
        if seen < 1000 or time.monotonic() > deadline:
            return int(seen)
        time.sleep(1.0)


@pytest.mark.topology(clients=1, ips_per_client=SOURCES)
def test_the_port_probe_under_100k_orphans_is_disturbed(lab, lab_factory, lab_profile):
    measured = None
    try:
        orphans = _make_orphans(lab)
        assert orphans > ORPHANS_WANTED, f"only {orphans} orphans were made"
        measured = lab_factory.build(lab_profile, TopologyRequest())
        start = time.monotonic()
        obs = measured.probe.ephemeral_ports()
        assert obs.verdict == "disturbed", obs.explain()
        assert "orphaned TCP sockets" in obs.disturbed and not obs.ok
        assert "disturbed by the host" in obs.explain()
        assert obs.to_json()["verdict"] == "disturbed"
        assert time.monotonic() - start < 120
    finally:
        if measured is not None:
            lab_factory.destroy(measured)
        left = _let_the_fins_go(lab)
    assert left < 1000, f"{left} orphans still on the host after 60 s"
