"""Labs go away: at teardown, on Ctrl-C, after a crash (via the sweep); --lab-keep keeps one."""
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest

from pytest_connlab.lab.providers.nsexec import NETNS_DIR
from pytest_connlab.lab.reaper import KEEP_DIR, LOCK_DIR, run_is_alive

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


def _foreign_namespace(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True)


def test_connlab_down_refuses_a_name_it_did_not_keep_and_changes_nothing(tmp_path):
    foreign = ["connlab-0badc0de-main-1-server", "connlab-0badc0de-main-1", "mine-server"]
    for name in foreign:
        _foreign_namespace(name)
    try:
        for asked in ("connlab-0badc0de-main-1", "connlab-0badc0de-main", "mine", "../../etc", "connlab-*",
                      "connlab-0badc0de-main-1-server", ""):
            done = subprocess.run(["connlab", "down", asked], capture_output=True, text=True)
            assert done.returncode == 2 and "nothing removed" in done.stderr, (asked, done.stderr)
            assert "Traceback" not in done.stderr
        assert all((NETNS_DIR / n).exists() for n in foreign)
    finally:
        for name in foreign:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_connlab_down_refuses_a_kept_lab_of_a_live_run(pytester):
    """A kept lab whose run is still going stays (its run may still use it); down works once it ended."""
    pytester.makepyfile("import time\nfrom pathlib import Path\n\n"
                        "def test_fails(lab):\n    assert lab.server.address == 'nowhere'\n\n"
                        "def test_waits(lab):\n    Path('waiting').write_text('1')\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--lab-keep"],
                            cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not (pytester.path / "waiting").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        kept = [p.name for p in KEEP_DIR.iterdir()] if KEEP_DIR.is_dir() else []
        lab_name = next(n for n in kept if run_is_alive(n.split("-")[1]))
        done = subprocess.run(["connlab", "down", lab_name], capture_output=True, text=True)
        assert done.returncode == 2 and "still running" in done.stderr, done.stderr
        assert namespaces_of(lab_name.split("-")[1])
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    subprocess.run(["connlab", "down", lab_name], capture_output=True, text=True, check=True)
    assert namespaces_of(lab_name.split("-")[1]) == []


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_run_locks_are_private_and_a_foreign_holder_does_not_block_the_sweep(pytester, tmp_path):
    proc, run_id = _start_waiting_run(pytester)
    lock = LOCK_DIR / f"{run_id}.lock"
    assert stat.S_IMODE(os.stat(LOCK_DIR).st_mode) == 0o700 and stat.S_IMODE(os.stat(lock).st_mode) == 0o600
    proc.kill()
    proc.communicate(timeout=30)
    # another user holds the dead run's lock file (opened before connlab made it private)
    fd = os.open(lock, os.O_RDONLY)
    holder = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
                               "-c", f"import fcntl, time; fcntl.flock({fd}, fcntl.LOCK_SH); time.sleep(30)"],
                              pass_fds=(fd,))
    os.close(fd)
    try:
        time.sleep(0.5)
        assert holder.poll() is None
        out = subprocess.run(["connlab", "clean"], capture_output=True, text=True, check=True).stdout
        assert f"run {run_id}: removed" in out
        assert namespaces_of(run_id) == []
    finally:
        holder.kill()
        holder.wait()


FORKING_TEST = """
import time
from pathlib import Path

def test_forks(lab):
    Path("started").write_text("1")
    end = time.monotonic() + 40
    while time.monotonic() < end:
        lab.server.run(["true"])
    Path("finished").write_text("1")
"""


def test_every_ctrl_c_stops_a_run_that_forks_all_the_time(pytester):
    """A KeyboardInterrupt raised inside an at-fork hook is dropped by Python; connlab sends it again.
    Before that, about one Ctrl-C in four was lost here (the run went on to its end)."""
    pytester.makepyfile(FORKING_TEST)
    rng = random.Random(7)
    for trial in range(8):
        for name in ("started", "finished"):
            (pytester.path / name).unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
                                cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not (pytester.path / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.3, 2.0))
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=60)[0].decode(errors="replace")
        assert not (pytester.path / "finished").exists() and time.monotonic() - sent < 20, (trial, out[-2000:])
        assert proc.returncode == pytest.ExitCode.INTERRUPTED, (trial, out[-2000:])
        assert "KeyboardInterrupt" in out
