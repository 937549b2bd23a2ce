"""Baselines: a limit that moved between runs fails its test; within tolerance the delta is shown."""
import json

import pytest

from pytest_connlab.report.baseline import Bound, parse_tolerance

from .labtools import narrow_profile

TEST = """
def test_ports(lab):
    obs = lab.probe.ephemeral_ports()
    assert obs.ok, obs.explain()
"""


def test_tolerances_are_units_or_percent_per_limit():
    tol = parse_tolerance(["5%", "ephemeral_ports:0,listen_backlog:2"])
    assert tol.for_limit("keepalive") == Bound(5, True)
    assert tol.for_limit("ephemeral_ports") == Bound(0, False)
    assert Bound(5, True).allows(1000, 1050) and not Bound(5, True).allows(1000, 1051)
    assert Bound(2, False).allows(201, 199) and not Bound(0, False).allows(201, 200)


@pytest.mark.usefixtures("needs_netns")
def test_a_limit_moved_by_an_edited_profile_fails_against_the_baseline(pytester):
    labs = pytester.path / "mylabs"
    labs.mkdir()
    (labs / "narrow.yaml").write_text(narrow_profile(20999, 1000))
    pytester.makeini("[pytest]\nconnlab_labs = mylabs\n")
    pytester.makepyfile(test_ports=TEST)
    base = pytester.path / "base.json"
    pytester.runpytest_subprocess("--lab=narrow", f"--lab-baseline-save={base}",
                                  "-p", "no:cacheprovider").assert_outcomes(passed=1)
    saved = json.loads(base.read_text())
    row = saved["results"][0]
    assert saved["format"] == "connlab-baseline/1"
    assert (row["limit"], row["observed"], row["provider"]) == ("ephemeral_ports", 1000, "netns")
    assert set(row["detail"]["context"]) == {"kernel", "profile_fingerprint"}

    # the profile is edited: half the ports (its expectation follows, so the test itself still passes)
    (labs / "narrow.yaml").write_text(narrow_profile(20499, 500))
    moved = pytester.runpytest_subprocess("--lab=narrow", f"--lab-compare={base}", "--lab-compare-fail=0",
                                          "-p", "no:cacheprovider")
    moved.assert_outcomes(failed=1)
    moved.stdout.fnmatch_lines([
        "*connlab baseline: ephemeral_ports on narrow moved: baseline 1000, now 500, delta -500 (-50.0%), "
        "beyond the tolerance 0*",
        "*profile narrow changed since the baseline: *",
    ])

    within = pytester.runpytest_subprocess("--lab=narrow", f"--lab-compare={base}",
                                           "--lab-compare-fail=10%,ephemeral_ports:60%", "-p", "no:cacheprovider")
    within.assert_outcomes(passed=1)
    within.stdout.fnmatch_lines([
        "*limit*profile*expected*observed*baseline*delta*how it ended*",
        "*ephemeral_ports*narrow*500*500*1000*-500 (-50.0%)*EADDRNOTAVAIL*ok*",
        "*since the baseline: profile narrow changed since the baseline*",
    ])
    # compared without a tolerance: shown, never failed
    shown = pytester.runpytest_subprocess("--lab=narrow", f"--lab-compare={base}", "-p", "no:cacheprovider")
    shown.assert_outcomes(passed=1)
    shown.stdout.fnmatch_lines(["*ephemeral_ports*narrow*500*500*1000*-500 (-50.0%)*"])
