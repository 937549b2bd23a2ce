"""A figure measured while the host is under pressure is "disturbed", never "ok".

The pressure is made here, bounded, inside a lab of this test's own: a client whose FINs
never leave (nft drops them on its output) closes ~100,000 connections, each of which
stays an orphan (FIN_WAIT1, retransmitting) for about a minute and a half, well past this
test. Then the port probe runs in a second, clean lab.
"""
import time

import pytest

from pytest_connlab.lab.topology import TopologyRequest
from pytest_connlab.probes.common import start_agent_server
from pytest_connlab.profiles.emulation import nft_chain

pytestmark = pytest.mark.usefixtures("needs_netns")

LISTENERS = 4
PER_LISTENER = 27_000  # under one source IP's 28,232 ports, and under the backlog below
ORPHANS_WANTED = 100_000


def _make_orphans(lab) -> int:
    """Close LISTENERS x PER_LISTENER connections whose FIN never leaves the client; the host's
    orphan count afterwards."""
    lab.pin("server", {"net.core.somaxconn": "65535"}, "room for the never-accepted connections", override=True)
    servers = [start_agent_server(lab, "never", backlog=30_000) for _ in range(LISTENERS)]
    client = lab.clients[0]
    lab.load_nft(client, [nft_chain("drop_fin", "output", ["tcp flags & fin == fin drop"])])
    churns = [client.agent("churn", "--target", s.endpoint, "--source", ip, "--count", str(PER_LISTENER),
                           "--deadline", "60")
              for s, ip in zip(servers, client.addresses)]
    for churn in churns:
        churn.next_event(90)
        churn.stop()
    return int(client.observe()["pressure"]["orphans"])


def _let_the_fins_go(lab, bound_s: float = 90.0) -> int:
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


@pytest.mark.topology(clients=1, ips_per_client=LISTENERS)
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
    assert left < 1000, f"{left} orphans still on the host after 90 s"
