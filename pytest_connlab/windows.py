"""A profile's settings as the commands that set them on a real Windows host, and undo them.

Registry values go in with ``reg add``; the dynamic port range with ``netsh int
ipv4 set dynamicport tcp``. Before changing anything the previous values are
read (``reg query``, ``netsh ... show``) so restore puts back exactly what was
there, deleting a value that did not exist. Each change says what it needs to
take effect (a reboot for Tcpip\\Parameters). Edition limits (Product.*) and
settings that are not registry values are listed as not applicable.

UNTESTED on Windows: the command text is unit-tested, but no Windows host has
run it yet (the Vagrantfile's Windows box is the way to do so).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .profiles import Profile

TCPIP = r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters"
HTTP = r"HKLM\SYSTEM\CurrentControlSet\Services\HTTP\Parameters"
WININET = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings"
NEEDS = {TCPIP: "a reboot (Tcpip reads its Parameters at boot)",
         HTTP: "a restart of the HTTP service (net stop http /y, then net start http)",
         WININET: "new WinInet processes of that user (running ones keep their value)"}
REGISTRY = {"Tcpip.": TCPIP, "HTTP.": HTTP, "WinInet.": WININET}
NOT_REGISTRY = {
    "Product.": "an edition limit compiled into Windows, not a setting",
    "IIS.": "an IIS metabase property (set with adsutil.vbs or IIS Manager), not a registry value",
    "Router.": "a property of a router or NAT box, not of the Windows host",
}
DYNAMIC_PORT_KEYS = ("Netsh.DynamicPortStart", "Netsh.DynamicPortCount")


@dataclass(frozen=True)
class RegistryValue:
    """One DWORD under a registry key."""

    key: str
    name: str
    value: int

    def query(self) -> list[str]:
        return ["reg", "query", self.key, "/v", self.name]

    def add(self, value: int | None = None) -> list[str]:
        return ["reg", "add", self.key, "/v", self.name, "/t", "REG_DWORD",
                "/d", str(self.value if value is None else value), "/f"]

    def delete(self) -> list[str]:
        return ["reg", "delete", self.key, "/v", self.name, "/f"]


@dataclass(frozen=True)
class WindowsPlan:
    """What applying a profile on Windows does."""

    registry: tuple[RegistryValue, ...]
    dynamic_ports: tuple[int, int] | None  # (start, count)
    not_applicable: tuple[tuple[str, str], ...]  # (setting, why)

    @property
    def needs(self) -> list[str]:
        """What must happen before the new values take effect."""
        wanted = [NEEDS[key] for key in NEEDS if any(v.key == key for v in self.registry)]
        if self.dynamic_ports:
            wanted.append("nothing: netsh dynamicport applies at once")
        return wanted

    def apply_commands(self) -> list[list[str]]:
        commands = [v.add() for v in self.registry]
        if self.dynamic_ports:
            commands.append(dynamicport_set(*self.dynamic_ports))
        return commands


def plan_for(profile: Profile) -> WindowsPlan:
    """The registry values, port range and inapplicable settings of ``profile``."""
    registry, not_applicable = [], []
    ports: dict[str, int] = {}
    for setting in profile.settings:
        key = setting.key
        if key in DYNAMIC_PORT_KEYS:
            ports[key] = int(setting.value)
            continue
        prefix = key.split(".", 1)[0] + "."
        if prefix in REGISTRY:
            registry.append(RegistryValue(REGISTRY[prefix], key.split(".", 1)[1], int(setting.value)))
        elif prefix in NOT_REGISTRY:
            not_applicable.append((key, NOT_REGISTRY[prefix]))
        else:
            not_applicable.append((key, "a Linux setting of the lab, not a Windows one"))
    dynamic = None
    if ports:
        if set(ports) != set(DYNAMIC_PORT_KEYS):
            missing = next(k for k in DYNAMIC_PORT_KEYS if k not in ports)
            raise ValueError(f"profile {profile.path}: {missing} is needed with the other Netsh.DynamicPort key")
        dynamic = (ports["Netsh.DynamicPortStart"], ports["Netsh.DynamicPortCount"])
    return WindowsPlan(tuple(registry), dynamic, tuple(not_applicable))


def dynamicport_show() -> list[str]:
    return ["netsh", "int", "ipv4", "show", "dynamicport", "tcp"]


def dynamicport_set(start: int, count: int) -> list[str]:
    return ["netsh", "int", "ipv4", "set", "dynamicport", "tcp", f"start={start}", f"num={count}"]


_REG_LINE = re.compile(r"^\s*(\S+)\s+REG_DWORD\s+0x([0-9a-fA-F]+)\s*$", re.MULTILINE)
_PORT_LINE = re.compile(r"^\s*(Start Port|Number of Ports)\s*:\s*(\d+)\s*$", re.MULTILINE)


def parse_reg_query(output: str, name: str) -> int | None:
    """The DWORD ``reg query /v name`` printed, or None when the value does not exist."""
    for found, hex_value in _REG_LINE.findall(output):
        if found.lower() == name.lower():
            return int(hex_value, 16)
    return None


def parse_dynamicport(output: str) -> tuple[int, int]:
    """(start, count) from ``netsh int ipv4 show dynamicport tcp``."""
    fields = dict(_PORT_LINE.findall(output))
    if set(fields) != {"Start Port", "Number of Ports"}:
        raise ValueError(f"unexpected netsh output: {output.strip()[:200]!r}")
    return int(fields["Start Port"]), int(fields["Number of Ports"])


def restore_commands(plan: WindowsPlan, previous: dict[str, int | None],
                     previous_ports: tuple[int, int] | None) -> list[list[str]]:
    """Commands that put back ``previous`` (value by name; None: it did not exist), newest first."""
    commands = []
    if plan.dynamic_ports and previous_ports:
        commands.append(dynamicport_set(*previous_ports))
    for value in reversed(plan.registry):
        before = previous.get(f"{value.key}\\{value.name}")
        commands.append(value.delete() if before is None else value.add(before))
    return commands


def script(profile: Profile) -> str:
    """A cmd.exe script that records the previous values, then applies the profile."""
    plan = plan_for(profile)
    lines = [f"@rem connlab: Windows settings of profile {profile.name} ({profile.title})",
             "@rem UNTESTED on Windows; run as Administrator. Previous values first:"]
    lines += [" ".join(_quote(a) for a in v.query()) for v in plan.registry]
    if plan.dynamic_ports:
        lines.append(" ".join(dynamicport_show()))
    lines.append("@rem apply:")
    lines += [" ".join(_quote(a) for a in c) for c in plan.apply_commands()]
    for need in plan.needs:
        lines.append(f"@rem takes effect after {need}")
    for key, why in plan.not_applicable:
        lines.append(f"@rem not applied: {key}: {why}")
    return "\r\n".join(lines) + "\r\n"


def _quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg or "\\" in arg else arg
