"""The commands that set a profile on a real Windows host (untested on Windows; the text is tested)."""
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_connlab.profiles import discover
from pytest_connlab.windows import (
    HTTP,
    TCPIP,
    WININET,
    parse_dynamicport,
    parse_reg_query,
    plan_for,
    restore_commands,
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
    done = subprocess.run([sys.executable, "-m", "pytest_connlab.cli", "windows-script", "win2003"],
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    assert text == script(PROFILES["win2003"])  # cmd.exe line ends
    lines = text.split("\r\n")
    assert f'reg query "{TCPIP}" /v MaxUserPort' in lines
    assert f'reg add "{TCPIP}" /v MaxUserPort /t REG_DWORD /d 5000 /f' in lines
    assert lines.index(f'reg query "{TCPIP}" /v MaxUserPort') < lines.index("@rem apply:")
    wrong = subprocess.run([sys.executable, "-m", "pytest_connlab.cli", "windows-script", "win1995"],
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "unknown lab 'win1995'" in wrong.stderr
