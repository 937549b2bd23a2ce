"""The lab fixture in-process: topology, settings marker, undo stack, host untouched."""
import pytest

from .labtools import host_sysctls

pytestmark = pytest.mark.usefixtures("needs_netns")


@pytest.mark.topology(clients=2, ips_per_client=3)
def test_topology_gives_each_client_its_addresses(lab):
    assert len(lab.clients) == 2
    for client in lab.clients:
        shown = client.run(["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout.decode()
        assert all(f"inet {a}/" in shown for a in client.addresses), shown
        assert len(client.addresses) == 3
    # every host reaches the server over the lab segment, nothing else
    routes = lab.clients[0].run(["ip", "-4", "route"]).stdout.decode().strip().splitlines()
    assert len(routes) == 1 and "dev eth0" in routes[0], routes


@pytest.mark.settings(sysctl={"net.core.somaxconn": 77})
def test_settings_marker_applies_inside_the_lab_only(lab):
    assert lab.server.sysctls(["net.core.somaxconn"]) == {"net.core.somaxconn": "77"}
    assert host_sysctls()["net/core/somaxconn"] != "77"


@pytest.mark.settings(sysctl={"net.core.somaxconn": 77})
def test_restore_undoes_settings_newest_first(lab):
    key = "net.ipv4.tcp_fin_timeout"
    original = lab.server.sysctls([key])[key]
    lab.set_sysctls(lab.server, {key: "7"})
    lab.set_sysctls(lab.server, {key: "9"})
    assert lab.server.sysctls([key])[key] == "9"
    assert lab.restore() == []
    assert lab.server.sysctls([key])[key] == original
    # the profile's (and marker's) settings were undone too: the fresh netns default is back
    assert lab.server.sysctls(["net.core.somaxconn"])["net.core.somaxconn"] == "4096"


def test_a_sysctl_the_kernel_rejects_names_the_key(lab):
    from pytest_connlab.labhost import LabSetupError
    with pytest.raises(LabSetupError, match="server: sysctl net.core.no_such_knob"):
        lab.set_sysctls(lab.server, {"net.core.no_such_knob": "1"})
