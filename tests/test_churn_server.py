"""A churn's measuring server that falls behind (a busy host) neither ends nor bends the churn.

CI's parallel run once saw XP's and 2008 R2's refuse-on-full emulation reset a churn's SYN: two
churning clients outran the one measuring server until its accept queue (4096) was full. The queue
now holds every connection the churn can make; here the server is stopped outright for 4 s.
"""
import pytest

pytestmark = pytest.mark.usefixtures("needs_netns")

STALLED_SERVER_CHURN = """
import os
import signal
import threading
import time

import pytest


def accept_queue(lab):
    # ss (iproute2) in the server's namespace: a listener's Recv-Q is its accept queue
    listeners = lab.server.run(["ss", "-Hltn"]).stdout.decode().split("\\n")
    queues = [int(line.split()[1]) for line in listeners if line.strip()]
    return max(queues) if queues else None


def stall_the_close_server(lab, seconds, seen):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        servers = [p for p in list(lab.processes) if getattr(p, "label", "").endswith(" server")]
        if servers and accept_queue(lab) is not None:  # it listens: stop it before the churn begins
            os.kill(servers[0].proc.pid, signal.SIGSTOP)
            time.sleep(seconds)
            seen["queued"] = accept_queue(lab)
            os.kill(servers[0].proc.pid, signal.SIGCONT)
            return
        time.sleep(0.01)


@pytest.mark.settings(sysctl={"net.ipv4.tcp_tw_reuse": 1, "net.ipv4.tcp_tw_reuse_delay": 1})
def test_a_stalled_server_does_not_end_the_churn(lab):
    seen = {}
    staller = threading.Thread(target=stall_the_close_server, args=(lab, 4.0, seen))
    staller.start()
    obs = lab.probe.ephemeral_ports()
    staller.join()
    assert (seen.get("queued") or 0) > 4097, seen  # more waited than the old queue held
    assert obs.ok and obs.ended_by == "none", obs.explain()
    assert obs.conditions["server:net.core.somaxconn"].startswith("10000 "), obs.conditions
"""


def test_a_stalled_measuring_server_on_a_refusing_profile_does_not_end_the_churn(pytester):
    pytester.makepyfile(STALLED_SERVER_CHURN)
    result = pytester.runpytest_subprocess("--lab=win2008r2", "-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
