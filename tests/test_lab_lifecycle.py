"""Labs go away: at teardown, on Ctrl-C, after a crash (via the sweep); --lab-keep keeps one."""
import signal
import subprocess
import sys
import time

import pytest

from .labtools import namespaces_of

pytestmark = pytest.mark.usefixtures("needs_netns")

WAITING_TEST = """
import time
from pathlib import Path

def test_waits(lab):
    Path("lab-name").write_text(lab.name)
    time.sleep(60)
"""


def _start_waiting_run(pytester):
    pytester.makepyfile(WAITING_TEST)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
                            cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    marker = pytester.path / "lab-name"
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), proc.communicate(timeout=5)[0]
    time.sleep(0.2)
    name = marker.read_text()
    run_id = name.split("-")[1]
    assert namespaces_of(run_id), "the lab should exist while the test runs"
    return proc, run_id


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_tears_its_lab_down(pytester, sig):
    proc, run_id = _start_waiting_run(pytester)
    proc.send_signal(sig)
    proc.communicate(timeout=30)
    assert namespaces_of(run_id) == []


def test_a_killed_run_leaves_its_lab_and_connlab_clean_sweeps_it(pytester):
    proc, run_id = _start_waiting_run(pytester)
    proc.kill()
    proc.communicate(timeout=30)
    assert namespaces_of(run_id), "SIGKILL gives no chance to clean up"
    out = subprocess.run(["connlab", "clean"], capture_output=True, text=True, check=True).stdout
    assert f"run {run_id}: removed" in out
    assert namespaces_of(run_id) == []


def test_clean_spares_a_live_run(pytester):
    proc, run_id = _start_waiting_run(pytester)
    try:
        subprocess.run(["connlab", "clean"], capture_output=True, text=True, check=True)
        assert namespaces_of(run_id), "a live run's lab must survive the sweep"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert namespaces_of(run_id) == []


def test_lab_keep_keeps_a_failed_tests_lab_until_connlab_down(pytester):
    pytester.makepyfile("def test_fails(lab):\n    assert lab.server.address == 'nowhere'\n\n"
                        "def test_passes(lab):\n    pass\n")
    result = pytester.runpytest_subprocess("--lab-keep")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["connlab: kept lab connlab-* (kept for *test_fails*)",
                                 "*server: ip netns exec connlab-*-server bash*",
                                 "*remove with: connlab down connlab-*"])
    line = next(x for x in result.stdout.lines if x.startswith("connlab: kept lab "))
    lab_name = line.split()[3]
    run_id = lab_name.split("-")[1]
    assert sorted(n.rsplit("-", 1)[1] for n in namespaces_of(run_id)) == ["client1", "lan", "server"]
    subprocess.run(["connlab", "clean"], check=True, capture_output=True)
    assert namespaces_of(run_id), "the sweep spares a kept lab"
    out = subprocess.run(["connlab", "down", lab_name], capture_output=True, text=True, check=True).stdout
    assert "removed 3 namespaces" in out
    assert namespaces_of(run_id) == []
