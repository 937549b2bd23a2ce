"""The commands that set a profile on a real Windows host (untested on Windows; the text is tested)."""
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_connlab.errors import WindowsSettingError
from pytest_connlab.profiles.profile import discover
from pytest_connlab.profiles.windows import (
    HTTP,
    TCPIP,
    WININET,
    apply,
    load,
    parse_dynamicport,
    parse_reg_query,
    plan_for,
    restore_commands,
    save,
    script,
)

LABS = Path(__file__).resolve().parent.parent / "labs"
PROFILES = discover([LABS])


def test_win2003_sets_tcpip_parameters_and_names_what_cannot_be_set():
    plan = plan_for(PROFILES["win2003"])
    commands = plan.apply_commands()
    assert ["reg", "add", TCPIP, "/v", "MaxUserPort", "/t", "REG_DWORD", "/d", "5000", "/f"] in commands
    assert ["reg", "add", TCPIP, "/v", "TcpTimedWaitDelay", "/t", "REG_DWORD", "/d", "120", "/f"] in commands
    assert plan.dynamic_ports is None and not any(c[0] == "netsh" for c in commands)
    not_set = dict(plan.not_applicable)
    assert "edition limit" in not_set["Product.ListenBacklogCap"]
    assert any("reboot" in need for need in plan.needs)
    assert not any(k.startswith("Tcpip.") for k in not_set)


def test_vista_sets_the_dynamic_port_range_with_netsh():
    plan = plan_for(PROFILES["vista-sp2"])
    assert plan.dynamic_ports == (49152, 16384)
    assert ["netsh", "int", "ipv4", "set", "dynamicport", "tcp", "start=49152", "num=16384"] in plan.apply_commands()
    assert any("netsh dynamicport applies at once" in need for need in plan.needs)


HTTP_PROFILE = """\
title: An IIS 6 host with HTTP.SYS and WinInet limits
os: windows
sources: {kb: "KB820129 (HTTP.SYS registry settings), KB183110 (WinInet connections per server)"}
settings:
  HTTP.MaxConnections: {value: 1024, source: kb}
  WinInet.MaxConnectionsPerServer: {value: 2, source: kb}
"""


def test_http_sys_and_wininet_values_go_under_their_own_keys_and_say_what_they_need(tmp_path):
    (tmp_path / "iis6.yaml").write_text(HTTP_PROFILE)
    plan = plan_for(discover([tmp_path])["iis6"])
    assert [(v.key, v.name, v.value) for v in plan.registry] == [
        (HTTP, "MaxConnections", 1024), (WININET, "MaxConnectionsPerServer", 2)]
    assert any("HTTP service" in need for need in plan.needs)
    assert any("WinInet processes" in need for need in plan.needs)
    assert not any("reboot" in need for need in plan.needs)


REG_QUERY = """
HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters
    MaxUserPort    REG_DWORD    0x1388

"""
NETSH_SHOW = """
Protocol tcp Dynamic Port Range
---------------------------------
Start Port      : 49152
Number of Ports : 16384
"""


def test_previous_values_are_read_back_from_reg_query_and_netsh_output():
    assert parse_reg_query(REG_QUERY, "MaxUserPort") == 5000
    assert parse_reg_query(REG_QUERY, "TcpTimedWaitDelay") is None
    assert parse_reg_query("ERROR: The system was unable to find the specified registry key or value.",
                           "MaxUserPort") is None
    assert parse_dynamicport(NETSH_SHOW) == (49152, 16384)
    with pytest.raises(ValueError, match="unexpected netsh output"):
        parse_dynamicport("The requested operation requires elevation.")


def test_restore_puts_back_old_values_and_deletes_values_that_did_not_exist():
    plan = plan_for(PROFILES["vista-sp2"])
    first = plan.registry[0]
    previous = {f"{first.key}\\{first.name}": 7}
    commands = restore_commands(plan, previous, (1025, 3976))
    assert commands[0] == ["netsh", "int", "ipv4", "set", "dynamicport", "tcp", "start=1025", "num=3976"]
    assert first.add(7) in commands
    others = [v for v in plan.registry if v is not first]
    assert all(v.delete() in commands for v in others)
    assert len(commands) == 1 + len(plan.registry)


