"""A profile's settings as the commands that set them on a real Windows host, and undo them.

Registry values go in with ``reg add``; the dynamic port range with ``netsh int
ipv4 set dynamicport tcp``. Before changing anything the previous values are
read (``reg query``, ``netsh ... show``) so restore puts back exactly what was
there, deleting a value that did not exist. Each change says what it needs to
take effect (a reboot for Tcpip\\Parameters). Edition limits (Product.*) and
settings that are not registry values are listed as not applicable.

UNTESTED on Windows: the command text and the apply/restore sequence are tested
against a stand-in for reg.exe and netsh, but no Windows host has run them yet
(the Vagrantfile's Windows box is the way to do so).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import WindowsSettingError
from .profile import Profile

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
                     previous_ports: tuple[int, int] | None,
                     changed: set[str] | None = None) -> list[list[str]]:
    """Commands that put back ``previous`` (value by name; None: it did not exist), newest first;
    with ``changed``, only for those values (and "dynamicport") that were changed."""
    commands = []
    if plan.dynamic_ports and previous_ports and (changed is None or "dynamicport" in changed):
        commands.append(dynamicport_set(*previous_ports))
    for value in reversed(plan.registry):
        name = f"{value.key}\\{value.name}"
        if changed is not None and name not in changed:
            continue
        before = previous.get(name)
        commands.append(value.delete() if before is None else value.add(before))
    return commands


Runner = Callable[[list[str]], tuple[int, str]]  # a command on the Windows host -> (exit status, output)




@dataclass
class AppliedSettings:
    """What apply() changed and the values to put back; saved as JSON between apply and restore."""

    plan: WindowsPlan
    previous: dict[str, int | None] = field(default_factory=dict)  # "<key>\\<name>" -> DWORD or absent
    previous_ports: tuple[int, int] | None = None
    changed: set[str] | None = None  # what apply() managed to set (None: everything in the plan)

    def restore(self, run: Runner) -> list[str]:
        """Put every previous value back (deleting values that did not exist); return the failures."""
        problems = []
        for command in restore_commands(self.plan, self.previous, self.previous_ports, self.changed):
            status, out = run(command)
            if status != 0:
                problems.append(f"{' '.join(command)}: exit {status}: {out.strip()[:300]}")
        return problems

    def to_json(self) -> dict[str, Any]:
        return {"registry": [[v.key, v.name, v.value] for v in self.plan.registry],
                "dynamic_ports": self.plan.dynamic_ports, "previous": self.previous,
                "previous_ports": self.previous_ports}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AppliedSettings:
        plan = WindowsPlan(tuple(RegistryValue(k, n, int(v)) for k, n, v in data["registry"]),
                           tuple(data["dynamic_ports"]) if data["dynamic_ports"] else None, ())
        ports = tuple(data["previous_ports"]) if data["previous_ports"] else None
        return cls(plan, dict(data["previous"]), ports)


def apply(plan: WindowsPlan, run: Runner) -> AppliedSettings:
    """Read the previous values, then set the plan's; on a failure put back what was there."""
    applied = AppliedSettings(plan, changed=set())
    for value in plan.registry:
        status, out = run(value.query())
        applied.previous[f"{value.key}\\{value.name}"] = parse_reg_query(out, value.name) if status == 0 else None
    if plan.dynamic_ports:
        status, out = run(dynamicport_show())
        if status != 0:
            raise WindowsSettingError(f"{' '.join(dynamicport_show())}: exit {status}: {out.strip()[:300]}")
        applied.previous_ports = parse_dynamicport(out)
    names = [f"{v.key}\\{v.name}" for v in plan.registry] + (["dynamicport"] if plan.dynamic_ports else [])
    for name, command in zip(names, plan.apply_commands()):
        status, out = run(command)
        if status == 0:
            assert applied.changed is not None
            applied.changed.add(name)
        else:
            problems = applied.restore(run)
            raise WindowsSettingError(f"{' '.join(command)}: exit {status}: {out.strip()[:300]}"
                                      + (f"; restoring also failed: {problems}" if problems else
                                         "; previous values restored"))
    applied.changed = None  # all of it
    return applied


def ssh_runner(client: Any, timeout: float = 60.0) -> Runner:
    """Run commands with a Windows OpenSSH server's default shell (cmd.exe) over paramiko."""
    def run(argv: list[str]) -> tuple[int, str]:
        _, out, err = client.exec_command(subprocess.list2cmdline(argv), timeout=timeout)
        text = out.read().decode(errors="replace") + err.read().decode(errors="replace")
        return out.channel.recv_exit_status(), text
    return run


def save(applied: AppliedSettings, path: Path) -> None:
    """Write the restore file; made exclusively, so nothing there (a link included) is followed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(applied.to_json(), indent=1))


def load(path: Path) -> AppliedSettings:
    try:
        return AppliedSettings.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WindowsSettingError(f"{path}: not a connlab restore file ({exc})") from None


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
