"""The reproduction suite on real netns labs, run as a user would (pytester subprocesses)."""
import pytest

from pytest_connlab.reaper import LOCK_DIR

from .labtools import REPO, host_links, host_nft_ruleset, host_sysctls, namespaces_of, results

pytestmark = pytest.mark.usefixtures("needs_netns")

EXPECTED = {  # (limit, profile): (observed, ended_by)
    ("ephemeral_ports", "win2003"): (3976, "EADDRNOTAVAIL"),
    ("ephemeral_ports", "winxp-sp2"): (3976, "EADDRNOTAVAIL"),
    ("ephemeral_ports", "linux-default"): (28232, "EADDRNOTAVAIL"),
    ("listen_backlog", "win2003"): (201, "ETIMEDOUT"),
    ("listen_backlog", "winxp-sp2"): (6, "ETIMEDOUT"),
    ("listen_backlog", "linux-default"): (4097, "ETIMEDOUT"),
    ("inbound_cap", "winxp-sp2"): (10, "ECONNREFUSED"),
    ("inbound_cap", "win2003"): (12, "none"),
    ("inbound_cap", "linux-default"): (12, "none"),
}


def test_every_profile_reproduces_its_limits_and_leaves_nothing(pytester):
    before_sysctls, before_links, before_nft = host_sysctls(), host_links(), host_nft_ruleset()
    out = pytester.path / "results.json"
    result = pytester.runpytest_subprocess(str(REPO / "labs"), "--lab=all", f"--lab-json={out}",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=9)
    run_id, rows = results(out)
    seen = {(r["limit"], r["profile"]): (r["observed"], r["ended_by"]) for r in rows}
    assert seen == EXPECTED
    assert all(r["verdict"] == "ok" and r["provider"] == "netns" for r in rows)
    assert {r["fidelity"] for r in rows if r["profile"] == "linux-default"} == {"exact"}
    result.stdout.fnmatch_lines(["*connlab results*",
                                 "*ephemeral_ports*win2003*3976*3976*EADDRNOTAVAIL (WSAENOBUFS 10055)*exact*ok*",
                                 "*listen_backlog*win2003*201*201*ETIMEDOUT*approximate*ok*"])
    assert namespaces_of(run_id) == []
    assert not (LOCK_DIR / f"{run_id}.lock").exists()
    assert host_sysctls() == before_sysctls
    assert host_links() == before_links
    assert host_nft_ruleset() == before_nft


def _observed(out):
    return sorted((r["test"], r["observed"], r["ended_by"]) for r in results(out)[1])


def test_xdist_gives_the_same_results_as_one_process(pytester):
    serial, parallel = pytester.path / "serial.json", pytester.path / "parallel.json"
    pytester.runpytest_subprocess(str(REPO / "labs"), "--lab=win2003", "-p", "no:xdist",
                                  f"--lab-json={serial}").assert_outcomes(passed=3)
    run = pytester.runpytest_subprocess(str(REPO / "labs"), "--lab=win2003", "-n", "2",
                                        f"--lab-json={parallel}")
    run.assert_outcomes(passed=3)
    assert _observed(serial) == _observed(parallel)
    assert namespaces_of(results(parallel)[0]) == []


USER_PROFILE = """\
title: A service host with a narrow port range
os: linux
sources: {{guide: "our tuning guide"}}
settings:
  net.ipv4.ip_local_port_range: {{value: "20000 20999", source: guide}}
expect:
  ephemeral_ports: {{value: {value}, ended_by: EADDRNOTAVAIL, source: guide}}
"""


def test_a_user_profile_is_measured_and_a_wrong_expectation_fails_with_the_real_number(pytester):
    labs = pytester.path / "mylabs"
    labs.mkdir()
    (labs / "narrow.yaml").write_text(USER_PROFILE.format(value=1000))
    (labs / "wrong.yaml").write_text(USER_PROFILE.format(value=900))
    pytester.makeini("[pytest]\nconnlab_labs = mylabs\n")
    (pytester.path / "test_ports.py").write_text((REPO / "labs" / "test_time_wait.py").read_text())
    out = pytester.path / "r.json"
    result = pytester.runpytest_subprocess("--lab=narrow,wrong", f"--lab-json={out}")
    result.assert_outcomes(passed=1, failed=1)
    rows = {r["profile"]: r for r in results(out)[1]}
    assert rows["narrow"]["observed"] == rows["wrong"]["observed"] == 1000
    assert rows["wrong"]["verdict"] == "differs"
    result.stdout.fnmatch_lines(["*ephemeral_ports on profile wrong (netns): observed 1000, expected 900*"])
