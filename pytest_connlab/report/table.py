"""The terminal summary table of observations."""
from __future__ import annotations

from typing import Any

COLUMNS = (("limit", "limit", "<"), ("profile", "profile", "<"), ("expected", "expected", ">"),
           ("observed", "observed", ">"), ("how it ended", "how_it_ended", "<"),
           ("fidelity", "fidelity", "<"), ("verdict", "verdict", "<"))


def _cell(result: dict[str, Any], key: str) -> str:
    value = result.get(key)
    if key == "expected" and value is None:
        return "no limit"
    return "" if value is None else str(value)


def render(results: list[dict[str, Any]]) -> list[str]:
    """Aligned rows, one per observation, sorted by limit then profile."""
    rows = [[_cell(r, key) for _, key, _ in COLUMNS]
            for r in sorted(results, key=lambda r: (r["limit"], r["profile"], r.get("test", "")))]
    widths = [max(len(title), *(len(row[i]) for row in rows)) for i, (title, _, _) in enumerate(COLUMNS)]

    def line(cells: list[str]) -> str:
        return " " + "  ".join(f"{c:{align}{w}}" for c, w, (_, _, align) in zip(cells, widths, COLUMNS)).rstrip()

    return [line([title for title, _, _ in COLUMNS]), *(line(row) for row in rows)]


def notes(results: list[dict[str, Any]]) -> list[str]:
    """One line per profile and limit whose emulation is not exact, and per differing row."""
    seen: set[tuple[str, str]] = set()
    out = []
    for r in results:
        key = (r["profile"], r["limit"])
        if r["fidelity"] != "exact" and key not in seen:
            seen.add(key)
            documented = f" Documented: {r['documented']} then {r['documented_ended_by']}." \
                if r.get("documented_ended_by") else ""
            out.append(f" {r['fidelity']}: {r['profile']} {r['limit']}: {r['fidelity_reason']}{documented}")
    for r in results:
        if r["verdict"] == "disturbed":
            out.append(f" disturbed: {r['test']}: {r.get('disturbed', '')}")
        elif r["verdict"] != "ok":
            out.append(f" {r['verdict']}: {r['test']}: observed {r['observed']}, expected "
                       f"{_cell(r, 'expected')} ({r['expectation_from']})")
    return out
