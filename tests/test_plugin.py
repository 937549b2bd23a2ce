"""The plugin's surface, driven through pytester: options, markers, usage errors, skips, CLI."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LAB_TEST = """
import pytest

def test_uses_a_lab(lab):
    assert lab.server.address.startswith("198.1")
"""


def test_unknown_lab_is_a_usage_error_listing_the_names(pytester):
    result = pytester.runpytest_subprocess("--lab=win95")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--lab: unknown lab win95; known: linux-default, *win2003*, or all*"])
    assert "Traceback" not in result.stderr.str()


def test_unknown_provider_is_a_usage_error(pytester):
    result = pytester.runpytest_subprocess("--lab-provider=kubernetes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--lab-provider: unknown provider 'kubernetes'; known: netns*"])


def test_a_bad_user_profile_names_the_file_and_key(pytester):
    pytester.makeini("[pytest]\nconnlab_labs = mylabs\n")
    (pytester.path / "mylabs").mkdir()
    (pytester.path / "mylabs" / "mine.yaml").write_text(
        "title: Mine\nos: linux\nsources: {s: x}\nsettings:\n  net.core.somaxconn: {value: [1, x], source: s}\n")
    result = pytester.runpytest_subprocess("--lab=mine")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*mylabs/mine.yaml: settings.net.core.somaxconn: expected an integer or a string*"])
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize("marker, message", [
    ("topology(clients=0)", "*@pytest.mark.topology: clients must be an integer from 1 to 64, got 0*"),
    ("topology(servers=2)", "*@pytest.mark.topology: unknown argument servers*"),
    ("settings(registry={})", "*@pytest.mark.settings: unknown argument registry*"),
    ("settings(windows={'Tcpip.MaxUserPort': 99})",
     "*windows.Tcpip.MaxUserPort: 99 is outside the documented range 5000..65534*"),
    ("limit('warp')", "*@pytest.mark.limit takes one limit name; known: accept_overflow*ephemeral_ports*"),
])
def test_a_bad_marker_is_a_usage_error_naming_the_test(pytester, marker, message):
    pytester.makepyfile(f"import pytest\n@pytest.mark.{marker}\ndef test_x(lab):\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_markers_are_parsed_once_at_collection_and_the_fixtures_use_that(pytester):
    """The settings marker is applied to the profile at collection; the lab_profile fixture gives that
    very object back (kept in the item's stash), not a second parse."""
    pytester.makepyfile(
        "import pytest\n"
        "from pytest_connlab.plugin.markers import LAB_REQUEST_KEY\n"
        "@pytest.mark.topology(clients=2)\n"
        "@pytest.mark.limit('ephemeral_ports')\n"
        "@pytest.mark.settings(sysctl={'net.ipv4.ip_local_port_range': '20000 20999'})\n"
        "def test_p(request, lab_profile):\n"
        "    kept = request.node.stash[LAB_REQUEST_KEY]\n"
        "    assert kept.profile is lab_profile\n"
        "    assert kept.topology.clients == 2 and kept.limit == 'ephemeral_ports'\n"
        "    assert lab_profile.value_of('net.ipv4.ip_local_port_range') == '20000 20999'\n")
    result = pytester.runpytest_subprocess("--lab=linux-default,win2003")
    result.assert_outcomes(passed=2)


def test_lab_all_parametrizes_every_profile(pytester):
    pytester.makepyfile("def test_p(lab_profile):\n    assert lab_profile.title\n")
    result = pytester.runpytest_subprocess("--lab=all", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_p[[]linux-default[]]", "*test_p[[]win2003[]]", "*test_p[[]winxp-sp2[]]"])


def test_default_lab_is_linux_default_and_header_says_so(pytester):
    pytester.makepyfile("def test_p(lab_profile):\n    assert lab_profile.name == 'linux-default'\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(['connlab: lab linux-default "Linux kernel defaults*" on provider netns (native)'])


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_without_privileges_lab_tests_skip_with_one_reason(pytester):
    pytester.makepyfile(LAB_TEST + "\ndef test_second(lab):\n    pass\n\ndef test_plain():\n    pass\n")
    result = pytester.run("setpriv", "--bounding-set=-all", "--inh-caps=-all", sys.executable, "-m",
                          "pytest", "-p", "no:cacheprovider", "-rs", "--lab=win2003", str(pytester.path))
    result.assert_outcomes(passed=1, skipped=2)
    reasons = [line for line in result.stdout.lines if line.startswith("SKIPPED")]
    assert len({line.split(": ", 1)[1] for line in reasons}) == 1, reasons
    assert "needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)" in reasons[0]


def test_connlab_list_and_show():
    listed = subprocess.run(["connlab", "list"], capture_output=True, text=True, check=True).stdout
    assert "win2003" in listed and "Windows Server 2003 SP1 defaults" in listed
    shown = subprocess.run(["connlab", "show", "winxp-sp2"], capture_output=True, text=True, check=True).stdout
    assert "Product.InboundComputerCap = 10" in shown and "[approximate]" in shown
    path = subprocess.run(["connlab", "path"], capture_output=True, text=True, check=True).stdout.strip()
    assert (Path(path) / "win2003.yaml").is_file() and (Path(path) / "test_time_wait.py").is_file()
    bad = subprocess.run(["connlab", "show", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown lab 'nope'" in bad.stderr
