"""Per-process plugin state, kept in ``config.stash``."""
from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any

import pytest

from ..factory import LabFactory
from ..lab.narration import Narrator
from ..lab.providers import ProviderOptions
from ..lab.reaper import RunLock
from ..profiles.profile import Profile
from ..report.baseline import Tolerance
from ..report.observation import Observation
from .schedule import DurationRecorder


@dataclass
class ConnlabState:
    """What one pytest process (controller or xdist worker) knows about this run."""

    run_id: str
    worker: str
    slice: IPv4Network
    profiles: dict[str, Profile]
    selected: list[str]
    provider_name: str
    provider_options: ProviderOptions
    keep: bool
    json_path: str | None
    lock: RunLock | None = None
    factory: LabFactory | None = None
    unavailable: str | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    redelivery: Any = None  # the InterruptRedelivery hook, while installed
    output_problems: list[str] = field(default_factory=list)  # e.g. a --lab-json that could not be written
    baseline_save: str | None = None  # --lab-baseline-save
    baseline: dict[str, dict[str, Any]] | None = None  # --lab-compare: the baseline's rows by key
    tolerance: Tolerance | None = None  # --lab-compare-fail
    plots_dir: str | None = None  # --lab-plots
    narrator: Narrator = field(default_factory=Narrator)  # Allure's when allure-pytest writes results
    durations: DurationRecorder | None = None  # the controller's (the next parallel run's order)

    def get_factory(self) -> LabFactory:
        """The session's factory, made on first use (a run with no lab test makes none)."""
        if self.factory is None:
            from ..lab.providers import get_provider
            self.factory = LabFactory(get_provider(self.provider_name, self.provider_options), self.run_id,
                                      self.worker, self.slice)
        return self.factory


STATE_KEY = pytest.StashKey[ConnlabState]()
OBSERVATIONS_KEY = pytest.StashKey[list[Observation]]()
CALL_REPORT_KEY = pytest.StashKey[pytest.TestReport]()
USER_PROPERTY = "connlab_observation"
