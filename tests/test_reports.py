"""Reports on real labs: Allure results with steps, attachments and labels; plots without Allure;
and nothing of either imported when they are not installed."""
import json

import pytest

from .labtools import narrow_profile

pytestmark = pytest.mark.usefixtures("needs_netns")

PROFILE = narrow_profile(source="our tuning guide, see KB196271")
TEST = """
import sys

def test_ports(lab):
    obs = lab.probe.ephemeral_ports()
    assert obs.ok, obs.explain()
    print("MODULES", "allure" in sys.modules, "matplotlib" in sys.modules)
"""


@pytest.fixture
def narrow(pytester):
    labs = pytester.path / "mylabs"
    labs.mkdir()
    (labs / "narrow.yaml").write_text(PROFILE)
    pytester.makeini("[pytest]\nconnlab_labs = mylabs\n")
    pytester.makepyfile(test_ports=TEST)
    return pytester


def _steps(steps):
    for step in steps:
        yield step
        yield from _steps(step.get("steps", []))


def test_allure_results_tell_the_story_of_a_lab_test(narrow):
    out = narrow.path / "allure"
    run = narrow.runpytest_subprocess("--lab=narrow", f"--alluredir={out}", "-p", "no:cacheprovider")
    run.assert_outcomes(passed=1)
    result = json.loads(next(out.glob("*-result.json")).read_text())
    containers = [json.loads(p.read_text()) for p in out.glob("*-container.json")]
    setup_steps = [s for c in containers for f in c.get("befores", []) for s in _steps(f.get("steps", []))]
    steps = list(_steps(result["steps"]))
    names = [s["name"] for s in setup_steps + steps]
    assert any(n.startswith("lab up: ") for n in names), names
    assert any(n.startswith("settings applied: profile narrow") for n in names), names
    assert "load: ephemeral_ports()" in names, names
    observation = next(s for s in steps if s["name"].startswith("observation: ephemeral_ports observed 1000"))
    kinds = {a["name"]: a["type"] for a in observation["attachments"]}
    assert kinds["observation"] == "application/json"
    assert kinds["kernel counter deltas"] == "text/csv"
    assert kinds["errors-by-errno"] == "image/png"
    png = out / next(a["source"] for a in observation["attachments"] if a["name"] == "errors-by-errno")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    attached = {a["name"]: out / a["source"] for a in observation["attachments"]}
    row = json.loads(attached["observation"].read_text())
    assert (row["observed"], row["ended_by"], row["verdict"]) == (1000, "EADDRNOTAVAIL", "ok")
    labels = {(label["name"], label["value"]) for label in result["labels"]}
    assert {("feature", "ephemeral_ports"), ("tag", "fidelity: exact"), ("tag", "verdict: ok")} <= labels
    params = {p["name"]: p["value"] for p in result["parameters"]}
    assert params["profile"].strip("'") == "narrow" and params["provider"].strip("'") == "netns"
    setup_attachments = {a["name"] for s in setup_steps for a in s.get("attachments", [])}
    assert {"hosts, NICs and addresses", "settings: Linux knob, value, fidelity, reason"} <= setup_attachments
    assert any(link["url"].endswith("/kb/196271") for link in result["links"])
    env = (out / "environment.properties").read_text()
    assert "provider = netns" in env and "profiles = narrow" in env and "kernel = " in env
    categories = {c["name"] for c in json.loads((out / "categories.json").read_text())}
    assert categories == {"limit regressed", "limit not reproduced", "not emulable", "disturbed by the host",
                          "lab setup failed"}


def test_lab_plots_are_written_by_test_without_allure(narrow):
    plots = narrow.path / "plots"
    plots.mkdir()
    narrow.runpytest_subprocess("--lab=narrow", f"--lab-plots={plots}", "-p", "no:allure_pytest",
                                "-p", "no:cacheprovider").assert_outcomes(passed=1)
    written = sorted(p.name for p in plots.iterdir())
    assert written == ["test_ports.py_test_ports_narrow.ephemeral_ports.1.errors-by-errno.png"], written
    assert (plots / written[0]).read_bytes()[:4] == b"\x89PNG"


def test_without_allure_and_matplotlib_nothing_changes_and_nothing_fails(narrow, monkeypatch):
    shadow = narrow.path / "shadow"
    (shadow / "matplotlib").mkdir(parents=True)
    (shadow / "matplotlib" / "__init__.py").write_text("raise ImportError('matplotlib is not installed here')\n")
    import os
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(shadow), os.environ.get("PYTHONPATH")) if p))
    out = narrow.path / "rows.json"
    run = narrow.runpytest_subprocess("--lab=narrow", f"--lab-json={out}", "-p", "no:allure_pytest", "-s",
                                      "-p", "no:cacheprovider")
    run.assert_outcomes(passed=1)
    run.stdout.fnmatch_lines(["*MODULES False False*", "*ephemeral_ports*narrow*1000*1000*EADDRNOTAVAIL*ok*"])
    assert json.loads(out.read_text())["results"][0]["observed"] == 1000
    asked = narrow.runpytest_subprocess("--lab=narrow", f"--lab-plots={narrow.path}", "-p", "no:allure_pytest")
    assert asked.ret == pytest.ExitCode.USAGE_ERROR
    asked.stderr.fnmatch_lines(["*--lab-plots needs matplotlib*"])


def test_a_long_probe_shows_a_live_line_on_a_terminal_and_nothing_in_a_log(narrow):
    import shlex
    import subprocess
    import sys
    wide = narrow_profile(39999, 20000)
    (narrow.path / "mylabs" / "narrow.yaml").write_text(wide)
    args = ["--lab=narrow", "-p", "no:cacheprovider", "-p", "no:allure_pytest"]
    logged = narrow.runpytest_subprocess(*args)
    logged.assert_outcomes(passed=1)
    assert "connlab: ephemeral_ports:" not in logged.stdout.str()
    command = shlex.join([sys.executable, "-m", "pytest", *args])
    on_tty = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, text=True, timeout=300,
                            cwd=narrow.path)
    assert "1 passed" in on_tty.stdout, on_tty.stdout[-2000:]
    assert "connlab: ephemeral_ports: " in on_tty.stdout, on_tty.stdout[-2000:]
    assert "ports of the client in TIME_WAIT after" in on_tty.stdout
