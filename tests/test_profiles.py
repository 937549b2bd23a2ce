"""Profiles: the shipped ones load; every bad profile is a ProfileError naming file and key."""
from pathlib import Path

import pytest

from pytest_connlab.errors import ProfileError
from pytest_connlab.profiles.profile import builtin_dir, discover, load

GOOD = """\
title: T
os: windows
sources: {S: "a source"}
settings:
  Tcpip.MaxUserPort: {value: 5000, source: S}
expect:
  ephemeral_ports: {value: 3976, ended_by: WSAENOBUFS, source: S}
"""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_profiles_load_with_sources_for_every_setting():
    profiles = discover([])
    assert {"linux-default", "win2003", "winxp-sp2"} <= set(profiles)
    for profile in profiles.values():
        assert profile.title
        for setting in profile.settings:
            assert setting.source in profile.sources, (profile.name, setting.key)


def test_win2003_emulates_maxuserport_as_the_1025_range():
    knobs = discover([])["win2003"].knobs()
    assert knobs.sysctls["all"]["net.ipv4.ip_local_port_range"] == "1025 5000"
    assert knobs.sysctls["all"]["net.core.somaxconn"] == "200"


def test_a_good_profile_loads(tmp_path):
    profile = load(write(tmp_path, GOOD))
    assert profile.name == "p" and profile.expect["ephemeral_ports"].value == 3976


@pytest.mark.parametrize("bad, where", [
    (GOOD.replace("title: T\n", ""), "title"),
    (GOOD + "colour: blue\n", "colour"),
    (GOOD.replace("os: windows", "os: beos"), "os"),
    (GOOD.replace("Tcpip.MaxUserPort", "Tcpip.MaxUserPorts"), "settings.Tcpip.MaxUserPorts"),
    (GOOD.replace("value: 5000", "value: 70000"), "settings.Tcpip.MaxUserPort"),
    (GOOD.replace("value: 5000", "value: lots"), "settings.Tcpip.MaxUserPort"),
    (GOOD.replace("value: 5000, source: S", "value: 5000, source: nowhere"), "settings.Tcpip.MaxUserPort.source"),
    (GOOD.replace("value: 5000, source: S", "value: 5000"), "settings.Tcpip.MaxUserPort"),
    (GOOD.replace("ephemeral_ports:", "warp_drive:"), "expect.warp_drive"),
    (GOOD.replace("value: 3976", "value: -3"), "expect.ephemeral_ports.value"),
    (GOOD.replace("WSAENOBUFS", "EOOPS"), "expect.ephemeral_ports.ended_by"),
    (GOOD.replace("os: windows", "os: linux").replace("Tcpip.MaxUserPort", "fs.protected_symlinks"),
     "settings.fs.protected_symlinks"),
    (GOOD.replace("os: windows", "os: linux").replace("Tcpip.MaxUserPort", "kernel.pid_max"),
     "settings.kernel.pid_max"),
    ("title: T\nos: [unclosed\n", "line 3"),
    ("- a list\n", "top level"),
])
def test_a_bad_profile_names_file_and_key(tmp_path, bad, where):
    path = write(tmp_path, bad)
    with pytest.raises(ProfileError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: {where}:"), str(info.value)


@pytest.mark.parametrize("key", ["net.netfilter.nf_conntrack_max", "fs.nr_open", "fs.file-max", "net.ipv4.tcp_mem"])
def test_a_kernel_wide_key_loads_as_a_setting_for_hosts_with_their_own_kernel(tmp_path, key):
    """Kernel-wide keys are settings of a lab whose hosts have their own kernel (vm); a namespace provider
    refuses them when the lab is made (tests/test_vm_provider.py), never at load."""
    value = "4096 8192 16384" if key == "net.ipv4.tcp_mem" else "5000"
    text = GOOD.replace("os: windows", "os: linux").replace("Tcpip.MaxUserPort", key).replace("value: 5000",
                                                                                             f"value: \"{value}\"")
    profile = load(write(tmp_path, text))
    assert profile.knobs().sysctls["all"][key] == value


def test_a_users_folder_shadows_a_shipped_profile(tmp_path):
    write(tmp_path, GOOD.replace("title: T", "title: Mine"), "win2003.yaml")
    assert discover([tmp_path])["win2003"].title == "Mine"
    assert discover([])["win2003"].title != "Mine"


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(ProfileError, match="connlab_labs: not a folder"):
        discover([tmp_path / "nope"])


def test_builtin_dir_is_the_repository_labs_folder():
    assert (builtin_dir() / "win2003.yaml").is_file()


def test_marker_overrides_replace_a_setting_and_drop_the_expectations_it_touches():
    profile = discover([])["win2003"].with_overrides({}, {"Tcpip.MaxUserPort": 6000}, "test")
    assert profile.knobs().sysctls["all"]["net.ipv4.ip_local_port_range"] == "1025 6000"
    assert "ephemeral_ports" not in profile.expect and "listen_backlog" in profile.expect
    linux = discover([])["linux-default"].with_overrides({"net.core.somaxconn": 64}, {}, "test")
    assert {"listen_backlog", "accept_overflow"}.isdisjoint(linux.expect)
    assert {"ephemeral_ports", "inbound_cap", "keepalive"} <= set(linux.expect)
