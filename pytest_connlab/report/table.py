"""The terminal summary table of observations."""
from __future__ import annotations

from typing import Any

COLUMNS = (("limit", "limit", "<"), ("profile", "profile", "<"), ("expected", "expected", ">"),
           ("observed", "observed", ">"), ("how it ended", "how_it_ended", "<"),
           ("fidelity", "fidelity", "<"), ("verdict", "verdict", "<"))


BASELINE_COLUMNS = (("baseline", "baseline.observed", ">"), ("delta", "baseline.delta_text", ">"))


def _cell(result: dict[str, Any], key: str) -> str:
    if key.startswith("baseline."):
        compared = result.get("baseline")
        if "baseline" in result and compared is None:
            return "new" if key == "baseline.observed" else ""
        value = compared.get(key.split(".", 1)[1]) if isinstance(compared, dict) else None
        if key == "baseline.delta_text" and isinstance(compared, dict) and compared.get("beyond"):
            return f"{value} !"
        return "" if value is None else str(value)
    value = result.get(key)
    if key == "expected" and value is None:
        return "no limit"
    return "" if value is None else str(value)


def render(results: list[dict[str, Any]]) -> list[str]:
    """Aligned rows, one per observation, sorted by limit then profile; with baseline and delta
    columns when the run was compared with a baseline (``!``: beyond the tolerance)."""
    columns: tuple[tuple[str, str, str], ...] = COLUMNS
    if any("baseline" in r for r in results):
        columns = COLUMNS[:4] + BASELINE_COLUMNS + COLUMNS[4:]
    rows = [[_cell(r, key) for _, key, _ in columns]
            for r in sorted(results, key=lambda r: (r["limit"], r["profile"], r.get("test", "")))]
    widths = [max(len(title), *(len(row[i]) for row in rows)) for i, (title, _, _) in enumerate(columns)]

    def line(cells: list[str]) -> str:
        return " " + "  ".join(f"{c:{align}{w}}" for c, w, (_, _, align) in zip(cells, widths, columns)).rstrip()

    return [line([title for title, _, _ in columns]), *(line(row) for row in rows)]


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
    changes = sorted({c for r in results if isinstance(r.get("baseline"), dict) for c in r["baseline"]["changed"]})
    out.extend(f" since the baseline: {c}" for c in changes)
    for r in results:
        compared = r.get("baseline")
        if isinstance(compared, dict) and compared.get("beyond"):
            out.append(f" moved: {r['test']}: baseline {compared['observed']}, now {r['observed']}, "
                       f"delta {compared['delta_text']} (tolerance {compared['tolerance']})")
    for r in results:
        if r["verdict"] == "disturbed":
            out.append(f" disturbed: {r['test']}: {r.get('disturbed', '')}")
        elif r["verdict"] != "ok":
            out.append(f" {r['verdict']}: {r['test']}: observed {r['observed']}, expected "
                       f"{_cell(r, 'expected')} ({r['expectation_from']})")
    return out
