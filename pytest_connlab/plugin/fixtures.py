"""Fixtures: ``lab_profile`` (parametrized by --lab), ``lab_factory`` (session), ``lab`` (one test)."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ..errors import LabSetupError, ProviderUnavailable
from ..factory import LabFactory
from ..lab.lab import Lab
from ..profiles.profile import Profile
from .markers import limit_of, profile_for, topology_of
from .state import CALL_REPORT_KEY, OBSERVATIONS_KEY, STATE_KEY


@pytest.fixture
def lab_profile(request: pytest.FixtureRequest) -> Profile:
    """The lab profile this test runs on (one parameter per --lab name)."""
    state = request.config.stash[STATE_KEY]
    name = getattr(request, "param", state.selected[0])
    return profile_for(request.node, state.profiles[name])


@pytest.fixture(scope="session")
def lab_factory(request: pytest.FixtureRequest) -> Iterator[LabFactory]:
    """Builds labs for this session and tears down any still standing at its end."""
    state = request.config.stash[STATE_KEY]
    factory = state.get_factory()
    yield factory
    state.problems += factory.close()


def terminal_progress(config: pytest.Config) -> Callable[[str], None]:
    """Write a probe's progress line to the terminal, past output capturing (no-op without one)."""
    reporter = config.pluginmanager.getplugin("terminalreporter")
    capture = config.pluginmanager.getplugin("capturemanager")

    def write(text: str) -> None:
        if reporter is None:
            return
        if capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(f"connlab: {text}")
        else:
            reporter.write_line(f"connlab: {text}")
    return write


def _failed(item: pytest.Item) -> bool:
    report = item.stash.get(CALL_REPORT_KEY, None)
    return report is not None and report.failed


@pytest.fixture
def lab(request: pytest.FixtureRequest, lab_factory: LabFactory, lab_profile: Profile) -> Iterator[Lab]:
    """A fresh lab for this test: hosts per its topology marker, settings per its profile."""
    state = request.config.stash[STATE_KEY]
    why_not = lab_factory.cannot_measure(lab_profile, limit_of(request.node))
    if why_not:
        pytest.skip(why_not)
    setup_error = None
    try:
        built = lab_factory.build(lab_profile, topology_of(request.node))
    except ProviderUnavailable as exc:
        pytest.skip(str(exc))
    except LabSetupError as exc:  # a setting the kernel refused: say which, no traceback
        setup_error = str(exc)
    if setup_error is not None:
        pytest.fail(f"connlab: {setup_error}", pytrace=False)
    request.node.stash[OBSERVATIONS_KEY] = built.observations
    built.progress = terminal_progress(request.config)
    yield built
    if state.keep and _failed(request.node):
        access = lab_factory.keep(built)
        state.kept.append(f"{built.name} (kept for {request.node.nodeid})\n    " + "\n    ".join(access)
                          + f"\n    remove with: connlab down {built.name}")
    else:
        state.problems += lab_factory.destroy(built)
