"""`connlab report`: the offline single-file Allure 3 report, opened in headless Chromium.

tests/report_browser.cjs drives Debian's chromium (puppeteer-core from report/node_modules): it
reads the counts the page shows, opens a test, expands its PNG plot and checks it renders, and
lists every request the page made to anything but the file itself: none may leave the machine.
With CONNLAB_UPDATE_SCREENSHOT=1 its screenshot replaces docs/report.png (the README's)."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_connlab.report import allure3

from .test_reports import PROFILE

pytestmark = pytest.mark.usefixtures("needs_netns")
REPO = Path(__file__).resolve().parent.parent
BROWSER = Path(__file__).resolve().parent / "report_browser.cjs"
PUPPETEER = allure3.TOOLS / "node_modules" / "puppeteer-core"
TESTS = """
def test_ports(lab):
    obs = lab.probe.ephemeral_ports()
    assert obs.ok, obs.explain()

def test_ports_claimed_wrong(lab):
    obs = lab.probe.ephemeral_ports()
    assert obs.observed == 1500, obs.explain()
"""


@pytest.mark.skipif(shutil.which("chromium") is None or not allure3.ALLURE.exists() or not PUPPETEER.exists(),
                    reason="needs ./setup.sh --report (chromium, Allure 3 and puppeteer-core)")
def test_the_report_works_offline_and_shows_the_counts_and_a_plot(pytester, tmp_path):
    labs = pytester.path / "mylabs"
    labs.mkdir()
    (labs / "narrow.yaml").write_text(PROFILE)
    pytester.makeini("[pytest]\nconnlab_labs = mylabs\n")
    pytester.makepyfile(test_ports=TESTS)
    results = pytester.path / "out"
    pytester.runpytest_subprocess("--lab=narrow", f"--alluredir={results}",
                                  "-p", "no:cacheprovider").assert_outcomes(passed=1, failed=1)
    report = pytester.path / "rep"
    made = subprocess.run(["connlab", "report", str(results), "-o", str(report)], capture_output=True, text=True,
                          timeout=600)
    assert made.returncode == 0, made.stderr
    html = (report / "index.html").read_text()
    assert "googletagmanager" not in html and not allure3.REMOTE_REFERENCE.search(html)
    passed = next(t for t in json.loads((report / "test-results.json").read_text())["byId"].values()
                  if t["status"] == "passed")
    shot = tmp_path / "report.png"
    seen = subprocess.run(["node", str(BROWSER), str(allure3.TOOLS), str(report / "index.html"), passed["id"],
                           str(shot)], capture_output=True, text=True, timeout=300)
    assert seen.returncode == 0, seen.stderr
    page = json.loads(seen.stdout)
    assert (page["total"], page["passed"], page["failed"]) == ("Total 2", "Passed 1", "Failed 1"), page
    assert page["plot"] and page["plot"][0]["width"] == 700, page  # the errors-by-errno PNG, rendered
    assert page["remote_requests"] == [], page
    assert shot.read_bytes()[:4] == b"\x89PNG"
    if os.environ.get("CONNLAB_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, REPO / "docs" / "report.png")

    # a second run's report carries the first one's history (the trend across runs)
    again = pytester.path / "rep2"
    made = subprocess.run(["connlab", "report", str(results), "-o", str(again), "--previous", str(report)],
                          capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr
    assert len((again / "history.jsonl").read_text().splitlines()) == 2


def test_a_folder_that_is_not_a_report_is_never_overwritten(tmp_path):
    results = tmp_path / "out"
    results.mkdir()
    (results / "x-result.json").write_text("{}")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    done = subprocess.run(["connlab", "report", str(results), "-o", str(mine)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "is not a report connlab made" in done.stderr
    assert (mine / "notes.txt").read_text() == "keep me" and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    empty = subprocess.run(["connlab", "report", str(tmp_path / "none"), "-o", str(tmp_path / "r")],
                           capture_output=True, text=True, timeout=60)
    assert empty.returncode == 2 and "not a folder of Allure results" in empty.stderr
