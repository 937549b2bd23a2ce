"""The Allure side of a lab test: steps, attachments, labels, environment and categories.

Imported only when allure-pytest is installed and writes results (``--alluredir``): the
plugin registers it the way pytest-randomly registers its xdist hooks, so without Allure
nothing here is loaded.
"""
from __future__ import annotations

import json
import platform
import re
from collections.abc import Iterable
from contextlib import AbstractContextManager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import allure

from ..lab.narration import Narrator, counter_rows, csv_text, host_rows, setting_rows, state_rows
from ..report import plots

if TYPE_CHECKING:
    from ..lab.lab import Lab
    from ..profiles.profile import Profile
    from ..report.observation import Observation
    from .state import ConnlabState

KB = re.compile(r"\bKB(\d{6,7})\b")
# Failed and broken tests sorted by why, matched on the messages connlab writes
CATEGORIES = [
    {"name": "limit regressed", "matchedStatuses": ["failed"], "messageRegex": r"(?s).*connlab baseline: .* moved.*"},
    {"name": "disturbed by the host", "matchedStatuses": ["failed"], "messageRegex": r"(?s).*disturbed by the host.*"},
    {"name": "not emulable", "matchedStatuses": ["failed", "skipped"],
     "messageRegex": r"(?s).*(not emulable|fidelity none).*"},
    {"name": "lab setup failed", "matchedStatuses": ["failed", "broken", "skipped"],
     "messageRegex": r"(?s).*connlab: (profile|lab|provider|agent|.*did not start).*"},
    {"name": "limit not reproduced", "matchedStatuses": ["failed"], "messageRegex": r"(?s).*observed \d+, expected .*"},
]


def _table(rows: list[list[str]], name: str) -> None:
    if len(rows) > 1:
        allure.attach(csv_text(rows), name=name, attachment_type=allure.attachment_type.CSV)


class AllureNarrator(Narrator):
    """Steps and attachments into the running test's Allure result."""

    def step(self, title: str) -> AbstractContextManager[Any]:
        return allure.step(title)

    def lab_up(self, lab: Lab) -> None:
        allure.dynamic.parameter("profile", lab.profile.name)
        allure.dynamic.parameter("provider", lab.provider.name)
        with allure.step(f"lab up: {lab.name} on {lab.provider.name}, {len(lab.hosts)} hosts"):
            _table(host_rows(lab), "hosts, NICs and addresses")
        with allure.step(f"settings applied: profile {lab.profile.name} ({lab.profile.title})"):
            _table(setting_rows(lab), "settings: Linux knob, value, fidelity, reason")
            if lab.watchers:
                allure.attach("\n".join(lab.watchers), name="lab-wide watchers",
                              attachment_type=allure.attachment_type.TEXT)
        for key, text in lab.profile.sources.items():
            match = KB.search(f"{key} {text}")
            if match:
                number = match.group(1)
                allure.dynamic.link(f"https://support.microsoft.com/kb/{number}", name=f"{key}: KB{number}")
        if lab.profile.sources:
            allure.attach("\n".join(f"{k}: {v}" for k, v in lab.profile.sources.items()),
                          name="the profile's sources", attachment_type=allure.attachment_type.TEXT)

    def observed(self, lab: Lab, obs: Observation) -> None:
        allure.dynamic.feature(obs.limit)
        allure.dynamic.tag(f"fidelity: {obs.fidelity}")
        allure.dynamic.tag(f"verdict: {obs.verdict}")
        title = (f"observation: {obs.limit} observed {obs.observed}, expected {obs.expected_text()}, "
                 f"{obs.how_it_ended()}: {obs.verdict}")
        row = obs.to_json()
        with allure.step(title):
            allure.attach(json.dumps(row, indent=2, default=str), name="observation",
                          attachment_type=allure.attachment_type.JSON)
            _table(counter_rows(obs), "kernel counter deltas")
            _table(state_rows(obs), "socket states")
            if plots.available():
                for name, png in plots.figures(row):
                    allure.attach(png, name=name, attachment_type=allure.attachment_type.PNG)


def _plugin_version() -> str:
    try:
        return version("pytest-connlab")
    except PackageNotFoundError:
        return "unknown"


def write_run_files(folder: Path, provider: str, profiles: Iterable[Profile]) -> None:
    """environment.properties (kernel, provider, profiles, plugin version) and categories.json."""
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in profiles)
    env = {"kernel": platform.release(), "provider": provider, "profiles": ", ".join(names),
           "pytest-connlab": _plugin_version(), "python": platform.python_version()}
    (folder / "environment.properties").write_text("".join(f"{k} = {v}\n" for k, v in env.items()))
    (folder / "categories.json").write_text(json.dumps(CATEGORIES, indent=2) + "\n")


class AllureHooks:
    """Registered only when allure-pytest writes results: the run's environment and categories."""

    def __init__(self, state: ConnlabState, folder: Path) -> None:
        self.state = state
        self.folder = folder

    def pytest_sessionfinish(self) -> None:
        if self.state.worker != "main":
            return
        try:
            write_run_files(self.folder, self.state.provider_name,
                            [self.state.profiles[name] for name in self.state.selected])
        except OSError as exc:
            self.state.output_problems.append(f"--alluredir {self.folder}: environment not written: {exc}")
