"""The vm provider: each lab host a qemu guest with its own kernel, its own RAM and its own limits.

Segments are bridges in lab namespaces (``<lab>-<segment>``, as on netns); each guest's
NICs are taps made on those bridges and handed to qemu, which runs in its host's own lab
namespace (``<lab>-<host>``). The guest boots the image of ``connlab image build --vm``
(a Debian kernel, a read-only root under a RAM overlay) and answers SSH (``sshd -i``) on
a virtio-serial port, so control needs no lab address: paramiko runs over the port's
socket, and the agent, its upload and every probe work as on the ssh provider. The
guest's sysctls are its own kernel's, so kernel-wide keys (nf_conntrack_max, tcp_mem,
fs.nr_open, ...) are lab settings here. qemu dies with the controller (PDEATHSIG); each
guest's pidfile sits in the run folder, and the sweep ends only qemu processes of dead
runs (by pid, command line checked).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from ...agent.workers import agent_command
from ...errors import ProviderUnavailable
from ..names import LabName
from ..rundir import LOCK_DIR, private_dir
from ..topology import MAX_TCP_HASH, TCP_HASH_KEY, HostSpec, Topology
from . import nsexec, nsthread, rtnl
from .agentfiles import agent_tar
from .base import Host, Spare
from .netns import BIRTH_REPORT, BRIDGE_INDEX
from .qemu import DEFAULT_MEMORY_MB, QEMU, Guest, GuestNic, GuestPaths, accelerator, qemu_argv
from .sshproc import ChannelProcess, SessionLost
from .tap import open_tap
from .vmimage import HOST_KEY_ALIAS, VmImage, find

VM_DIR = LOCK_DIR / "vm"  # /run/connlab/vm/<lab>/: pidfiles, QMP and control sockets, console logs
AGENT_DIR = "/opt/connlab"
BOOT_TIMEOUT = 180.0  # TCG boots of several guests at once on 2 cores
# every process started in a guest runs with the default OOM score (sshd, which starts them, is exempt)
OOM_DEFAULT = ["sh", "-c", 'echo 0 > /proc/self/oom_score_adj; exec "$@"', "connlab"]


@dataclass
class VmHost:
    """A host that is a qemu guest, reached by SSH over its virtio-serial port."""

    spec: HostSpec
    ns_name: str
    guest: Guest
    memory_mb: int
    vcpus: int
    accel: str
    client: Any = None
    boot_s: float = 0.0
    kernel_release: str = ""
    image: VmImage | None = None  # what the session is opened with (its key and known host key)
    reconnects: int = 0  # sessions opened again after one ended
    birth_report: dict[str, str | None] = field(default_factory=dict)  # what its kernel booted with
    label: str = field(init=False)
    local_pids = False  # popen() pids are the guest's, not this machine's
    own_kernel = True  # kernel-wide sysctls and process limits are this host's alone

    def __post_init__(self) -> None:
        self.label = f"{self.spec.name}({self.ns_name}, {self.memory_mb} MiB)"

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` in the guest; the object answers like a Popen. A session that ended (sshd in
        a guest out of memory can fail or be killed) is opened again once: the guest's init starts
        a new ``sshd -i`` on the control port whenever the last one exits."""
        try:
            return ChannelProcess(self.client, [*OOM_DEFAULT, *argv], **kwargs)  # type: ignore[return-value]
        except SessionLost:
            if self.image is None:
                raise
        self.reconnect()
        return ChannelProcess(self.client, [*OOM_DEFAULT, *argv], **kwargs)  # type: ignore[return-value]

    def reconnect(self) -> None:
        """A new SSH session over the control port, in place of one that ended."""
        try:
            self.client.close()
        except Exception:
            pass
        self.client = _connect(self, self.image)
        self.reconnects += 1

    def agent_argv(self, args: Sequence[str]) -> list[str]:
        return agent_command("python3", AGENT_DIR, list(args))

    def console_tail(self, limit: int = 3000) -> str:
        return self.guest.console_tail(limit)


