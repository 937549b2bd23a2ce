"""Fixtures: ``lab_profile`` (parametrized by --lab), ``lab_factory`` (session), ``lab`` (one test)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..errors import LabSetupError, ProviderUnavailable
from ..factory import LabFactory
from ..probes import ProbedLab
from ..profiles.profile import Profile
from ..report.progress import TerminalProgress
from .markers import request_of
from .state import CALL_REPORT_KEY, OBSERVATIONS_KEY, STATE_KEY


@pytest.fixture
def lab_profile(request: pytest.FixtureRequest) -> Profile:
    """The profile (``profiles.profile.Profile``) this test runs on: function scope, one
    parameter per ``--lab`` name (``--lab=all``: every profile), with the test's
    ``@pytest.mark.settings(...)`` applied on top.

    Example::

        def test_port_range(lab_profile):
            assert lab_profile.value_of("Tcpip.MaxUserPort") == 5000
    """
    state = request.config.stash[STATE_KEY]
    name = getattr(request, "param", state.selected[0])
    return request_of(request.node, state.profiles[name]).profile


@pytest.fixture(scope="session")
def lab_factory(request: pytest.FixtureRequest) -> Iterator[LabFactory]:
    """The session's ``LabFactory``: session scope (one per xdist worker). Builds labs on the
    chosen provider (``factory.build(profile, TopologyRequest(...))``) and tears down any lab
    still standing at the end of the session, Ctrl-C included. Most tests want ``lab``.

    Example::

        def test_two_labs(lab_factory, lab_profile):
            first = lab_factory.build(lab_profile, TopologyRequest(clients=1))
            ...
    """
    state = request.config.stash[STATE_KEY]
    factory = state.get_factory()
    yield factory
    state.problems += factory.close()


def terminal_progress(config: pytest.Config) -> TerminalProgress:
    """A probe's live progress line on the terminal (nothing when output is not a terminal)."""
    return TerminalProgress(config.pluginmanager.getplugin("terminalreporter"),
                            config.pluginmanager.getplugin("capturemanager"))


def _failed(item: pytest.Item) -> bool:
    report = item.stash.get(CALL_REPORT_KEY, None)
    return report is not None and report.failed


@pytest.fixture
def lab(request: pytest.FixtureRequest, lab_factory: LabFactory, lab_profile: Profile) -> Iterator[ProbedLab]:
    """A fresh lab (``probes.ProbedLab``) for this test: function scope, torn down after it
    (kept for a failed test with ``--lab-keep``). Its hosts follow
    ``@pytest.mark.topology(clients=, ips_per_client=, router=)``; the profile's settings are
    applied before the test starts. ``lab.server``, ``lab.clients`` and ``lab.router`` are the
    hosts; ``lab.server.start(argv, port)`` runs your own server in it; ``lab.probe.<limit>(...)``
    runs a probe and returns its Observation.

    Example::

        @pytest.mark.topology(clients=2)
        def test_backlog(lab):
            seen = lab.probe.listen_backlog(backlog=128)
            assert seen.observed == seen.expected
    """
    state = request.config.stash[STATE_KEY]
    asked = request_of(request.node, lab_profile)
    why_not = lab_factory.cannot_measure(lab_profile, asked.limit)
    if why_not:
        pytest.skip(why_not)
    setup_error = None
    try:
        built = lab_factory.build(lab_profile, asked.topology)
    except ProviderUnavailable as exc:
        pytest.skip(str(exc))
    except LabSetupError as exc:  # a setting the kernel refused: say which, no traceback
        setup_error = str(exc)
    if setup_error is not None:
        pytest.fail(f"connlab: {setup_error}", pytrace=False)
    request.node.stash[OBSERVATIONS_KEY] = built.observations
    built.progress = terminal_progress(request.config)
    built.narrator = state.narrator
    built.narrator.lab_up(built)
    yield built
    if state.keep and _failed(request.node):
        access = lab_factory.keep(built)
        state.kept.append(f"{built.name} (kept for {request.node.nodeid})\n    " + "\n    ".join(access)
                          + f"\n    remove with: connlab down {built.name}")
    else:
        state.problems += lab_factory.destroy(built)
