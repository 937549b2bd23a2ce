"""The docker provider on a real dockerd: the suite's limits as on netns, labels, cleanup, skips."""
import os
import subprocess
import sys
import time

import pytest

from pytest_connlab.errors import ProviderUnavailable
from pytest_connlab.lab.providers import get_provider
from pytest_connlab.lab.providers.image import DEFAULT_IMAGE, Recipe, debootstrap_argv

from .labtools import REPO, host_sysctls, results
from .test_lab_suite import EXPECTED


def _docker_client():
    import docker
    return docker.from_env(timeout=30)


@pytest.fixture
def needs_docker():
    """Skip with the provider's own reason where no engine answers or the image is missing."""
    try:
        get_provider("docker").check()
    except ProviderUnavailable as exc:
        pytest.skip(str(exc))


def _left_by(run_id: str) -> list[str]:
    client = _docker_client()
    label = {"label": f"connlab.run={run_id}"}
    return [c.name for c in client.containers.list(all=True, filters=label)] + \
        [n.name for n in client.networks.list(filters=label)]


# One test of each kind of lab: one client with a profile's port range, a router with nft rules,
# two client hosts with 20 IPs (70,000 connections to one port), and one docker cannot reproduce.
DOCKER_SUBSET = "time_wait_exhausts or router_connection_table or one_port_holds or hash_buckets"


@pytest.mark.usefixtures("needs_docker")
def test_the_suite_on_docker_observes_what_netns_observes_and_leaves_nothing(pytester):
    before = host_sysctls()
    out = pytester.path / "docker.json"
    result = pytester.runpytest_subprocess(str(REPO / "labs"), "--lab=win2003", "--lab-provider=docker",
                                           "-k", DOCKER_SUBSET, f"--lab-json={out}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*test_tcb_hash*docker provider cannot apply Tcpip.MaxHashTableSize*"])
    run_id, rows = results(out)
    seen = {(r["test"].split("::")[-1].split("[")[0], r["profile"]): (r["observed"], r["ended_by"])
            for r in rows}
    assert seen == {key: EXPECTED[key] for key in seen}
    assert len(seen) == 3 and all(r["provider"] == "docker" and r["verdict"] == "ok" for r in rows)
    assert _left_by(run_id) == []
    assert host_sysctls() == before  # sysctls went into the containers' namespaces only


WAITING_TEST = """
import time
from pathlib import Path

def test_waits(lab):
    Path("lab-name").write_text(lab.name)
    time.sleep(120)
"""


@pytest.mark.usefixtures("needs_docker")
def test_a_killed_docker_run_is_swept_by_connlab_clean(pytester):
    pytester.makepyfile(WAITING_TEST)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                             "--lab-provider=docker"], cwd=pytester.path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    marker = pytester.path / "lab-name"
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marker.exists(), proc.communicate(timeout=5)[0]
    run_id = marker.read_text().split("-")[1]
    proc.kill()
    proc.communicate(timeout=30)
    left = _left_by(run_id)
    assert any(name.endswith("-server") for name in left) and any(name.endswith("-lan") for name in left)
    cleaned = subprocess.run([sys.executable, "-m", "pytest_connlab.cli", "clean"], capture_output=True,
                             text=True, timeout=120)
    assert cleaned.returncode == 0, cleaned.stderr
    assert f"run {run_id}: removed" in cleaned.stdout
    assert _left_by(run_id) == []


LAB_TEST = """
def test_needs_a_lab(lab):
    pass
"""


def test_no_docker_engine_skips_with_one_reason(pytester, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{pytester.path}/no-such-docker.sock")
    pytester.makepyfile(LAB_TEST)
    result = pytester.runpytest_subprocess("--lab-provider=docker", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no Docker engine answers*start dockerd or set DOCKER_HOST*"])


@pytest.mark.usefixtures("needs_docker")
def test_a_missing_image_skips_naming_it_and_how_to_build_it(pytester):
    pytester.makepyfile(LAB_TEST)
    result = pytester.runpytest_subprocess("--lab-provider=docker", "--lab-image=connlab-none:absent", "-rs",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*docker image connlab-none:absent not found*connlab image build*"])


@pytest.mark.usefixtures("needs_docker")
def test_lab_hosts_are_containers_on_the_lab_subnet_with_the_agent_copied_in(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.topology(clients=2, ips_per_client=3)
        def test_hosts(lab):
            client = lab.clients[1]
            shown = client.run(["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).stdout.decode()
            assert all(f"{a}/" in shown for a in client.addresses), shown
            assert all(a.startswith("198.1") for a in client.addresses)
            seen = client.sysctls(["net.ipv4.ip_local_port_range"])  # the agent runs in the container
            assert seen["net.ipv4.ip_local_port_range"].split() == ["1025", "5000"]
            hostname = client.run(["hostname"]).stdout.decode().strip()
            assert hostname == "client2"
    """)
    result = pytester.runpytest_subprocess("--lab=win2003", "--lab-provider=docker", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_image_tag_follows_what_goes_in():
    base = Recipe()
    assert base.tag == Recipe().tag and base.tag.startswith("connlab-lab:")
    assert Recipe(packages=(*base.packages, "tcpdump")).tag != base.tag
    assert Recipe(suite="trixie").tag != base.tag
    argv = debootstrap_argv(base, "/tmp/root")
    assert argv[:2] == ["debootstrap", "--variant=minbase"]
    assert "python3" in argv[2] and "nftables" in argv[2] and argv[-3:] == ["bookworm", "/tmp/root", base.mirror]
    assert DEFAULT_IMAGE == "connlab-lab:latest"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
@pytest.mark.usefixtures("needs_docker")
def test_connlab_image_build_finds_the_built_image_by_its_hash():
    done = subprocess.run([sys.executable, "-m", "pytest_connlab.cli", "image", "build"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{Recipe().tag}: already built" in done.stdout
    image = _docker_client().images.get(DEFAULT_IMAGE)
    assert image.labels.get("connlab.recipe") == Recipe().content_hash
