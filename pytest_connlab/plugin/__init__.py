"""pytest-connlab's pytest plugin: options, ini keys, markers, hooks. Registered via pytest11."""
from __future__ import annotations

import signal
from collections.abc import Generator
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest

from ..errors import InventoryError, JsonPathError, ProfileError, ProviderUnavailable
from ..lab import reaper
from ..lab.addressing import worker_slice
from ..lab.names import new_run_id
from ..lab.providers import ProviderOptions, every_provider, get_provider
from ..lab.providers.inventory import load_inventory
from ..profiles.profile import discover
from ..report import baseline, jsonfile, table
from ..report.observation import Observation
from . import comparisons, options, schedule
from .fixtures import lab, lab_factory, lab_profile  # noqa: F401  (fixtures are registered here)
from .markers import MARKERS, parse
from .signals import InterruptRedelivery, TerminateAsInterrupt
from .state import CALL_REPORT_KEY, OBSERVATIONS_KEY, STATE_KEY, USER_PROPERTY, ConnlabState


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def _make_state(config: pytest.Config) -> ConnlabState:
    try:
        profiles = discover([Path(p) for p in config.getini("connlab_labs")])
    except ProfileError as exc:
        raise pytest.UsageError(f"connlab: {exc}") from None
    provider = options.provider_name(config)
    provider_options = _provider_options(config, provider)
    selected = options.selected_labs(config, sorted(profiles))
    json_path = options.json_path(config)
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput and "connlab_run_id" in workerinput:
        run_id, worker = workerinput["connlab_run_id"], workerinput["workerid"]
        slice_ = IPv4Network(workerinput["connlab_slice"])
    else:
        run_id, worker, slice_ = new_run_id(), "main", worker_slice(0, 1)
    save = options.baseline_save_path(config)
    rows, tolerance = options.comparison(config)
    return ConnlabState(run_id=run_id, worker=worker, slice=slice_, profiles=profiles, selected=selected,
                        provider_name=provider, provider_options=provider_options,
                        keep=config.getoption("connlab_keep"), json_path=str(json_path) if json_path else None,
                        baseline_save=str(save) if save else None, baseline=rows, tolerance=tolerance,
                        plots_dir=str(plots) if (plots := options.plots_dir(config)) else None)


def _provider_options(config: pytest.Config, provider: str) -> ProviderOptions:
    """The docker image, ssh inventory and Vagrantfile folder; a bad one is a UsageError."""
    inventory = options.inventory_path(config)
    if provider == "ssh":
        if inventory is None:
            raise pytest.UsageError("--lab-provider ssh needs --lab-inventory PATH (or ini connlab_inventory)")
        try:
            load_inventory(inventory)
        except InventoryError as exc:
            raise pytest.UsageError(f"connlab: {exc}") from None
    return ProviderOptions(docker_image=options.docker_image(config), inventory=inventory,
                           vagrant_dir=options.vagrant_dir(config, provider),
                           vagrant_provider=options.vagrant_provider(config), vm_kernel=options.vm_kernel(config))


class ResultCollector:
    """Gathers observations from call reports, the workers' included (they ride in user_properties)."""

    def __init__(self, state: ConnlabState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == USER_PROPERTY:
                self.state.results.append({**value, "test": report.nodeid})  # type: ignore[dict-item]


class XdistHooks:
    """Ships the run id and each worker's address slice to the workers."""

    def __init__(self, state: ConnlabState) -> None:
        self.state = state

    def pytest_configure_node(self, node: Any) -> None:
        index = int(str(node.workerinput["workerid"]).lstrip("gw"))
        node.workerinput["connlab_run_id"] = self.state.run_id
        node.workerinput["connlab_slice"] = str(worker_slice(index, int(node.workerinput["workercount"])))


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    state = _make_state(config)
    config.stash[STATE_KEY] = state
    try:
        get_provider(state.provider_name, state.provider_options).check()
    except ProviderUnavailable as exc:
        state.unavailable = str(exc)
    else:  # only a process that can make labs holds a run lock and sweeps dead runs
        state.lock = reaper.RunLock(state.run_id).acquire()
        if state.worker == "main":
            reaper.sweep(every_provider())
    config.pluginmanager.register(ResultCollector(state), "connlab-results")
    if not hasattr(config, "workerinput"):
        state.durations = schedule.DurationRecorder()
        config.pluginmanager.register(state.durations, "connlab-durations")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(state), "connlab-xdist")
    alluredir = options.allure_dir(config)
    if alluredir is not None:  # only then is anything of Allure imported
        from .allure_narrator import AllureHooks, AllureNarrator
        state.narrator = AllureNarrator()
        config.pluginmanager.register(AllureHooks(state, alluredir), "connlab-allure")
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, TerminateAsInterrupt())  # teardown runs as on Ctrl-C


