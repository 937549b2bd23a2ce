"""connlab probe, sheet, up and down: labs outside pytest, on real namespaces."""
import json
import subprocess
import sys
import time

import pytest

from pytest_connlab.profiles.limits import CATALOG
from pytest_connlab.report.jsonfile import FIELDS

from .labtools import REPO

pytestmark = pytest.mark.usefixtures("needs_netns")
CONNLAB = [sys.executable, "-m", "pytest_connlab.cli"]
HOLDS = ("python3 -c 'import selectors, socket\n"
         "listener = socket.create_server((\"0.0.0.0\", 8080), backlog=64)\n"
         "sel = selectors.DefaultSelector(); sel.register(listener, selectors.EVENT_READ)\n"
         "while True:\n"
         "    for key, _ in sel.select():\n"
         "        if key.fileobj is listener:\n"
         "            conn, _ = listener.accept(); sel.register(conn, selectors.EVENT_READ)\n"
         "        elif not key.fileobj.recv(4096):\n"
         "            sel.unregister(key.fileobj); key.fileobj.close()\n'")


def _connlab(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CONNLAB, *args], capture_output=True, text=True, timeout=timeout)


def test_probe_prints_the_number_and_the_same_json_row_as_pytest(pytester):
    table = _connlab("probe", "ephemeral_ports", "--lab", "win2003")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert any(line.split()[:4] == ["ephemeral_ports", "win2003", "3976", "3976"] for line in lines), table.stdout
    row = json.loads(_connlab("probe", "ephemeral_ports", "--lab", "win2003", "--json").stdout)
    out = pytester.path / "rows.json"
    pytester.runpytest_subprocess(str(REPO / "labs" / "test_time_wait.py"), "--lab=win2003", "-k", "exhausts_ephemeral",
                                  f"--lab-json={out}", "-p", "no:cacheprovider")
    ours = json.loads(out.read_text())["results"][0]
    assert list(row) == list(ours) == [*FIELDS, "detail"]
    same = ("profile", "provider", "limit", "expected", "observed", "ended_by", "fidelity", "verdict", "disturbed")
    assert {k: row[k] for k in same} == {k: ours[k] for k in same}
    assert row["observed"] == 3976
    assert set(row["detail"]) == set(ours["detail"])


def test_sheet_lists_every_limit_that_takes_your_program(tmp_path):
    done = _connlab("sheet", "--lab", "win2003", "--target", HOLDS, "--port", "8080", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["limit"] for r in rows] == [n for n, e in CATALOG.items() if e.takes_target]
    assert all(r["detail"]["evidence"]["server"] == f"your program on {r['detail']['evidence']['server'].split()[-1]}"
               and "your program" in r["detail"]["evidence"]["server"] for r in rows), rows


def test_up_keeps_a_lab_until_down_takes_it_away():
    up = subprocess.Popen([*CONNLAB, "up", "winxp-sp2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = up.stdout.readline()
        assert " is up" in first, first + up.stderr.read()
        name = first.split()[1]
        time.sleep(1)
        assert up.poll() is None
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"{name}-server" in namespaces
        assert "half-open-outbound on client1" in first  # its lab-wide watchers keep running
        down = _connlab("down", name, timeout=120)
        assert down.returncode == 0, down.stderr
        assert up.wait(timeout=60) == 0
        assert name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        again = _connlab("down", name)
        assert again.returncode == 2 and "nothing removed" in again.stderr
    finally:
        if up.poll() is None:
            up.kill()
