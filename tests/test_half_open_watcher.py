"""The XP SP2 half-open outbound cap, lab-wide: the watcher on a real kernel (NFQUEUE, sock_diag)."""
import pytest

pytestmark = pytest.mark.usefixtures("needs_netns")

QUEUED = '''
import json, subprocess, sys, time

import pytest

from pytest_connlab.errors import LabSetupError

CONNECTS = """
import socket, sys, time
socks = []
for _ in range(15):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex((sys.argv[1], 9))
    socks.append(s)
print("started", flush=True)
time.sleep(30)
"""


def _stats(watcher):
    watcher.command("stats")
    return watcher.expect("stats", timeout=10)


def test_connects_past_the_cap_wait_and_leave_when_closed(lab):
    client = lab.clients[0]
    watcher = lab.watcher("half-open-outbound", client)
    lab.load_nft(lab.server, ["chain hole { type filter hook input priority filter; policy accept; "
                              "tcp dport 9 drop; }"])
    proc = client.popen(["python3", "-c", CONNECTS, lab.server.address], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"started\\n"
    time.sleep(0.5)
    waiting = _stats(watcher)
    proc.kill()
    proc.wait(timeout=10)
    time.sleep(0.5)  # the watcher finds closed connects within 50 ms while one waits
    after = _stats(watcher)
    print("RESULT", json.dumps({"waiting": waiting, "after": after}))
    assert (waiting["in_flight_now"], waiting["waiting_now"], waiting["waited"]) == (10, 5, 5)
    assert (after["waiting_now"], after["closed_while_waiting"]) == (0, 5)


def test_a_lab_whose_watcher_stopped_fails_the_next_probe(lab):
    watcher = lab.watcher("half-open-outbound", lab.clients[0])
    watcher.proc.kill()
    watcher.proc.wait(timeout=10)
    with pytest.raises(LabSetupError, match="half-open-outbound on client1 stopped"):
        lab.probe.time_wait_length()
'''


def test_the_half_open_watcher_holds_connects_past_the_cap(pytester):
    pytester.makepyfile(test_half_open=QUEUED)
    result = pytester.runpytest_subprocess("--lab=winxp-sp2", "-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=2)


def test_profiles_without_the_cap_run_no_watcher(pytester):
    pytester.makepyfile(test_none="""
def test_none(lab):
    assert lab.watcher("half-open-outbound", lab.clients[0]) is None
    assert not [w for w in lab.watchers if w.startswith("half-open-outbound")]
""")
    pytester.runpytest_subprocess("--lab=vista-sp2", "-p", "no:cacheprovider").assert_outcomes(passed=1)
