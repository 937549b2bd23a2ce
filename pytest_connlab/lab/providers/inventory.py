"""The ssh provider's inventory: a YAML file naming hosts, how to reach them and their role.

    hosts:
      server:
        address: 198.18.0.1        # where SSH reaches the host
        user: root
        key: ~/.ssh/id_ed25519
        known_hosts: ~/.ssh/known_hosts   # host keys are verified against this file
        role: server               # server | client | router
        os: linux                  # linux | windows
        lab_addresses: [198.18.0.1]       # what lab traffic uses (default: [address])
      client1: {address: 198.18.0.2, user: root, key: ~/.ssh/id_ed25519, role: client,
                lab_addresses: [198.18.0.2, 198.18.0.3]}

Optional per host: ``port`` (22), ``python`` (python3), ``netns`` (reach the host
from inside that network namespace of the controller machine).
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import InventoryError, YamlInputError
from ...profiles import safeyaml

ROLES = ("server", "client", "router")
SYSTEMS = ("linux", "windows")
HOST_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
ADDRESS = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:-]{0,252}")
USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
PROGRAM = re.compile(r"(/[A-Za-z0-9._+-]+)+|[A-Za-z0-9._+-]+")
NETNS_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
KNOWN_KEYS = {"address", "port", "user", "key", "known_hosts", "role", "os", "lab_addresses", "python", "netns"}




@dataclass(frozen=True)
class InventoryHost:
    """One host of the inventory."""

    name: str
    address: str
    port: int
    user: str
    key: Path
    known_hosts: Path
    role: str
    os: str
    lab_addresses: tuple[str, ...]
    python: str = "python3"
    netns: str | None = None


def load_inventory(path: Path) -> list[InventoryHost]:
    """Read and check an inventory; InventoryError names the file and the key at fault."""
    try:
        data = safeyaml.load(path)
    except YamlInputError as exc:
        raise InventoryError(f"inventory {path}: {exc.where}: {exc.message}") from None
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), dict) or not data["hosts"]:
        raise InventoryError(f"inventory {path}: needs a mapping 'hosts' of host name to settings")
    unknown_top = sorted(str(k) for k in data if k != "hosts")
    if unknown_top:
        raise InventoryError(f"inventory {path}: {unknown_top[0]}: unknown key; known: hosts")
    for name in data["hosts"]:
        if not isinstance(name, str) or not HOST_NAME.fullmatch(name):
            raise InventoryError(f"inventory {path}: hosts.{name!r}: a host name is 1 to 63 of a-z, 0-9, '-', '_'")
    hosts = [_host(path, name, entry) for name, entry in data["hosts"].items()]
    servers = [h for h in hosts if h.role == "server"]
    if len(servers) != 1:
        raise InventoryError(f"inventory {path}: hosts: exactly one host needs role: server "
                             f"(found {len(servers)})")
    if not any(h.role == "client" for h in hosts):
        raise InventoryError(f"inventory {path}: hosts: at least one host needs role: client")
    return hosts


def _host(path: Path, name: str, entry: Any) -> InventoryHost:
    where = f"inventory {path}: hosts.{name}"
    if not isinstance(entry, dict):
        raise InventoryError(f"{where}: needs a mapping of settings")
    unknown = sorted(str(k) for k in entry if k not in KNOWN_KEYS)
    if unknown:
        raise InventoryError(f"{where}.{unknown[0]}: unknown key; known: {', '.join(sorted(KNOWN_KEYS))}")
    for key in ("address", "user", "key", "role"):
        if not isinstance(entry.get(key), str) or not entry[key] or not entry[key].isprintable():
            raise InventoryError(f"{where}.{key}: required, a string")
    for key in ("known_hosts", "python", "os"):
        if key in entry and (not isinstance(entry[key], str) or not entry[key] or not entry[key].isprintable()):
            raise InventoryError(f"{where}.{key}: a non-empty string")
    if not ADDRESS.fullmatch(entry["address"]):
        raise InventoryError(f"{where}.address: {entry['address']!r} is not a host name or IP address")
    if not USER.fullmatch(entry["user"]):
        raise InventoryError(f"{where}.user: {entry['user']!r} is not a user name")
    if not PROGRAM.fullmatch(entry.get("python", "python3")):
        raise InventoryError(f"{where}.python: {entry['python']!r} is not a program name or absolute path")
    role, os_name = entry["role"], entry.get("os", "linux")
    if role not in ROLES:
        raise InventoryError(f"{where}.role: {role!r} is not one of {', '.join(ROLES)}")
    if os_name not in SYSTEMS:
        raise InventoryError(f"{where}.os: {os_name!r} is not one of {', '.join(SYSTEMS)}")
    port = entry.get("port", 22)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise InventoryError(f"{where}.port: {port!r} is not a TCP port")
    lab_addresses = entry.get("lab_addresses", [entry["address"]])
    if not isinstance(lab_addresses, list) or not lab_addresses:
        raise InventoryError(f"{where}.lab_addresses: needs a list of IPv4 addresses")
    for address in lab_addresses:
        try:
            ipaddress.IPv4Address(str(address))
        except ValueError:
            raise InventoryError(f"{where}.lab_addresses: {address!r} is not an IPv4 address") from None
    key_path = Path(entry["key"]).expanduser()
    if not key_path.is_file():
        raise InventoryError(f"{where}.key: no such file {key_path}")
    known_hosts = Path(entry.get("known_hosts", "~/.ssh/known_hosts")).expanduser()
    if not known_hosts.is_file():
        raise InventoryError(f"{where}.known_hosts: no such file {known_hosts} "
                             "(host keys are verified; add the host's key there)")
    netns = entry.get("netns")
    if netns is not None and (not isinstance(netns, str) or not NETNS_NAME.fullmatch(netns) or netns in (".", "..")
                              or not Path("/run/netns", netns).exists()):
        raise InventoryError(f"{where}.netns: no network namespace {netns!r} in /run/netns")
    return InventoryHost(name=name, address=entry["address"], port=port, user=entry["user"], key=key_path,
                         known_hosts=known_hosts, role=role, os=os_name,
                         lab_addresses=tuple(str(a) for a in lab_addresses),
                         python=str(entry.get("python", "python3")), netns=netns)
