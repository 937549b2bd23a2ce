"""The ssh provider against real sshd hosts (in lab namespaces), driven with paramiko."""
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from pytest_connlab.errors import InventoryError
from pytest_connlab.lab.providers.inventory import load_inventory
from pytest_connlab.lab.providers.nsexec import NETNS_DIR, entering
from pytest_connlab.lab.providers.ssh import REMOTE_ROOT, SshHost, connect

from .labtools import REPO, results
from .sshlab import ssh_hosts, sshd_missing
from .test_lab_suite import EXPECTED

pytestmark = pytest.mark.usefixtures("needs_netns")

RESTORED_KEYS = ("net/ipv4/ip_local_port_range", "net/core/somaxconn", "net/ipv4/tcp_keepalive_time",
                 "net/ipv4/tcp_rfc1337", "net/ipv4/tcp_max_tw_buckets")


@pytest.fixture
def inventory(tmp_path):
    why = sshd_missing()
    if why:
        pytest.skip(why)
    with ssh_hosts(tmp_path) as path:
        yield path


def _sysctls_in(netns: str) -> dict[str, str]:
    fd = os.open(NETNS_DIR / netns, os.O_RDONLY)
    try:
        out = subprocess.run(["cat", *(f"/proc/sys/{k}" for k in RESTORED_KEYS)], capture_output=True,
                             text=True, preexec_fn=entering(fd), check=True).stdout
    finally:
        os.close(fd)
    return dict(zip(RESTORED_KEYS, out.splitlines()))


def test_the_suite_over_ssh_observes_what_netns_observes_and_restores_every_setting(pytester, inventory):
    hosts = yaml.safe_load(inventory.read_text())["hosts"]
    before = {name: _sysctls_in(h["netns"]) for name, h in hosts.items()}
    out = pytester.path / "ssh.json"
    result = pytester.runpytest_subprocess(
        str(REPO / "labs"), "--lab=win2003", "--lab-provider=ssh", f"--lab-inventory={inventory}",
        "-k", "never_accepts or hash_buckets or bucket_overflow", f"--lab-json={out}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*test_tcb_hash*ssh provider cannot apply Tcpip.MaxHashTableSize*"])
    _, rows = results(out)
    seen = {(r["test"].split("::")[-1].split("[")[0], r["profile"]): (r["observed"], r["ended_by"])
            for r in rows}
    assert seen == {key: EXPECTED[key] for key in seen} and len(seen) == 2
    assert all(r["provider"] == "ssh" for r in rows)
    after = {name: _sysctls_in(h["netns"]) for name, h in hosts.items()}
    assert after == before  # every sysctl the labs set on the hosts was put back
    assert before["client1"]["net/ipv4/ip_local_port_range"].split() != ["1025", "5000"]
    assert not list(Path(REMOTE_ROOT).glob("connlab-*"))  # the uploaded agents are gone


def test_a_command_with_much_stdout_and_stderr_does_not_stall(inventory):
    entry = next(h for h in load_inventory(inventory) if h.role == "server")
    client = connect(entry)
    try:
        from pytest_connlab.lab.providers.base import run
        from pytest_connlab.lab.topology import HostSpec, Nic
        host = SshHost(HostSpec("server", "server", (Nic("lab", "lan", entry.lab_addresses),)), entry, client, "/")
        script = ("import sys\nfor _ in range(40):\n"
                  "    sys.stdout.write('o' * 65536)\n    sys.stderr.write('e' * 65536)\n")
        done = run(host, ["python3", "-c", script], timeout=60)
        assert done.returncode == 0
        assert (len(done.stdout), len(done.stderr)) == (40 * 65536, 40 * 65536)
        echoed = run(host, ["cat"], input=b"x" * 300_000, timeout=60)
        assert echoed.stdout == b"x" * 300_000
    finally:
        client.close()


