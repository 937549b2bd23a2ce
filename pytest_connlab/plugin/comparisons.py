"""--lab-compare at the end of each lab test: each observation against its baseline row.

A limit that moved beyond --lab-compare-fail fails the test (old, new, delta and what
changed since the baseline in the message); every compared row carries its baseline, so
the summary table and the JSON show them.
"""
from __future__ import annotations

from typing import Any

import pytest

from ..report.baseline import Tolerance, compare, keyed

SECTION = "connlab baseline"


def apply(report: pytest.TestReport, rows: list[dict[str, Any]], base: dict[str, dict[str, Any]],
          tolerance: Tolerance | None) -> None:
    """Compare ``rows`` (one test's observations) with ``base``; fail ``report`` for a moved limit."""
    moved = []
    for key, row in keyed(rows).items():
        old = base.get(key)
        if old is None:
            row["baseline"] = None  # new since the baseline: nothing to compare with
            continue
        result = compare(old, row, tolerance)
        row["baseline"] = result.to_json()
        if result.beyond:
            moved.append(result.message(str(row["limit"]), str(row["profile"])))
    if not moved:
        return
    text = "\n".join(moved)
    if report.passed:
        report.outcome = "failed"
        report.longrepr = text
    else:
        report.sections.append((SECTION, text))
