"""The ssh provider: hosts are machines named in an inventory, driven with paramiko.

Host keys are verified against each host's known_hosts file (an unknown or
changed key refuses the connection). The agent is uploaded over SFTP into
``/var/tmp/connlab/<lab>/`` and run with the host's python3. The hosts outlive
the lab, so the lab restores every sysctl and removes its nft table at
teardown (``disposable_hosts = False``), and the upload is deleted.
"""
from __future__ import annotations

import os
import shlex
import socket
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...agent.workers import agent_command
from ...errors import InventoryError, ProviderUnavailable
from ..names import LabName
from ..topology import HostSpec, Nic, Topology
from .agentfiles import agent_files
from .base import Host, Spare
from .inventory import InventoryHost, load_inventory
from .sshproc import ChannelProcess

REMOTE_ROOT = "/var/tmp"  # each lab's agent goes into a fresh connlab-<lab>.XXXXXXXX made by mktemp -d
CONNECT_TIMEOUT = 15.0


@dataclass
class SshHost:
    """A host reached over SSH."""

    spec: HostSpec
    entry: InventoryHost
    client: Any
    agent_dir: str
    lab: str = ""  # the lab's name
    label: str = field(init=False)
    local_pids = False  # popen() pids are not this machine's processes

    def __post_init__(self) -> None:
        self.label = f"{self.spec.name}({self.entry.user}@{self.entry.address})"

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` on the host; the object answers like a Popen."""
        return ChannelProcess(self.client, argv, **kwargs)  # type: ignore[return-value]

    def agent_argv(self, args: Sequence[str]) -> list[str]:
        return agent_command(self.entry.python, self.agent_dir, list(args))


def socket_in_netns(netns: str, address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection made from inside the named network namespace (a socket keeps the
    namespace it was created in; only a helper thread enters it)."""
    import ctypes
    result: dict[str, Any] = {}

    def connect() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{netns}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.setns(fd, 0x40000000) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {netns}")
            result["sock"] = socket.create_connection((address, port), timeout=timeout)
        except OSError as exc:
            result["error"] = exc
        finally:
            os.close(fd)

    helper = threading.Thread(target=connect, name="connlab-netns-connect")
    helper.start()
    helper.join()
    if "error" in result:
        raise result["error"]
    sock: socket.socket = result["sock"]
    return sock


def connect(entry: InventoryHost) -> Any:
    """An SSH client for ``entry``; the host key must be in its known_hosts file."""
    import paramiko
    client = paramiko.SSHClient()
    client.load_host_keys(str(entry.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    sock = socket_in_netns(entry.netns, entry.address, entry.port, CONNECT_TIMEOUT) if entry.netns else None
    client.connect(entry.address, port=entry.port, username=entry.user, key_filename=str(entry.key),
                   timeout=CONNECT_TIMEOUT, banner_timeout=CONNECT_TIMEOUT, auth_timeout=CONNECT_TIMEOUT,
                   sock=sock, allow_agent=False, look_for_keys=False)
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(15)  # a dead controller's sessions end, and with them the agents
    return client


def _remote(host: SshHost, command: str) -> tuple[int, str]:
    """Run a shell command on the host; its exit status and its stdout then stderr."""
    _, out, err = host.client.exec_command(command, timeout=30)
    status = out.channel.recv_exit_status()
    return status, (out.read() + err.read()).decode(errors="replace").strip()


def make_agent_dir(host: SshHost) -> str:
    """A folder made fresh on the host for this lab's agent: ``mktemp -d`` in /var/tmp (mode 0700,
    owned by the login user, never one that existed before), checked after it is made."""
    if LabName.parse(host.lab or "") is None:
        raise ProviderUnavailable(f"connlab: {host.label}: {host.lab!r} is not a lab name")
    template = f"{REMOTE_ROOT}/connlab-{host.lab}.XXXXXXXX"
    status, text = _remote(host, f"umask 077 && mktemp -d {shlex.quote(template)}")
    folder = text.splitlines()[-1] if status == 0 and text else ""
    if not folder.startswith(f"{REMOTE_ROOT}/connlab-{host.lab}.") or "/" in folder[len(REMOTE_ROOT) + 1:]:
        raise ProviderUnavailable(f"connlab: {host.label}: cannot make a folder for the agent in {REMOTE_ROOT}: "
                                  f"{text or status}")
    status, owner = _remote(host, f"stat -c '%u %a %F' {shlex.quote(folder)} && id -u")
    fields = owner.split()
    if status != 0 or len(fields) < 4 or fields[0] != fields[-1] or fields[1] != "700" or fields[2] != "directory":
        _remote(host, f"rmdir {shlex.quote(folder)}")
        raise ProviderUnavailable(f"connlab: {host.label}: {folder} is not a fresh folder of the login user "
                                  f"({owner}); refused")
    return folder


def require_star(topology: Topology, who: str) -> None:
    """ProviderUnavailable when ``topology`` has a router: these hosts all share one lab network."""
    if any(h.role == "router" for h in topology.hosts):
        raise ProviderUnavailable(f"connlab: {who} does not build routed topologies; this test needs a "
                                  "router between clients and server")


def pick_hosts(topology: Topology, inventory: list[InventoryHost],
               source: str) -> list[tuple[HostSpec, InventoryHost]]:
    """Map the requested topology onto inventory hosts, as (lab host, inventory host) pairs;
    ProviderUnavailable when the inventory has too few."""
    require_star(topology, f"the ssh provider (inventory {source})")
    wanted_clients = len(topology.clients)
    ips = max(len(c.addresses) for c in topology.clients)
    servers = [h for h in inventory if h.role == "server"]
    clients = [h for h in inventory if h.role == "client"]
    if len(clients) < wanted_clients:
        raise ProviderUnavailable(f"connlab: inventory {source} has {len(clients)} client hosts; "
                                  f"this test needs {wanted_clients}")
    short = [c.name for c in clients[:wanted_clients] if len(c.lab_addresses) < ips]
    if short:
        raise ProviderUnavailable(f"connlab: inventory {source}: {', '.join(short)} have fewer than "
                                  f"the {ips} lab_addresses this test needs")
    chosen = [servers[0], *clients[:wanted_clients]]
    return [(HostSpec(spec.name, spec.role, (Nic("lab", "lan", entry.lab_addresses[:len(spec.addresses)]),)),
             entry)
            for spec, entry in zip((topology.server, *topology.clients), chosen)]


class SshProvider:
    """Hosts from an inventory, reached with paramiko."""

    name = "ssh"
    applies_birth = False  # hosts are not namespaces connlab creates from a parent
    disposable_hosts = False  # real machines: every setting is restored at teardown

    def __init__(self, inventory: Path | None) -> None:
        self.inventory_path = inventory

    def _inventory(self) -> list[InventoryHost]:
        if self.inventory_path is None:
            raise ProviderUnavailable("connlab: the ssh provider needs --lab-inventory PATH")
        try:
            return load_inventory(self.inventory_path)
        except InventoryError as exc:
            raise ProviderUnavailable(f"connlab: {exc}") from None

    @staticmethod
    def check_library() -> None:
        try:
            import paramiko  # noqa: F401
        except ImportError:
            raise ProviderUnavailable("connlab: the ssh provider needs paramiko (pip install paramiko)") from None

    def check(self) -> None:
        self.check_library()
        inventory = self._inventory()
        windows = [h.name for h in inventory if h.os == "windows"]
        if windows:
            raise ProviderUnavailable(
                f"connlab: inventory {self.inventory_path}: {', '.join(windows)} run Windows; the probes' "
                "agent reads Linux /proc, so lab tests cannot run there; `connlab windows apply PROFILE "
                "--inventory` sets a profile on them (untested until a Windows host runs it)")
        for entry in inventory:
            try:
                connect(entry).close()
            except Exception as exc:
                raise ProviderUnavailable(f"connlab: ssh to {entry.name} ({entry.user}@{entry.address}:"
                                          f"{entry.port}) failed: {type(exc).__name__}: {exc}") from None

    def realise(self, topology: Topology, prefix: str) -> list[Host]:
        pairs = pick_hosts(topology, self._inventory(), str(self.inventory_path))
        hosts: list[SshHost] = []
        try:
            for spec, entry in pairs:
                client = connect(entry)
                host = SshHost(spec, entry, client, "", prefix)
                hosts.append(host)
                self.upload_agent(host)
        except BaseException:
            self.destroy(list(hosts))
            raise
        return list(hosts)

    @staticmethod
    def upload_agent(host: SshHost) -> None:
        """Copy the agent over SFTP into a folder made fresh for this lab (see make_agent_dir)."""
        host.agent_dir = make_agent_dir(host)
        sftp = host.client.open_sftp()
        try:
            made: set[str] = {host.agent_dir}
            for name, data in agent_files():
                remote = f"{host.agent_dir}/{name}"
                folder = remote.rsplit("/", 1)[0]
                if folder not in made:
                    status, text = _remote(host, f"mkdir -p {shlex.quote(folder)}")
                    if status != 0:
                        raise ProviderUnavailable(f"connlab: {host.label}: cannot make {folder}: {text}")
                    made.add(folder)
                with sftp.open(remote, "wb") as f:
                    f.write(data)
        finally:
            sftp.close()

    def destroy(self, hosts: list[Host]) -> None:
        """Delete the uploaded agent and close the sessions (the lab restored the settings)."""
        for host in hosts:
            if not isinstance(host, SshHost):
                continue
            if not host.agent_dir:
                host.client.close()
                continue
            try:
                _remote(host, f"rm -rf {shlex.quote(host.agent_dir)}")
            except Exception:
                pass
            host.client.close()

    def sweep(self, spare: Spare, dry_run: bool = False) -> dict[LabName, list[str]]:
        """Nothing to sweep on this machine: an ssh lab makes no local resource. What a killed run
        left on the inventory's hosts (its agent folder under /var/tmp, settings it did not restore)
        is not reached here, since the sweep has no inventory; its agents ended with their sessions."""
        return {}

    def remove(self, lab: LabName) -> list[str]:
        """Nothing local to remove (see ``sweep``)."""
        return []

    def describe_access(self, host: Host) -> str:
        if isinstance(host, SshHost):
            e = host.entry
            return f"ssh -i {e.key} -p {e.port} {e.user}@{e.address}"
        return host.label
