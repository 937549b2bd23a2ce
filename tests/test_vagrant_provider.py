"""The vagrant provider: the top-level Vagrantfile's machines (docker provider here), over SSH."""
import shutil

import pytest

from pytest_connlab.errors import ProviderUnavailable
from pytest_connlab.lab.providers import ProviderOptions, get_provider
from pytest_connlab.lab.providers.vagrant import WORK_ROOT, parse_ssh_config

from .labtools import REPO, results
from .test_lab_suite import EXPECTED


@pytest.fixture
def needs_vagrant():
    try:
        get_provider("vagrant", ProviderOptions(vagrant_dir=REPO)).check()
    except ProviderUnavailable as exc:
        pytest.skip(str(exc))


def _left_by(run_id: str) -> list[str]:
    import docker
    client = docker.from_env(timeout=30)
    containers = [c.name for c in client.containers.list(all=True, filters={"label": f"connlab.run={run_id}"})]
    networks = [n.name for n in client.networks.list(filters={"label": "connlab.lab"})
                if run_id in (n.attrs["Labels"] or {}).get("connlab.lab", "")]
    images = [i.short_id for i in client.images.list(filters={"label": "connlab.lab"})
              if run_id in i.labels.get("connlab.lab", "")]
    return containers + networks + images


@pytest.mark.usefixtures("needs_vagrant")
def test_vagrant_machines_observe_what_netns_observes_and_are_destroyed(pytester):
    out = pytester.path / "vagrant.json"
    result = pytester.runpytest_subprocess(
        str(REPO / "labs"), "--lab=win2003", "--lab-provider=vagrant", f"--lab-vagrant-dir={REPO}",
        "-k", "time_wait_exhausts or never_accepts or router_connection_table", f"--lab-json={out}",
        "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*vagrant provider does not build routed topologies*"])
    run_id, rows = results(out)
    seen = {(r["test"].split("::")[-1].split("[")[0], r["profile"]): (r["observed"], r["ended_by"])
            for r in rows}
    assert seen == {key: EXPECTED[key] for key in seen} and len(seen) == 2
    assert all(r["provider"] == "vagrant" for r in rows)
    assert _left_by(run_id) == []
    assert not [p for p in WORK_ROOT.glob(f"connlab-{run_id}-*")] if WORK_ROOT.is_dir() else True


def test_no_vagrantfile_skips_with_one_reason(pytester):
    if shutil.which("vagrant") is None:
        pytest.skip("vagrant is not installed")
    pytester.makepyfile("def test_needs_a_lab(lab):\n    pass\n")
    result = pytester.runpytest_subprocess("--lab-provider=vagrant", f"--lab-vagrant-dir={pytester.path}", "-rs",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([f"*no Vagrantfile in {pytester.path}*--lab-vagrant-dir*"])


SSH_CONFIG = """Host server
  HostName 127.0.0.1
  User root
  Port 2222
  UserKnownHostsFile /dev/null
  IdentityFile "/run/connlab/vagrant/connlab-1-main-1/id_ed25519"

Host client1
  HostName 127.0.0.1
  User root
  Port 2200
"""


def test_ssh_config_is_read_per_machine():
    machines = parse_ssh_config(SSH_CONFIG)
    assert machines["server"]["Port"] == "2222"
    assert machines["server"]["IdentityFile"] == "/run/connlab/vagrant/connlab-1-main-1/id_ed25519"
    assert machines["client1"] == {"HostName": "127.0.0.1", "User": "root", "Port": "2200"}
