"""One qemu guest: its command line, its process (tied to the controller's life), QMP and its console.

qemu runs as a child of the controller with PR_SET_PDEATHSIG (SIGKILL), inside the lab
namespace of its host (``<lab>-<host>``, which holds nothing but ``lo``), with its NICs
handed over as tap file descriptors opened in the segments' namespaces. Control sockets,
the pidfile and the serial console log live in the run folder ``/run/connlab/vm/<lab>/``;
nothing is made in the host's own network namespace.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ProviderUnavailable
from . import nsexec
from .vmimage import PORT_NAME, VmImage

QEMU = "qemu-system-x86_64"
CPU_MODEL = "qemu64"  # a named model: -cpu host aborts under this machine's nested KVM
DEFAULT_MEMORY_MB = 384
READY_LINE = b"connlab-init: ready"
MAX_SKIPPED = 1 << 20  # bytes an ended session may have left in the control port


def accelerator() -> str:
    """``kvm`` when /dev/kvm is a hardware-backed KVM (vmx or svm in cpuinfo, not the PVM module that
    runs only PVM guest kernels); ``tcg`` (qemu's software CPU) otherwise."""
    if not os.path.exists("/dev/kvm"):
        return "tcg"
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), [])
        modules = Path("/proc/modules").read_text()
    except OSError:
        return "tcg"
    if "kvm_pvm" in modules or not ({"vmx", "svm"} & set(flags)):
        return "tcg"
    return "kvm"


@dataclass(frozen=True)
class GuestNic:
    """A NIC of a guest: the tap descriptor qemu takes over and the MAC the guest finds it by."""

    fd: int
    mac: str


@dataclass(frozen=True)
class GuestPaths:
    """The run-folder files of one guest."""

    folder: Path
    name: str

    @property
    def pidfile(self) -> Path:
        return self.folder / f"{self.name}.pid"

    @property
    def qmp(self) -> Path:
        return self.folder / f"{self.name}.qmp"

    @property
    def control(self) -> Path:
        return self.folder / f"{self.name}.ctl"

    @property
    def console(self) -> Path:
        return self.folder / f"{self.name}.console.log"


def qemu_argv(image: VmImage, paths: GuestPaths, qemu_name: str, host: str, memory_mb: int, vcpus: int,
              nics: list[GuestNic], accel: str, boot_params: Sequence[str] = ()) -> list[str]:
    """The qemu command line of one guest; ``boot_params`` go on its kernel command line."""
    accel_args = ["-accel", "kvm", "-cpu", CPU_MODEL] if accel == "kvm" else \
        ["-accel", "tcg,thread=single,tb-size=32", "-cpu", CPU_MODEL]
    argv = [QEMU, "-name", f"{qemu_name},process={qemu_name}"[:200], "-nodefaults", "-no-user-config",
            "-display", "none", "-no-reboot", "-machine", "pc", *accel_args,
            "-m", str(memory_mb), "-smp", str(vcpus),
            "-kernel", str(image.kernel), "-initrd", str(image.initrd),
            "-append", " ".join(["console=ttyS0 quiet loglevel=4 panic=-1", f"connlab.host={host}", *boot_params]),
            "-drive", f"file={image.root},if=virtio,format=raw,readonly=on",
            "-serial", f"file:{paths.console}",
            "-device", "virtio-serial-pci",
            "-chardev", f"socket,id=ctl,path={paths.control},server=on,wait=off",
            "-device", f"virtserialport,chardev=ctl,name={PORT_NAME}",
            "-qmp", f"unix:{paths.qmp},server=on,wait=off",
            "-pidfile", str(paths.pidfile)]
    for i, nic in enumerate(nics):
        argv += ["-netdev", f"tap,id=n{i},fd={nic.fd}", "-device", f"virtio-net-pci,netdev=n{i},mac={nic.mac}"]
    return argv


class Guest:
    """A running qemu process and its files."""

    def __init__(self, argv: list[str], paths: GuestPaths, ns_fd: int, pass_fds: tuple[int, ...]) -> None:
        self.paths = paths
        self.argv = argv
        self.started = time.monotonic()
        log = open(paths.folder / f"{paths.name}.qemu.log", "wb")
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         pass_fds=pass_fds, preexec_fn=nsexec.entering(ns_fd))
        except FileNotFoundError:
            raise ProviderUnavailable(f"connlab: the vm provider needs {QEMU} "
                                      "(apt-get install qemu-system-x86)") from None
        finally:
            log.close()

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def console_tail(self, limit: int = 3000) -> str:
        """The end of the guest's serial console (kernel messages: OOM kills, panics, table full)."""
        try:
            return self.paths.console.read_bytes()[-limit:].decode(errors="replace")
        except OSError:
            return ""

    def qemu_output(self) -> str:
        try:
            return (self.paths.folder / f"{self.paths.name}.qemu.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def wait_ready(self, deadline: float) -> float:
        """Wait for the guest init's ready line on the console; the seconds since qemu started."""
        while time.monotonic() < deadline:
            if not self.running:
                raise ProviderUnavailable(f"connlab: qemu for {self.paths.name} exited with "
                                          f"{self.proc.returncode}: {self.qemu_output().strip()[-500:]}\n"
                                          f"console: {self.console_tail(800)}")
            try:
                if READY_LINE in self.paths.console.read_bytes():
                    return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.05)
        raise ProviderUnavailable(f"connlab: guest {self.paths.name} was not ready in time; console: "
                                  f"{self.console_tail(800)}")

    def control_socket(self, timeout: float = 60.0) -> socket.socket:
        """A connection to the guest's control port where a new sshd answers next: the hello with a
        fresh nonce, then everything up to the guest's answer with that nonce is skipped (what an
        ended session left in the port on either side)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(self.paths.control))
            nonce = secrets.token_hex(8).encode()
            sock.sendall(b"\nCONNLAB-HELLO " + nonce + b"\n")
            expected, tail, skipped = b"CONNLAB-READY " + nonce + b"\n", b"", 0
            deadline = time.monotonic() + timeout
            while tail != expected:  # byte by byte: what follows is sshd's, never read here
                if time.monotonic() > deadline or skipped > MAX_SKIPPED:
                    raise OSError(f"{self.paths.control}: the guest did not answer the hello")
                byte = sock.recv(1)
                if not byte:
                    raise OSError(f"{self.paths.control}: the guest closed its control port")
                tail, skipped = (tail + byte)[-len(expected):], skipped + 1
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        return sock

    def qmp(self, command: str, timeout: float = 10.0) -> dict[str, Any]:
        """Run one QMP command and return its reply."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.paths.qmp))
            stream = sock.makefile("rwb")
            json.loads(stream.readline())  # the greeting
            for execute in ("qmp_capabilities", command):
                stream.write(json.dumps({"execute": execute}).encode() + b"\n")
                stream.flush()
                while True:
                    line = stream.readline()
                    if not line:
                        return {}
                    reply: dict[str, Any] = json.loads(line)
                    if "return" in reply or "error" in reply:
                        break
            return reply

    def stop(self, timeout: float = 5.0) -> None:
        """QMP quit, then SIGKILL if qemu has not gone within ``timeout``; remove its files."""
        if self.running:
            try:
                self.qmp("quit", timeout=2)
            except (OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()
        for path in (self.paths.pidfile, self.paths.qmp, self.paths.control):
            path.unlink(missing_ok=True)
