"""The docker provider: each host a container, each segment a user-defined network.

Containers and networks are made with the docker SDK and carry the labels
``connlab.run`` and ``connlab.lab``; teardown (and the sweep of dead runs)
removes them by label. Networks are internal bridges whose subnet is the lab's
(198.18.0.0/15) with the segment's spare address as gateway. A container gets
NET_ADMIN (addresses, routes, nft) and writable ``/proc/sys`` (``systempaths=
unconfined``) so the agent sets the lab's net.* sysctls in the container's own
namespace, as on netns. The agent is copied in with put_archive and run with
``docker exec -i``, so it ends when its input closes, like on every provider.
"""
from __future__ import annotations

import ipaddress
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ...agent.workers import agent_command
from ...errors import ProviderUnavailable
from ..names import LabName
from ..topology import HostSpec, Topology
from .agentfiles import agent_tar
from .base import Host, Spare
from .hostnet import interfaces_by_address, ip_batch
from .image import DEFAULT_IMAGE

AGENT_DIR = "/opt/connlab"
LABEL_RUN = "connlab.run"
LABEL_LAB = "connlab.lab"


@dataclass
class DockerHost:
    """A host that is a running container."""

    spec: HostSpec
    name: str
    docker_cli: str
    label: str = field(init=False)
    local_pids = False  # popen() pids are not this machine's processes

    def __post_init__(self) -> None:
        self.label = f"{self.spec.name}({self.name})"

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` in the container (``docker exec -i``)."""
        return subprocess.Popen([self.docker_cli, "exec", "-i", self.name, *argv], **kwargs)

    def agent_argv(self, args: Sequence[str]) -> list[str]:
        return agent_command("python3", AGENT_DIR, list(args))


def _client() -> Any:
    import docker
    return docker.from_env(timeout=120)


def _lab(prefix: str) -> LabName:
    lab = LabName.parse(prefix)
    if lab is None:
        raise ValueError(f"{prefix!r} is not a lab name")
    return lab


def engine() -> Any | None:
    """A client of a Docker engine that answers, or None (no SDK, no daemon): for the sweep."""
    try:
        import docker
        client = docker.from_env(timeout=5)
        client.ping()
        return client
    except Exception:
        return None


class DockerProvider:
    """Hosts as containers on internal bridge networks, one per segment."""

    name = "docker"
    applies_birth = False  # hosts are not namespaces connlab creates from a parent
    disposable_hosts = True  # a container's namespace takes its sysctls and nft tables with it

    def __init__(self, image: str = DEFAULT_IMAGE) -> None:
        self.image = image

    def check(self) -> None:
        try:
            import docker
        except ImportError:
            raise ProviderUnavailable("connlab: the docker provider needs the docker SDK "
                                      "(pip install docker)") from None
        cli = shutil.which("docker")
        if cli is None:
            raise ProviderUnavailable("connlab: the docker provider needs the docker command "
                                      "(apt-get install docker.io) to exec in containers")
        try:
            client = _client()
            client.ping()
        except Exception as exc:
            raise ProviderUnavailable(f"connlab: no Docker engine answers ({type(exc).__name__}); "
                                      "start dockerd or set DOCKER_HOST") from None
        try:
            client.images.get(self.image)
        except docker.errors.ImageNotFound:
            raise ProviderUnavailable(f"connlab: docker image {self.image} not found; build it with "
                                      "`connlab image build` or name one with python3 in it "
                                      "(--lab-image / ini connlab_docker_image)") from None

    def realise(self, topology: Topology, prefix: str) -> list[Host]:
        cli = shutil.which("docker") or "docker"
        client = _client()
        labels = {LABEL_RUN: _lab(prefix).run, LABEL_LAB: prefix}
        try:
            networks = {seg: self._network(client, f"{prefix}-{seg}", subnet, topology.spare_address(seg),
                                           labels)
                        for seg, subnet in topology.segments.items()}
            hosts = [self._container(client, spec, f"{prefix}-{spec.name}", networks, labels, cli)
                     for spec in topology.hosts]
            for host in hosts:
                self._configure(host, topology)
        except BaseException:
            remove_lab(client, prefix)
            raise
        return list(hosts)

    @staticmethod
    def _network(client: Any, name: str, subnet: ipaddress.IPv4Network, gateway: str,
                 labels: dict[str, str]) -> str:
        from docker.types import IPAMConfig, IPAMPool
        ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet), gateway=gateway)])
        client.networks.create(name, driver="bridge", internal=True, ipam=ipam, labels=labels,
                               check_duplicate=True)
        return name

    def _container(self, client: Any, spec: HostSpec, name: str, networks: dict[str, str],
                   labels: dict[str, str], cli: str) -> DockerHost:
        api = client.api
        first, *others = spec.nics
        host_config = api.create_host_config(cap_add=["NET_ADMIN"], network_mode=networks[first.segment],
                                             init=True)
        # What `docker run --security-opt systempaths=unconfined` sends: /proc/sys writable (the
        # kernel still lets the container set only its own namespace's net.* keys).
        host_config["MaskedPaths"], host_config["ReadonlyPaths"] = [], []
        networking = api.create_networking_config(
            {networks[first.segment]: api.create_endpoint_config(ipv4_address=first.addresses[0])})
        created = api.create_container(self.image, command=["sleep", "infinity"], name=name,
                                       hostname=spec.name, labels=labels, host_config=host_config,
                                       networking_config=networking)
        for nic in others:
            api.connect_container_to_network(created["Id"], networks[nic.segment],
                                             ipv4_address=nic.addresses[0])
        api.put_archive(created["Id"], "/opt", agent_tar("connlab"))
        api.start(created["Id"])
        return DockerHost(spec, name, cli)

    @staticmethod
    def _configure(host: DockerHost, topology: Topology) -> None:
        """Name each NIC as the topology does, add its further addresses, add the routes."""
        by_address = interfaces_by_address(host)
        script: list[str] = []
        for i, nic in enumerate(host.spec.nics):
            current = by_address.get(nic.addresses[0])
            if current is None:
                raise RuntimeError(f"{host.label}: no interface has {nic.addresses[0]}: {by_address}")
            script += [f"link set dev {current} down", f"link set dev {current} name cl{i}"]
        for i, nic in enumerate(host.spec.nics):
            prefixlen = topology.segments[nic.segment].prefixlen
            script += [f"link set dev cl{i} name {nic.name}", f"link set dev {nic.name} up"]
            script += [f"addr add {a}/{prefixlen} dev {nic.name}" for a in nic.addresses[1:]]
        script += [f"route add {dst} via {gateway}" for dst, gateway in host.spec.routes]
        ip_batch(host, script)

    def destroy(self, hosts: list[Host]) -> None:
        """Remove the containers and networks of the hosts' labs."""
        client = _client()
        for lab in sorted({lab for h in hosts if isinstance(h, DockerHost) and (lab := LabName.of_resource(h.name))}):
            remove_lab(client, str(lab))

    def sweep(self, spare: Spare, dry_run: bool = False) -> dict[LabName, list[str]]:
        """Remove the containers, networks and images of labs the reaper does not spare."""
        client = engine()
        if client is None:
            return {}
        removed = {lab: names for lab, names in lab_names(client).items() if not spare(lab)}
        if not dry_run:
            for lab in removed:
                remove_lab(client, str(lab))
        return removed

    def remove(self, lab: LabName) -> list[str]:
        """Remove the containers, networks and images labelled with ``lab``."""
        client = engine()
        return remove_lab(client, str(lab)) if client is not None else []

    def describe_access(self, host: Host) -> str:
        return f"docker exec -it {getattr(host, 'name', host.label)} bash"


def remove_lab(client: Any, prefix: str) -> list[str]:
    """Remove every container, then every network, labelled with lab ``prefix``."""
    return _remove(client, f"{LABEL_LAB}={prefix}")


def _remove(client: Any, label: str) -> list[str]:
    import docker
    removed = []
    for container in client.containers.list(all=True, filters={"label": label}):
        try:
            container.remove(force=True)
            removed.append(container.name)
        except docker.errors.NotFound:
            pass
    for network in client.networks.list(filters={"label": label}):
        try:
            network.remove()
            removed.append(network.name)
        except docker.errors.NotFound:
            pass
    for image in client.images.list(filters={"label": label}):  # what vagrant built for a lab
        try:
            client.images.remove(image.id, force=True)
            removed.append(f"image {image.short_id}")
        except docker.errors.NotFound:
            pass
    return removed


def lab_names(client: Any) -> dict[LabName, list[str]]:
    """Container, network and image names by lab, of every connlab lab the engine has (the lab
    label is the lab's name; one that is not a lab name is not connlab's and is left alone)."""
    by_lab: dict[LabName, list[str]] = {}
    found = [(c.labels, c.name) for c in client.containers.list(all=True, filters={"label": LABEL_LAB})]
    found += [(n.attrs["Labels"] or {}, n.name) for n in client.networks.list(filters={"label": LABEL_LAB})]
    found += [(i.labels, f"image {i.short_id}") for i in client.images.list(filters={"label": LABEL_LAB})]
    for labels, name in found:
        if lab := LabName.parse(labels[LABEL_LAB]):
            by_lab.setdefault(lab, []).append(name)
    return by_lab
