"""The vagrant provider: the top-level Vagrantfile's machines, driven through the ssh provider.

Each lab gets a work folder (``/run/connlab/vagrant/<lab>/``) with its own
VAGRANT_DOTFILE_PATH, a fresh SSH key, the machine list as JSON and, for the
docker provider, a build folder that adds sshd's key to the lab image. After
``vagrant up`` the provider reads ``vagrant ssh-config``, takes each machine's
host key once through ``vagrant ssh`` (trust on first use, as vagrant itself
does; paramiko verifies it from then on), adds the further lab addresses, and
hands the machines to the ssh provider's hosts. ``vagrant destroy -f`` ends the
lab; the containers also carry the run's labels for the sweep.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from ...errors import ProviderUnavailable, VagrantError
from ..names import LabName
from ..rundir import LOCK_DIR, private_dir
from ..topology import Topology
from .base import Host, Spare
from .hostnet import interfaces_by_address, ip_batch
from .image import DEFAULT_IMAGE
from .inventory import InventoryHost
from .ssh import SshHost, SshProvider, connect, require_star

WORK_ROOT = LOCK_DIR / "vagrant"
UP_TIMEOUT = 900.0
DOCKERFILE = """FROM {image}
LABEL connlab.lab={lab}
RUN mkdir -p /run/sshd /root/.ssh && chmod 700 /root/.ssh
COPY authorized_keys /root/.ssh/authorized_keys
CMD ["/usr/sbin/sshd", "-D", "-e"]
"""




def parse_ssh_config(text: str) -> dict[str, dict[str, str]]:
    """``vagrant ssh-config`` output as {machine: {HostName, Port, User, IdentityFile, ...}}."""
    machines: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) != 2:
            continue
        key, value = parts
        if key == "Host":
            current = machines.setdefault(value, {})
        elif current is not None:
            current[key] = value.strip('"')
    return machines


class VagrantProvider:
    """Machines from the Vagrantfile (docker provider by default), reached over SSH."""

    name = "vagrant"
    applies_birth = False  # machines are not namespaces connlab creates from a parent
    disposable_hosts = True  # `vagrant destroy` takes the machines and their settings

    def __init__(self, vagrant_dir: Path | None, machine_provider: str = "docker",
                 image: str = DEFAULT_IMAGE) -> None:
        self.vagrant_dir = vagrant_dir or Path.cwd()
        self.machine_provider = machine_provider
        self.image = image

    def check(self) -> None:
        if shutil.which("vagrant") is None:
            raise ProviderUnavailable("connlab: the vagrant provider needs vagrant (apt-get install vagrant)")
        if not (self.vagrant_dir / "Vagrantfile").is_file():
            raise ProviderUnavailable(f"connlab: no Vagrantfile in {self.vagrant_dir} "
                                      "(--lab-vagrant-dir names the folder)")
        if shutil.which("ssh-keygen") is None:
            raise ProviderUnavailable("connlab: the vagrant provider needs ssh-keygen (apt-get install openssh-client)")
        if self.machine_provider == "docker":
            from .docker import DockerProvider
            DockerProvider(self.image).check()  # an engine that answers, and the lab image
        SshProvider(None).check_library()

    def _env(self, work: Path) -> dict[str, str]:
        return {**os.environ, "VAGRANT_CWD": str(self.vagrant_dir), "VAGRANT_DOTFILE_PATH": str(work / "dot"),
                "CONNLAB_VAGRANT_SPEC": str(work / "spec.json"), "VAGRANT_CHECKPOINT_DISABLE": "1",
                "VAGRANT_DEFAULT_PROVIDER": self.machine_provider}

    def _vagrant(self, work: Path, *args: str, timeout: float = 120.0) -> str:
        done = subprocess.run(["vagrant", *args], env=self._env(work), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-12:])
            raise VagrantError(f"vagrant {' '.join(args)} failed ({done.returncode}):\n{tail}")
        return done.stdout

    def realise(self, topology: Topology, prefix: str) -> list[Host]:
        require_star(topology, "the vagrant provider")
        work = private_dir(WORK_ROOT) / prefix
        work.mkdir(mode=0o700, exist_ok=True)
        hosts: list[SshHost] = []
        try:
            self._write_spec(work, topology, prefix)
            self._vagrant(work, "up", f"--provider={self.machine_provider}", timeout=UP_TIMEOUT)
            known_hosts = work / "known_hosts"
            configs = {spec.name: parse_ssh_config(self._vagrant(work, "ssh-config", spec.name))[spec.name]
                       for spec in topology.hosts}
            lines = []
            for name, cfg in configs.items():
                key = self._vagrant(work, "ssh", name, "-c", "cat /etc/ssh/ssh_host_ed25519_key.pub").split()
                lines.append(f"[{cfg['HostName']}]:{cfg['Port']} {key[0]} {key[1]}")
            known_hosts.write_text("\n".join(lines) + "\n")
            for spec in topology.hosts:
                cfg = configs[spec.name]
                entry = InventoryHost(name=spec.name, address=cfg["HostName"], port=int(cfg["Port"]),
                                      user=cfg["User"], key=work / "id_ed25519", known_hosts=known_hosts,
                                      role=spec.role, os="linux", lab_addresses=spec.addresses)
                host = SshHost(spec, entry, connect(entry), "", prefix)
                hosts.append(host)
                SshProvider.upload_agent(host)
                self._add_addresses(host, topology)
        except BaseException:
            for host in hosts:
                host.client.close()
            self._destroy_work(work)
            raise
        return list(hosts)

    def _write_spec(self, work: Path, topology: Topology, prefix: str) -> None:
        lab = LabName.parse(prefix)
        if lab is None:
            raise ValueError(f"{prefix!r} is not a lab name")
        key = work / "id_ed25519"
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", prefix, "-f", str(key)],
                           check=True, capture_output=True)
        build = work / "build"
        build.mkdir(exist_ok=True)
        (build / "Dockerfile").write_text(DOCKERFILE.format(image=self.image, lab=prefix))
        shutil.copy(work / "id_ed25519.pub", build / "authorized_keys")
        image = self.image
        if self.machine_provider == "docker":  # one build per lab, before vagrant starts its machines
            from .docker import _client
            image = f"connlab-vagrant:{lab.run}-{lab.worker}-{lab.seq}"
            _client().images.build(path=str(build), tag=image, rm=True, forcerm=True)
        (segment, subnet), = topology.segments.items()
        spec = {"lab": prefix, "run": lab.run, "image": image, "key": str(key),
                "build_dir": None, "subnet": str(subnet), "gateway": topology.spare_address(segment),
                "machines": [{"name": h.name, "ip": h.address} for h in topology.hosts]}
        (work / "spec.json").write_text(json.dumps(spec, indent=1))

    @staticmethod
    def _add_addresses(host: SshHost, topology: Topology) -> None:
        """Vagrant gives one address per private network; add the lab's further ones."""
        extra = host.spec.addresses[1:]
        if not extra:
            return
        prefixlen = next(iter(topology.segments.values())).prefixlen
        ifname = interfaces_by_address(host)[host.spec.address]
        ip_batch(host, [f"addr add {a}/{prefixlen} dev {ifname}" for a in extra])

    def _destroy_work(self, work: Path) -> None:
        try:
            spec = work / "spec.json"
            if spec.exists():  # the lab's machines only: never the Windows box, which it did not start
                names = [m["name"] for m in json.loads(spec.read_text())["machines"]]
                self._vagrant(work, "destroy", "-f", *names, timeout=300)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            if self.machine_provider == "docker":  # the lab's image (labelled connlab.lab)
                from .docker import _client, remove_lab
                remove_lab(_client(), work.name)

    def destroy(self, hosts: list[Host]) -> None:
        """Close the sessions and destroy the lab's machines."""
        prefixes = set()
        for host in hosts:
            if isinstance(host, SshHost):
                host.client.close()
                prefixes.add(host.lab)
        for prefix in sorted(prefixes):
            self._destroy_work(WORK_ROOT / prefix)

    def sweep(self, spare: Spare, dry_run: bool = False) -> dict[LabName, list[str]]:
        """Remove the work folders (and with them the machines' keys and state) of labs the reaper
        does not spare; their containers and images go with the docker provider's sweep."""
        removed = {lab: [f"vagrant work folder {work}"] for lab, work in _work_folders().items() if not spare(lab)}
        if not dry_run:
            for lab in removed:
                shutil.rmtree(WORK_ROOT / str(lab), ignore_errors=True)
        return removed

    def remove(self, lab: LabName) -> list[str]:
        """Remove the work folder of ``lab``."""
        work = _work_folders().get(lab)
        if work is None:
            return []
        shutil.rmtree(work, ignore_errors=True)
        return [f"vagrant work folder {work}"]

    def describe_access(self, host: Host) -> str:
        prefix = host.lab if isinstance(host, SshHost) else "?"
        return (f"VAGRANT_CWD={self.vagrant_dir} VAGRANT_DOTFILE_PATH={WORK_ROOT / prefix / 'dot'} "
                f"CONNLAB_VAGRANT_SPEC={WORK_ROOT / prefix / 'spec.json'} vagrant ssh {host.spec.name}")


def _work_folders() -> dict[LabName, Path]:
    """The labs' work folders, by lab (a folder not named after a lab is not connlab's)."""
    if not WORK_ROOT.is_dir():
        return {}
    return {lab: p for p in sorted(WORK_ROOT.iterdir()) if p.is_dir() and (lab := LabName.parse(p.name))}
