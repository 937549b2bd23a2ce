"""Longest lab tests first under pytest-xdist, by the durations of the last run.

A lab test's time is mostly its own (a 60 s TIME_WAIT watch, keepalive probes, a ramp), so
with ``-n N`` the run ends when the last long test that started late ends. The controller
keeps each lab test's wall time (setup, call and teardown) in pytest's cache
(``connlab/durations``); the next parallel run hands its workers the lab tests longest
first (tests with no recorded time first of all: they may be long), the rest in
collection order after them. Every worker reads the same cache file, so all collect the
same order, as xdist requires. A run without the cache plugin (``-p no:cacheprovider``)
or without a previous run keeps the collection order.
"""
from __future__ import annotations

import math
from typing import Any

import pytest

CACHE_KEY = "connlab/durations"
KEPT = 5000  # tests remembered at most (the longest)


def _cache(config: pytest.Config) -> Any:
    return getattr(config, "cache", None)


def recorded(config: pytest.Config) -> dict[str, float]:
    """Lab tests' last wall times by node id (empty without the cache or a previous run)."""
    cache = _cache(config)
    if cache is None:
        return {}
    value = cache.get(CACHE_KEY, {})
    if not isinstance(value, dict):
        return {}
    return {str(k): float(v) for k, v in value.items() if isinstance(v, (int, float)) and v >= 0}


def longest_first(config: pytest.Config, items: list[pytest.Item], lab_items: list[pytest.Item]) -> None:
    """Reorder ``items`` in place: lab tests longest first (by ``recorded``), then every other test."""
    times = recorded(config)
    if not times or not lab_items:
        return
    labs = set(map(id, lab_items))
    ordered = sorted(lab_items, key=lambda item: -times.get(item.nodeid, math.inf))
    items[:] = ordered + [item for item in items if id(item) not in labs]


class DurationRecorder:
    """On the controller (which, under xdist, collects nothing itself): adds up each test's phases
    as the reports come in and stores them in the cache at the end; only lab tests are reordered."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + float(report.duration)

    def store(self, config: pytest.Config) -> None:
        cache = _cache(config)
        if cache is None or not self.seconds:
            return
        merged = {**recorded(config), **{k: round(v, 2) for k, v in self.seconds.items()}}
        kept = sorted(merged.items(), key=lambda kv: -kv[1])[:KEPT]
        cache.set(CACHE_KEY, dict(kept))