def pytest_sessionstart(session: pytest.Session) -> None:
    # after every plugin's pytest_configure: pytest's own unraisable hook is in place, and ours wraps it
    state = session.config.stash.get(STATE_KEY, None)
    if state is not None:
        state.redelivery = InterruptRedelivery().install()


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        return
    if state.factory is not None:
        state.factory.close()
    if state.lock is not None:
        state.lock.release()
    if state.redelivery is not None:
        state.redelivery.uninstall()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "lab_profile" in metafunc.fixturenames:
        selected = metafunc.config.stash[STATE_KEY].selected
        metafunc.parametrize("lab_profile", selected, indirect=True, ids=selected)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash[STATE_KEY]
    lab_items = [i for i in items if "lab_profile" in getattr(i, "fixturenames", ())]
    for item in lab_items:  # every marker is parsed here, once; the fixtures read the item's stash
        callspec = getattr(item, "callspec", None)
        parse(item, state.profiles[callspec.params["lab_profile"] if callspec else state.selected[0]])
    if state.unavailable:
        for item in lab_items:
            if "lab" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.skip(reason=state.unavailable))
    elif hasattr(config, "workerinput"):  # an xdist worker: hand out the longest lab tests first
        schedule.longest_first(config, items, lab_items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[CALL_REPORT_KEY] = report
        observations: list[Observation] = item.stash.get(OBSERVATIONS_KEY, [])
        state = item.config.stash[STATE_KEY]
        rows = [baseline.result_row(obs, report.nodeid, state.profiles.get(obs.profile)) for obs in observations]
        if state.baseline is not None:
            comparisons.apply(report, rows, state.baseline, state.tolerance)
        for row in rows:
            report.user_properties.append((USER_PROPERTY, row))
    return report


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash[STATE_KEY]
    lines = []
    for name in state.selected:
        profile = state.profiles[name]
        how = "emulated" if profile.os == "windows" else "native"
        lines.append(f'connlab: lab {name} "{profile.title}" on provider {state.provider_name} ({how})')
    lines.append(f"connlab: run {state.run_id}, lab addresses from {state.slice}")
    if not state.unavailable:
        provider = get_provider(state.provider_name, state.provider_options)
        describe = getattr(provider, "describe", None)
        if describe is not None:
            lines.append(f"connlab: on provider {state.provider_name}: {describe()}")
    if state.unavailable:
        lines.append(f"{state.unavailable}: lab tests skip")
    return lines


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash[STATE_KEY]
    tr = terminalreporter
    if state.results:
        tr.write_sep("=", "connlab results")
        for line in table.render(state.results) + table.notes(state.results):
            tr.write_line(line)
    for kept in state.kept:
        tr.write_line(f"connlab: kept lab {kept}")
    for problem in state.problems:
        tr.write_line(f"connlab: teardown problem: {problem}", yellow=True)
    for problem in state.output_problems:
        tr.write_line(f"connlab: {problem}", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE_KEY, None)
    if state is None or hasattr(session.config, "workerinput"):
        return
    if state.durations is not None:
        state.durations.store(session.config)
    if state.plots_dir:
        from ..report import plots  # matplotlib only when plots were asked for
        try:
            plots.write_all(Path(state.plots_dir), state.results)
        except OSError as exc:
            state.output_problems.append(f"--lab-plots {state.plots_dir}: not all written: {exc}")
    for flag, path, write in (("--lab-json", state.json_path, jsonfile.write),
                              ("--lab-baseline-save", state.baseline_save, baseline.save)):
        if not path:
            continue
        try:
            write(Path(path), state.run_id, state.results)
        except (OSError, JsonPathError) as exc:
            state.output_problems.append(f"{flag} {path}: not written: {exc}")
