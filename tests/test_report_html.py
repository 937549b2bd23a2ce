"""`connlab report`: the offline single-file Allure 3 report, opened in headless Chromium.

Chromium sends every request through a logging proxy of the test's own, so a request that would
leave the machine is seen (and answered with an error, never forwarded)."""
import http.server
import json
import re
import shutil
import socketserver
import subprocess
import threading
from pathlib import Path

import pytest

from pytest_connlab.report import allure3

from .test_reports import PROFILE

pytestmark = pytest.mark.usefixtures("needs_netns")
REPO = Path(__file__).resolve().parent.parent
SCREENSHOT = REPO / "docs" / "report.png"
TESTS = """
def test_ports(lab):
    obs = lab.probe.ephemeral_ports()
    assert obs.ok, obs.explain()

def test_ports_claimed_wrong(lab):
    obs = lab.probe.ephemeral_ports()
    assert obs.observed == 1500, obs.explain()
"""
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
                  "--disable-domain-reliability", "--disable-client-side-phishing-detection",
                  "--metrics-recording-only", "--no-default-browser-check", "--window-size=1400,1000"]


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def _refuse(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        self.send_error(403, "connlab test: no request may leave the machine")

    do_GET = do_POST = do_HEAD = do_CONNECT = _refuse

    def log_message(self, *args):
        pass


@pytest.fixture
def proxy():
    _Recorder.seen = []
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], _Recorder.seen
    server.shutdown()


def _chromium(proxy_port: int, profile: Path, *args: str, timeout: float = 90) -> str:
    done = subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                           f"--proxy-server=http://127.0.0.1:{proxy_port}", "--proxy-bypass-list=<-loopback>",
                           *args], capture_output=True, text=True, timeout=timeout)
    return done.stdout


@pytest.mark.skipif(shutil.which("chromium") is None or not allure3.ALLURE.exists(),
                    reason="needs ./setup.sh --report (chromium and Allure 3)")
def test_the_report_works_offline_and_shows_counts_and_a_plot(pytester, proxy, tmp_path):
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
    assert json.loads((report / "summary.json").read_text())["stats"] == {"total": 2, "passed": 1, "failed": 1,
                                                                            "new": 2}
    port, seen = proxy
    dom = _chromium(port, tmp_path / "chrome", "--virtual-time-budget=20000", "--dump-dom",
                    f"file://{report}/index.html")
    text = re.sub(r"<[^>]+>", " ", dom)
    assert re.search(r"\b2\b.*\btotal\b|\btotal\b.*\b2\b", text, re.I | re.S), text[:2000]
    assert re.search(r"\bpassed\b", text, re.I) and re.search(r"\bfailed\b", text, re.I), text[:2000]
    assert seen == [], seen