def mac_of(host_index: int, nic_index: int) -> str:
    """A locally administered MAC (qemu's 52:54:00 prefix), unique within a lab."""
    return f"52:54:00:00:{host_index:02x}:{nic_index:02x}"


def boot_params(birth: Sequence[tuple[str, str]]) -> list[str]:
    """The guest kernel's command line for a host's birth settings. A namespace is born with the TCP
    hash its parent's ``tcp_child_ehash_entries`` names; a guest's one table is sized at boot by
    ``thash_entries``. No other birth setting exists; an unknown one is refused, naming it."""
    params = []
    for key, value in birth:
        if key != TCP_HASH_KEY:
            raise ValueError(f"the vm provider cannot boot a guest with {key} (only {TCP_HASH_KEY})")
        if not value.isdigit() or not 1 <= int(value) <= MAX_TCP_HASH:
            raise ValueError(f"{TCP_HASH_KEY} = {value!r}: an integer from 1 to {MAX_TCP_HASH} is needed")
        params.append(f"thash_entries={int(value)}")
    return params


def nic_script(spec: HostSpec, host_index: int, segments: dict[str, IPv4Network]) -> str:
    """A shell script that names the guest's NICs after the topology (found by MAC), addresses them
    and adds the host's routes. Every word in it comes from the planned topology."""
    lines = ["set -e",
             'byname() { for d in /sys/class/net/*; do [ "$(cat "$d/address")" = "$1" ] && '
             '{ ip link set dev "${d##*/}" down; ip link set dev "${d##*/}" name "$2"; return 0; }; done; '
             'echo "no NIC with MAC $1" >&2; exit 1; }']
    for j, _ in enumerate(spec.nics):
        lines.append(f"byname {mac_of(host_index, j)} cl{j}")
    batch = []
    for j, nic in enumerate(spec.nics):
        batch.append(f"link set dev cl{j} name {nic.name}")
        prefix = segments[nic.segment].prefixlen
        batch += [f"addr add {a}/{prefix} dev {nic.name}" for a in nic.addresses]
        batch.append(f"link set dev {nic.name} up")
    batch += [f"route add {dst} via {gw}" for dst, gw in spec.routes]
    lines += ["ip -batch - <<'EOF'", *batch, "EOF"]
    return "\n".join(lines) + "\n"


