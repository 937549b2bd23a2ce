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
    from pytest_connlab.errors import LabSetupError
    with pytest.raises(LabSetupError, match="server: sysctl net.core.no_such_knob"):
        lab.set_sysctls(lab.server, {"net.core.no_such_knob": "1"})


@pytest.mark.settings(sysctl={"net.ipv4.ip_local_port_range": "20000 20999"})
def test_a_marker_that_changes_the_port_range_gets_the_expectation_it_implies(lab):
    obs = lab.probe.ephemeral_ports()
    assert (obs.observed, obs.expected, obs.ended_by) == (1000, 1000, "EADDRNOTAVAIL"), obs.explain()
    assert obs.expectation_from == "derived: net.ipv4.ip_local_port_range = 20000 20999"
    assert obs.ok


@pytest.mark.settings(sysctl={"net.core.somaxconn": 16})
def test_a_smaller_somaxconn_caps_the_backlog_at_17_handshakes(lab):
    obs = lab.probe.listen_backlog()
    assert (obs.observed, obs.expected, obs.ended_by) == (17, 17, "ETIMEDOUT"), obs.explain()


def test_a_profile_setting_the_kernel_refuses_fails_cleanly_naming_it(pytester):
    labs = pytester.path / "mylabs"
    labs.mkdir()
    (labs / "odd.yaml").write_text("title: Odd\nos: linux\nsources: {s: x}\nsettings:\n"
                                   "  net.ipv4.tcp_no_such_knob: {value: 1, source: s}\n")
    pytester.makeini("[pytest]\nconnlab_labs = mylabs\n")
    pytester.makepyfile("def test_x(lab):\n    pass\n")
    result = pytester.runpytest_subprocess("--lab=odd")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*connlab: profile *mylabs/odd.yaml: *sysctl net.ipv4.tcp_no_such_knob: *"])
    assert "Traceback" not in result.stdout.str()


SERVER = ["python3", "-c", """
import socket
srv = socket.create_server(("0.0.0.0", 8080), backlog=1024)
while True:
    conn, _ = srv.accept()
    conn.recv(1)
    conn.close()
"""]


@pytest.mark.settings(sysctl={"net.ipv4.ip_local_port_range": "20000 20099"})
def test_your_own_server_program_is_a_probe_target(lab):
    server = lab.server.start(SERVER, port=8080)
    obs = lab.probe.ephemeral_ports(target=server)
    assert (obs.observed, obs.ended_by) == (100, "EADDRNOTAVAIL"), obs.explain()
    assert server.process.running
    assert server.stop()["returncode"] == -15  # stopped by SIGTERM, as teardown does


def test_a_server_that_never_listens_is_a_clear_setup_error(lab):
    from pytest_connlab.errors import LabSetupError
    with pytest.raises(LabSetupError, match="exited with 3 before listening on port 8080"):
        lab.server.start(["python3", "-c", "import sys; print('no config'); sys.exit(3)"], port=8080)