def test_a_stopped_remote_process_dies_with_its_group(inventory):
    entry = next(h for h in load_inventory(inventory) if h.role == "server")
    client = connect(entry)
    try:
        from pytest_connlab.lab.topology import HostSpec, Nic
        host = SshHost(HostSpec("server", "server", (Nic("lab", "lan", entry.lab_addresses),)), entry, client, "/")
        proc = host.popen(["sh", "-c", "sleep 300 & sleep 301"], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        group = proc.pid
        assert subprocess.run(["pgrep", "-g", str(group)], capture_output=True).returncode == 0
        proc.terminate()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10  # the background sleep is reparented and reaped after TERM
        while subprocess.run(["pgrep", "-g", str(group)], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "a process of the stopped group still runs"
            time.sleep(0.1)
    finally:
        client.close()


def test_a_changed_host_key_is_refused(pytester, inventory):
    data = yaml.safe_load(inventory.read_text())
    known = Path(data["hosts"]["server"]["known_hosts"])
    lines = known.read_text().splitlines()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(pytester.path / "other")], check=True)
    other = (pytester.path / "other.pub").read_text().split()
    known.write_text("\n".join(f"{line.split()[0]} {other[0]} {other[1]}" for line in lines) + "\n")
    pytester.makepyfile("def test_needs_a_lab(lab):\n    pass\n")
    result = pytester.runpytest_subprocess("--lab-provider=ssh", f"--lab-inventory={inventory}", "-rs",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*ssh to * failed: BadHostKeyException*"])


def test_an_unreachable_host_skips_with_one_reason(pytester, tmp_path):
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (tmp_path / "known").write_text("")
    hosts = {"server": {"address": "127.0.0.1", "port": 1, "user": "root", "key": str(key),
                        "known_hosts": str(tmp_path / "known"), "role": "server"},
             "client1": {"address": "127.0.0.1", "port": 1, "user": "root", "key": str(key),
                         "known_hosts": str(tmp_path / "known"), "role": "client"}}
    inv = tmp_path / "inv.yaml"
    inv.write_text(json.dumps({"hosts": hosts}))
    pytester.makepyfile("def test_needs_a_lab(lab):\n    pass\n")
    result = pytester.runpytest_subprocess("--lab-provider=ssh", f"--lab-inventory={inv}", "-rs",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*ssh to server (root@127.0.0.1:1) failed*"])


def _inventory_with(tmp_path, **changes):
    key = tmp_path / "id"
    key.write_text("not really a key, but a file")
    (tmp_path / "known").write_text("")
    base = {"address": "198.18.0.1", "user": "root", "key": str(key), "known_hosts": str(tmp_path / "known")}
    hosts = {"server": {**base, "role": "server"}, "client1": {**base, "role": "client"}}
    for dotted, value in changes.items():
        host, key_name = dotted.split("__")
        if value is None:
            hosts[host].pop(key_name)
        else:
            hosts[host][key_name] = value
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump({"hosts": hosts}))
    return path


@pytest.mark.parametrize(("change", "message"), [
    ({"server__role": None}, "hosts.server.role: required"),
    ({"client1__role": "switch"}, "hosts.client1.role: 'switch' is not one of server, client, router"),
    ({"server__port": 70000}, "hosts.server.port: 70000 is not a TCP port"),
    ({"server__colour": "blue"}, "hosts.server.colour: unknown key"),
    ({"client1__lab_addresses": ["198.18.0.300"]}, "hosts.client1.lab_addresses: '198.18.0.300' is not an IPv4"),
    ({"client1__key": "/no/such/key"}, "hosts.client1.key: no such file /no/such/key"),
    ({"server__os": "beos"}, "hosts.server.os: 'beos' is not one of linux, windows"),
    ({"client1__role": "server"}, "exactly one host needs role: server (found 2)"),
])
def test_a_wrong_inventory_is_a_usage_error_naming_the_key(pytester, tmp_path, change, message):
    path = _inventory_with(tmp_path, **change)
    with pytest.raises(InventoryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_inventory(path)
    pytester.makepyfile("def test_needs_a_lab(lab):\n    pass\n")
    result = pytester.runpytest_subprocess("--lab-provider=ssh", f"--lab-inventory={path}",
                                           "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*connlab: inventory {path}*"])
    assert "Traceback" not in result.stderr.str()


def test_the_ssh_provider_without_an_inventory_is_a_usage_error(pytester):
    pytester.makepyfile("def test_needs_a_lab(lab):\n    pass\n")
    result = pytester.runpytest_subprocess("--lab-provider=ssh", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--lab-provider ssh needs --lab-inventory PATH*"])


def test_windows_hosts_skip_lab_tests_and_point_to_connlab_windows_apply(pytester, tmp_path):
    path = _inventory_with(tmp_path, server__os="windows")
    pytester.makepyfile("def test_needs_a_lab(lab):\n    pass\n")
    result = pytester.runpytest_subprocess("--lab-provider=ssh", f"--lab-inventory={path}", "-rs",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*server run Windows*connlab windows apply PROFILE*"])


def test_the_agent_folder_is_made_fresh_and_private_never_taken_over(inventory, tmp_path):
    """Another user's folder at the old fixed path, or anywhere, is never used: each lab gets a
    new mktemp -d folder (0700, the login user's)."""
    from pytest_connlab.errors import ProviderUnavailable
    from pytest_connlab.lab.providers.ssh import make_agent_dir
    from pytest_connlab.lab.topology import HostSpec, Nic
    lab = "connlab-0badc0de-main-1"
    squatted = Path("/var/tmp/connlab") / lab
    squatted.mkdir(parents=True, exist_ok=True)
    os.chown(squatted, 65534, 65534)
    entry = next(h for h in load_inventory(inventory) if h.role == "server")
    client = connect(entry)
    made = []
    try:
        spec = HostSpec("server", "server", (Nic("lab", "lan", entry.lab_addresses),))
        for _ in range(2):
            made.append(Path(make_agent_dir(SshHost(spec, entry, client, "", lab))))
        assert made[0] != made[1] and squatted not in made
        for folder in made:
            info = folder.stat()
            assert folder.parent == Path(REMOTE_ROOT) and folder.name.startswith(f"connlab-{lab}.")
            assert (info.st_uid, info.st_mode & 0o777) == (0, 0o700)
        with pytest.raises(ProviderUnavailable, match="is not a lab name"):
            make_agent_dir(SshHost(spec, entry, client, "", "../../etc"))
    finally:
        client.close()
        for folder in made:
            folder.rmdir()
        squatted.rmdir()
