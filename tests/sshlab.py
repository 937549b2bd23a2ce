"""Real SSH hosts for the ssh-provider tests: sshd (openssh-server) in lab network namespaces.

The namespaces are made by the netns provider under a run lock of their own, so a
crashed test run leaves nothing a later sweep would not remove. Each namespace
runs its own sshd with a fresh host key on its lab address; the inventory names
the host key in a known_hosts file, so paramiko verifies it.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from pytest_connlab.lab.addressing import SubnetAllocator, worker_slice
from pytest_connlab.lab.names import new_run_id
from pytest_connlab.lab.providers.netns import NetnsHost, NetnsProvider
from pytest_connlab.lab.reaper import RunLock
from pytest_connlab.lab.topology import TopologyRequest, plan

SSHD = "/usr/sbin/sshd"


def sshd_missing() -> str | None:
    """Why these tests cannot run here, or None."""
    if not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
        return "openssh-server is not installed (apt-get install openssh-server)"
    try:
        import paramiko  # noqa: F401
    except ImportError:
        return "paramiko is not installed"
    return None


def _sshd_config(folder: Path, address: str, host_key: Path, authorized: Path) -> Path:
    config = folder / "sshd_config"
    config.write_text(
        f"ListenAddress {address}\nPort 22\nHostKey {host_key}\nAuthorizedKeysFile {authorized}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"UsePAM no\nStrictModes no\nSubsystem sftp internal-sftp\nPidFile {folder / 'sshd.pid'}\nLogLevel ERROR\n")
    return config


@contextmanager
def ssh_hosts(folder: Path, clients: int = 2, ips_per_client: int = 3) -> Iterator[Path]:
    """Namespaces with sshd; yields the path of an inventory naming them."""
    lock = RunLock(new_run_id()).acquire()
    provider = NetnsProvider()
    topology = plan(TopologyRequest(clients, ips_per_client), SubnetAllocator(worker_slice(0, 1)))
    hosts = provider.realise(topology, f"connlab-{lock.run_id}-ssh-1")
    daemons: list[subprocess.Popen[bytes]] = []
    try:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        user_key = folder / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(user_key)], check=True)
        authorized = folder / "authorized_keys"
        authorized.write_text((folder / "id_ed25519.pub").read_text())
        known_hosts = folder / "known_hosts"
        lines, entries = [], {}
        for host in hosts:
            assert isinstance(host, NetnsHost)
            host_dir = folder / host.spec.name
            host_dir.mkdir()
            host_key = host_dir / "ssh_host_ed25519_key"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
            address = host.spec.address
            lines.append(f"{address} {(host_dir / 'ssh_host_ed25519_key.pub').read_text().strip()}")
            config = _sshd_config(host_dir, address, host_key, authorized)
            daemons.append(host.popen([SSHD, "-D", "-e", "-f", str(config)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            entries[host.spec.name] = {
                "address": address, "user": "root", "key": str(user_key), "known_hosts": str(known_hosts),
                "role": host.spec.role, "lab_addresses": list(host.spec.addresses), "netns": host.ns_name}
        known_hosts.write_text("\n".join(lines) + "\n")
        inventory = folder / "inventory.yaml"
        inventory.write_text(yaml.safe_dump({"hosts": entries}))
        _wait_listening(hosts)
        yield inventory
    finally:
        for daemon in daemons:
            daemon.kill()
            daemon.wait()
        provider.destroy(hosts)
        lock.release()


def _wait_listening(hosts: list) -> None:
    deadline = time.monotonic() + 15
    for host in hosts:
        while True:
            out = subprocess.run(["ss", "-Hltn", "sport = :22"], capture_output=True, text=True,
                                 preexec_fn=_entering(host)).stdout
            if out.strip():
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd in {host.label} did not listen within 15 s")
            time.sleep(0.1)


def _entering(host: NetnsHost):  # type: ignore[no-untyped-def]
    from pytest_connlab.lab.providers import nsexec
    return nsexec.entering(host.ns_fd)