def test_connlab_windows_script_prints_a_cmd_script():
    done = subprocess.run([sys.executable, "-m", "pytest_connlab.cli", "windows", "script", "win2003"],
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    assert text == script(PROFILES["win2003"])  # cmd.exe line ends
    lines = text.split("\r\n")
    assert f'reg query "{TCPIP}" /v MaxUserPort' in lines
    assert f'reg add "{TCPIP}" /v MaxUserPort /t REG_DWORD /d 5000 /f' in lines
    assert lines.index(f'reg query "{TCPIP}" /v MaxUserPort') < lines.index("@rem apply:")
    wrong = subprocess.run([sys.executable, "-m", "pytest_connlab.cli", "windows", "script", "win1995"],
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "unknown lab 'win1995'" in wrong.stderr


class StandIn:
    """What reg.exe and netsh print and do, enough for the apply/restore sequence (no Windows here)."""

    def __init__(self, values, ports=(49152, 16384)):
        self.values = dict(values)  # "<key>\\<name>" -> DWORD
        self.ports = ports
        self.log = []

    def __call__(self, argv):
        self.log.append(argv)
        if argv[:2] == ["reg", "query"]:
            key, name = argv[2], argv[4]
            if f"{key}\\{name}" not in self.values:
                return 1, "ERROR: The system was unable to find the specified registry key or value."
            return 0, f"\r\n{key}\r\n    {name}    REG_DWORD    0x{self.values[key + chr(92) + name]:x}\r\n"
        if argv[:2] == ["reg", "add"]:
            self.values[f"{argv[2]}\\{argv[4]}"] = int(argv[8])
            return 0, "The operation completed successfully."
        if argv[:2] == ["reg", "delete"]:
            self.values.pop(f"{argv[2]}\\{argv[4]}")
            return 0, "The operation completed successfully."
        if argv[:5] == ["netsh", "int", "ipv4", "show", "dynamicport"]:
            return 0, f"Start Port      : {self.ports[0]}\r\nNumber of Ports : {self.ports[1]}\r\n"
        if argv[:5] == ["netsh", "int", "ipv4", "set", "dynamicport"]:
            self.ports = (int(argv[6].split("=")[1]), int(argv[7].split("=")[1]))
            return 0, "Ok."
        return 1, f"unknown command {argv}"


def test_apply_then_restore_leaves_the_host_as_it_was(tmp_path):
    plan = plan_for(PROFILES["vista-sp2"])
    existing = {f"{plan.registry[0].key}\\{plan.registry[0].name}": 7}
    host = StandIn(existing, ports=(1025, 3976))
    applied = apply(plan, host)
    assert {f"{v.key}\\{v.name}": v.value for v in plan.registry}.items() <= host.values.items()
    assert host.ports == (49152, 16384)
    assert all(c[:2] == ["reg", "query"] for c in host.log[:len(plan.registry)])  # read before any change
    save(applied, tmp_path / "state.json")
    assert load(tmp_path / "state.json").restore(host) == []
    assert host.values == existing and host.ports == (1025, 3976)


def test_a_failed_change_restores_what_was_applied_and_names_the_command():
    plan = plan_for(PROFILES["win2003"])
    host = StandIn({})
    with pytest.raises(WindowsSettingError, match="TcpTimedWaitDelay.*Access is denied.*previous values restored"):
        apply(plan, _failing(host, "TcpTimedWaitDelay"))
    assert host.values == {}


def _failing(host, name):
    def run(argv):
        if argv[:2] == ["reg", "add"] and name in argv:
            host.log.append(argv)
            return 1, "ERROR: Access is denied."
        return host(argv)
    return run


def test_a_broken_restore_file_is_named(tmp_path):
    (tmp_path / "state.json").write_text("{")
    with pytest.raises(WindowsSettingError, match="state.json: not a connlab restore file"):
        load(tmp_path / "state.json")
