"""PNG plots of an observation's evidence, where a picture says more than a number.

matplotlib is optional (the ``[report]`` extra): ``available()`` says whether it is there,
and nothing here is imported by the plugin unless plots are asked for. Figures are drawn
on matplotlib's object API with the Agg canvas, never pyplot: a user's own backend and
global state are left alone.

- held connections over time (server-side samples), for hold and the >64K test;
- the client's TIME_WAIT sockets over time, for the port churn;
- the fan-out latency distribution, for server push;
- errors by errno, wherever a probe saw errors.
"""
from __future__ import annotations

import importlib.util
import io
import re
from pathlib import Path
from typing import Any

Plot = tuple[str, bytes]  # (a file-name-safe name, PNG bytes)


def available() -> bool:
    """True when matplotlib can be imported (an installed but broken one counts as absent)."""
    if importlib.util.find_spec("matplotlib") is None:
        return False
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _png(draw: Any, title: str, xlabel: str, ylabel: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(7, 3.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    draw(axes)
    axes.set_title(title, fontsize=11)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _series(points: list[Any], title: str, ylabel: str) -> bytes:
    xs, ys = [float(p[0]) for p in points], [int(p[1]) for p in points]
    return _png(lambda ax: ax.plot(xs, ys, marker=".", linewidth=1.5), title, "seconds since the start", ylabel)


def _bars(pairs: list[tuple[str, int]], title: str, xlabel: str, ylabel: str) -> bytes:
    labels, counts = [p[0] for p in pairs], [p[1] for p in pairs]

    def draw(ax: Any) -> None:
        ax.bar(range(len(counts)), counts)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    return _png(draw, title, xlabel, ylabel)


def _errors(row: dict[str, Any]) -> dict[str, int]:
    evidence = row.get("evidence") or {}
    errors: dict[str, int] = {}
    hold = evidence.get("hold")
    for name, count in ((hold.get("errors") if isinstance(hold, dict) else None) or {}).items():
        errors[str(name)] = errors.get(str(name), 0) + int(count)
    for name in evidence.get("next_attempts") or []:
        errors[str(name)] = errors.get(str(name), 0) + 1
    if row.get("ended_by") and row["ended_by"] != "none" and not errors:
        errors[str(row["ended_by"])] = 1
    return errors


def figures(row: dict[str, Any]) -> list[Plot]:
    """The plots one observation (a row of the run's results) calls for; [] when none."""
    evidence = row.get("evidence") or {}
    what = f"{row.get('limit')} on {row.get('profile')}"
    out: list[Plot] = []
    hold = evidence.get("hold") if isinstance(evidence.get("hold"), dict) else None
    if hold and len(hold.get("samples") or []) >= 2:
        out.append(("held-over-time", _series(hold["samples"], f"{what}: held connections (server side)",
                                              "connections held")))
    samples = evidence.get("samples")
    if isinstance(samples, dict) and len(samples.get("points") or []) >= 2:
        out.append(("samples-over-time", _series(samples["points"], f"{what}: {samples.get('what', '')}",
                                                 "count")))
    histogram = evidence.get("fanout_latency_histogram_us")
    if histogram:
        pairs = [(_microseconds(int(b)), int(c)) for b, c in histogram]
        out.append(("fanout-latency", _bars(pairs, f"{what}: fan-out latency", "latency up to",
                                            "deliveries")))
    errors = _errors(row)
    if errors:
        out.append(("errors-by-errno", _bars(sorted(errors.items(), key=lambda kv: -kv[1]),
                                             f"{what}: how connects ended in error", "errno", "count")))
    return out


def _microseconds(value: int) -> str:
    return f"{value / 1000:g} ms" if value >= 1000 else f"{value} us"


def write_all(folder: Path, rows: list[dict[str, Any]]) -> list[Path]:
    """Each observation's plots as FOLDER/<test>.<limit>.<n>.<plot>.png (written atomically, never
    through a link); the paths written."""
    from .baseline import keyed
    from .jsonfile import write_bytes
    written = []
    for key, row in keyed(rows).items():
        n = int(key.rsplit("|", 1)[1])
        for name, png in figures(row):
            path = folder / f"{file_stem(str(row['test']), str(row['limit']), n)}.{name}.png"
            write_bytes(path, png)
            written.append(path)
    return written


def file_stem(test: str, limit: str, n: int) -> str:
    """A file name for a test's plot: its node id made safe, never a path."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", test).strip("._")
    return f"{stem[:120] or 'test'}.{limit}.{n}"
