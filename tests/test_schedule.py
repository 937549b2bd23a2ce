"""Under pytest-xdist, lab tests start longest first, by the wall times the last run kept in the cache."""
import json

SLOW_AND_FAST = """
import time
from pathlib import Path

def _ran(name):
    with open(Path(__file__).parent / "order.txt", "a") as f:
        f.write(name + "\\n")

def test_fast(lab_profile):
    _ran("fast")

def test_medium(lab_profile):
    time.sleep(0.3)
    _ran("medium")

def test_slow(lab_profile):
    time.sleep(0.8)
    _ran("slow")

def test_not_a_lab_test():
    _ran("plain")
"""


def _order(pytester):
    path = pytester.path / "order.txt"
    names = path.read_text().split()
    path.unlink()
    return names


def test_a_parallel_run_starts_the_longest_lab_tests_of_the_last_run_first(pytester):
    pytester.makepyfile(test_labs=SLOW_AND_FAST)
    pytester.runpytest_subprocess("-p", "no:xdist").assert_outcomes(passed=4)
    assert _order(pytester) == ["fast", "medium", "slow", "plain"]  # a serial run keeps the collection order
    kept = json.loads((pytester.path / ".pytest_cache" / "v" / "connlab" / "durations").read_text())
    slow = kept["test_labs.py::test_slow[linux-default]"]
    assert slow >= 0.8 and slow > kept["test_labs.py::test_medium[linux-default]"] >= 0.3
    pytester.runpytest_subprocess("-n", "1").assert_outcomes(passed=4)
    assert _order(pytester) == ["slow", "medium", "fast", "plain"]


def test_without_the_cache_a_parallel_run_keeps_the_collection_order(pytester):
    pytester.makepyfile(test_labs=SLOW_AND_FAST)
    pytester.runpytest_subprocess("-p", "no:xdist").assert_outcomes(passed=4)
    pytester.runpytest_subprocess("-n", "1", "-p", "no:cacheprovider").assert_outcomes(passed=4)
    assert _order(pytester)[-4:] == ["fast", "medium", "slow", "plain"]