def _connect(host: VmHost, image: VmImage | None) -> Any:
    """An SSH session with the guest over its control port; the guest's key must be the image's."""
    import paramiko
    if image is None:
        raise ProviderUnavailable(f"connlab: {host.label}: no guest image to open a session with")
    sock = host.guest.control_socket()
    client = paramiko.SSHClient()
    client.load_host_keys(str(image.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(HOST_KEY_ALIAS, username="root", key_filename=str(image.key), sock=sock,
                   timeout=60, banner_timeout=60, auth_timeout=60, allow_agent=False, look_for_keys=False)
    return client


def _run_in(host: VmHost, argv: list[str], input: bytes | None = None, timeout: float = 60) -> tuple[int, str]:
    proc = host.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(input=input, timeout=timeout)
    return proc.returncode or 0, (out + err).decode(errors="replace").strip()


def _read_born(host: VmHost) -> dict[str, str | None]:
    """What the guest's kernel booted with (read by the agent's sysctl role before any lab setting)."""
    status, text = _run_in(host, host.agent_argv(["sysctl", "--get", *BIRTH_REPORT]))
    try:
        values = json.loads(text)["values"]
    except (ValueError, KeyError, TypeError):
        raise ProviderUnavailable(f"connlab: {host.label}: could not read its boot sysctls: {text}") from None
    return {key: values.get(key) for key in BIRTH_REPORT}


class VmProvider:
    """Hosts as qemu guests on bridges in lab namespaces."""

    name = "vm"
    applies_birth = True  # a guest's TCP hash is sized on its kernel command line (thash_entries)
    disposable_hosts = True  # a guest takes its settings with it
    own_kernel = True  # each host's kernel, RAM and kernel-wide settings are its own

    def __init__(self, kernel: str = "") -> None:
        self.kernel = kernel  # a linux-image-* package: use the image built with that kernel
        self.accel = accelerator()

    def image(self) -> VmImage:
        image = find(self.kernel)
        if image is None:
            which = f" with --kernel {self.kernel}" if self.kernel else ""
            raise ProviderUnavailable(f"connlab: the vm provider needs a guest image: run `connlab image build "
                                      f"--vm{which}` (setup.sh --providers does)")
        return image

    def check(self) -> None:
        from .netns import NetnsProvider
        NetnsProvider().check()
        try:
            import paramiko  # noqa: F401
        except ImportError:
            raise ProviderUnavailable("connlab: the vm provider needs paramiko (pip install paramiko)") from None
        if not any((Path(d) / QEMU).exists() for d in os.environ.get("PATH", "/usr/bin").split(":")):
            raise ProviderUnavailable(f"connlab: the vm provider needs {QEMU} (apt-get install qemu-system-x86)")
        if not os.path.exists("/dev/net/tun"):
            raise ProviderUnavailable("connlab: the vm provider needs /dev/net/tun (modprobe tun)")
        self.image()

    def describe(self) -> str:
        """What the lab line says about this provider's guests."""
        image = self.image()
        cpu = "KVM" if self.accel == "kvm" else "TCG, qemu's software CPU: rates and times are slower than hardware"
        return f"qemu guests, kernel {image.kernel_release}, {cpu}"

    def realise(self, topology: Topology, prefix: str) -> list[Host]:
        image = self.image()
        lab = LabName.parse(prefix)
        if lab is None:
            raise ValueError(f"{prefix!r} is not a lab name")
        folder = private_dir(VM_DIR / prefix)
        made: list[str] = []
        hosts: list[VmHost] = []
        try:
            for seg in topology.segments:
                name = f"{prefix}-{seg}"
                made.append(name)
                nsthread.create(name)
                batch = rtnl.Batch(name)
                batch.bridge(BRIDGE_INDEX, "br0")
                ns_fd = os.open(nsexec.NETNS_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    batch.send(ns_fd)
                finally:
                    os.close(ns_fd)
            for i, spec in enumerate(topology.hosts):
                ns_name = f"{prefix}-{spec.name}"
                made.append(ns_name)
                nsthread.create(ns_name)
                hosts.append(self._start(image, folder, spec, i, ns_name, prefix))
            deadline = time.monotonic() + BOOT_TIMEOUT
            for host in hosts:
                host.boot_s = host.guest.wait_ready(deadline)
            for i, host in enumerate(hosts):
                host.client = _connect(host, image)
                transport = host.client.get_transport()
                if transport is not None:
                    transport.set_keepalive(15)
                self._configure(host, i, topology.segments)
                if host.spec.birth:
                    host.birth_report = _read_born(host)
        except BaseException:
            self._remove(hosts, made, folder)
            raise
        return list(hosts)

    def _start(self, image: VmImage, folder: Path, spec: HostSpec, index: int, ns_name: str,
               prefix: str) -> VmHost:
        """Make the guest's taps and start its qemu inside its lab namespace."""
        memory = spec.memory_mb or DEFAULT_MEMORY_MB
        vcpus = spec.vcpus or 1
        nics: list[GuestNic] = []
        ns_fd = os.open(str(nsexec.NETNS_DIR / ns_name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            for j, nic in enumerate(spec.nics):
                fd = open_tap(f"{prefix}-{nic.segment}", f"t{index}{nic.name}"[:15], BRIDGE_INDEX)
                nics.append(GuestNic(fd, mac_of(index, j)))
            paths = GuestPaths(folder, spec.name)
            paths.console.unlink(missing_ok=True)
            argv = qemu_argv(image, paths, f"{prefix}-{spec.name}", spec.name, memory, vcpus, nics, self.accel,
                             boot_params(spec.birth))
            guest = Guest(argv, paths, ns_fd, tuple(n.fd for n in nics))
        finally:
            for guest_nic in nics:
                os.close(guest_nic.fd)  # qemu holds its own copies; the taps go when qemu goes
            os.close(ns_fd)
        return VmHost(spec, ns_name, guest, memory, vcpus, self.accel, kernel_release=image.kernel_release,
                      image=image)

    @staticmethod
    def _configure(host: VmHost, index: int, segments: dict[str, IPv4Network]) -> None:
        """NIC names, addresses and routes from the topology; the agent into /opt/connlab."""
        status, text = _run_in(host, ["sh", "-s"], nic_script(host.spec, index, segments).encode())
        if status:
            raise ProviderUnavailable(f"connlab: {host.label}: network setup failed: {text}")
        status, text = _run_in(host, ["sh", "-c", f"mkdir -p {AGENT_DIR} && tar -x -C {AGENT_DIR}"],
                               agent_tar("."))
        if status:
            raise ProviderUnavailable(f"connlab: {host.label}: agent upload failed: {text}")

    def destroy(self, hosts: list[Host]) -> None:
        vm_hosts = [h for h in hosts if isinstance(h, VmHost)]
        labs = {lab for h in vm_hosts if (lab := LabName.of_resource(h.ns_name))}
        for lab in labs:
            from .netns import lab_namespaces
            self._remove([h for h in vm_hosts if LabName.of_resource(h.ns_name) == lab],
                         lab_namespaces().get(lab, []), VM_DIR / str(lab))

    @staticmethod
    def _remove(hosts: list[VmHost], namespaces: list[str], folder: Path) -> None:
        for host in hosts:
            if host.client is not None:
                try:
                    host.client.close()
                except Exception:
                    pass
            host.guest.stop()
        from .netns import remove_namespaces
        remove_namespaces(namespaces)
        _remove_folder(folder)

    def sweep(self, spare: Spare, dry_run: bool = False) -> dict[LabName, list[str]]:
        """End the qemu processes of labs the reaper does not spare (by pidfile, command line checked),
        then remove their namespaces and run folders."""
        removed: dict[LabName, list[str]] = {}
        if not VM_DIR.is_dir():
            return removed
        for entry in sorted(VM_DIR.iterdir()):
            lab = LabName.parse(entry.name)
            if lab is None or spare(lab):
                continue
            removed[lab] = self._clear(lab, dry_run)
        return removed

    def remove(self, lab: LabName) -> list[str]:
        return self._clear(lab, dry_run=False) if (VM_DIR / str(lab)).is_dir() else []

    @staticmethod
    def _clear(lab: LabName, dry_run: bool) -> list[str]:
        from .netns import lab_namespaces, remove_namespaces
        folder = VM_DIR / str(lab)
        names = [f"qemu {pid} ({name})" for name, pid in qemu_pids(folder)]
        namespaces = lab_namespaces().get(lab, [])
        if not dry_run:
            for _, pid in qemu_pids(folder):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            remove_namespaces(namespaces)
            _remove_folder(folder)
        return names + namespaces + [str(folder)]

    def describe_access(self, host: Host) -> str:
        if isinstance(host, VmHost):
            return (f"console log {host.guest.paths.console} (the guest is a child of the run and ends "
                    "with it)")
        return host.label


def qemu_pids(folder: Path) -> list[tuple[str, int]]:
    """(guest name, pid) for each pidfile in a lab's run folder whose process is still a qemu of that
    guest: the command line must name the qemu binary and the guest's ``-name``."""
    found: list[tuple[str, int]] = []
    if not folder.is_dir():
        return found
    for pidfile in sorted(folder.glob("*.pid")):
        try:
            pid = int(pidfile.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        guest = f"{folder.name}-{pidfile.stem}".encode()
        if cmdline and cmdline[0].endswith(QEMU.encode()) and any(a.startswith(guest + b",") for a in cmdline):
            found.append((pidfile.stem, pid))
    return found


def _remove_folder(folder: Path) -> None:
    """Remove a lab's run folder (only files connlab put there; never through a link)."""
    if not folder.is_dir() or folder.is_symlink() or folder.parent != VM_DIR:
        return
    for child in folder.iterdir():
        if child.is_file() or child.is_socket() or child.is_symlink():
            child.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass
