"""Baselines, in pytest-benchmark's manner: store a run's observations, compare a later run.

``--lab-baseline-save FILE`` writes every observation with what it was measured on (kernel,
provider, a fingerprint of the profile's settings and expectations). ``--lab-compare FILE``
reads such a file (or a ``--lab-json`` file) and gives each new observation its baseline,
delta and what changed since; ``--lab-compare-fail TOL`` fails a test whose observed limit
moved beyond the tolerance: ``0``, ``5%``, or per limit ``ephemeral_ports:0``.
"""
from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import BaselineError
from ..profiles.limits import LIMITS
from ..profiles.profile import Profile
from . import jsonfile
from .observation import Observation

FORMAT = "connlab-baseline/1"
MAX_BYTES = 64 << 20


def fingerprint(profile: Profile) -> str:
    """A short hash of what a profile asks of the lab: its settings, pins and expectations."""
    body = {"settings": sorted((s.key, str(s.value)) for s in profile.settings),
            "linux": sorted((s.key, str(s.value)) for s in profile.linux),
            "expect": sorted((k, str(e.value), str(e.ended_by)) for k, e in profile.expect.items())}
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()[:12]


def context(profile: Profile) -> dict[str, str]:
    """What an observation was measured on, stored beside it."""
    return {"kernel": platform.release(), "profile_fingerprint": fingerprint(profile)}


def result_row(obs: Observation, test: str, profile: Profile | None) -> dict[str, Any]:
    """An observation as a run's results hold it: with its test and what it was measured on."""
    row = {**obs.to_json(), "test": test}
    if profile is not None:
        row["context"] = context(profile)
    return row


def keyed(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows by test, limit and the limit's occurrence in that test (a test may probe twice)."""
    seen: dict[tuple[str, str], int] = {}
    out = {}
    for row in rows:
        pair = (str(row.get("test")), str(row.get("limit")))
        seen[pair] = seen.get(pair, 0) + 1
        out[f"{pair[0]}|{pair[1]}|{seen[pair]}"] = row
    return out


def render(run_id: str, results: list[dict[str, Any]]) -> str:
    return json.dumps({"format": FORMAT, "run_id": run_id,
                       "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "results": [jsonfile.entry(r) for r in results]}, indent=2) + "\n"


def save(path: Path, run_id: str, results: list[dict[str, Any]]) -> None:
    jsonfile.write_text(path, render(run_id, results))


def _flat(entry: dict[str, Any]) -> dict[str, Any]:
    detail = entry.get("detail")
    return {**(detail if isinstance(detail, dict) else {}), **{k: v for k, v in entry.items() if k != "detail"}}


def load(path: Path) -> dict[str, dict[str, Any]]:
    """The baseline's rows by key (``keyed``); BaselineError naming the file and what is wrong."""
    if path.exists() and not path.is_file():  # a FIFO or a device would hang or never end
        raise BaselineError(f"{path}: not a regular file")
    if path.is_file() and path.stat().st_size > MAX_BYTES:
        raise BaselineError(f"{path}: {path.stat().st_size:,} bytes, more than a baseline holds ({MAX_BYTES:,})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise BaselineError(f"{path}: not a connlab baseline or --lab-json file (no 'results' list)")
    if "format" in data and data["format"] != FORMAT:
        raise BaselineError(f"{path}: format {data['format']!r}; this connlab reads {FORMAT!r}")
    rows = []
    for n, entry in enumerate(data["results"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("observed"), int) \
                or not isinstance(entry.get("test"), str) or not isinstance(entry.get("limit"), str):
            raise BaselineError(f"{path}: results[{n}] is not an observation (test, limit, observed)")
        rows.append(_flat(entry))
    return keyed(rows)


@dataclass(frozen=True)
class Bound:
    """How far a limit may move: ``value`` units, or ``value`` percent of the baseline."""

    value: float
    percent: bool

    def allows(self, old: int, new: int) -> bool:
        limit = abs(old) * self.value / 100 if self.percent else self.value
        return abs(new - old) <= limit

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.percent else f"{self.value:g}"


@dataclass(frozen=True)
class Tolerance:
    default: Bound | None = None
    per_limit: dict[str, Bound] = field(default_factory=dict)

    def for_limit(self, limit: str) -> Bound | None:
        return self.per_limit.get(limit, self.default)


def _bound(text: str, where: str) -> Bound:
    raw = text.strip()
    percent = raw.endswith("%")
    number = raw[:-1] if percent else raw
    try:
        value = float(number)
    except ValueError:
        raise BaselineError(f"{where}: {text!r} is not a number or a percentage (e.g. 0, 5%)") from None
    if value < 0 or value != value or value == float("inf"):
        raise BaselineError(f"{where}: {text!r} must be a finite number >= 0")
    return Bound(value, percent)


def parse_tolerance(texts: list[str], option: str = "--lab-compare-fail") -> Tolerance:
    """``0``, ``5%``, ``ephemeral_ports:0``, comma-separated or repeated; the last word wins."""
    default, per_limit = None, {}
    for text in texts:
        for part in (p for p in text.split(",") if p.strip()):
            if ":" in part:
                limit, _, value = part.partition(":")
                limit = limit.strip()
                if limit not in LIMITS:
                    raise BaselineError(f"{option}: {limit!r} is not a limit; known: {', '.join(sorted(LIMITS))}")
                per_limit[limit] = _bound(value, f"{option} {limit}")
            else:
                default = _bound(part, option)
    if default is None and not per_limit:
        raise BaselineError(f"{option}: empty; give a tolerance such as 0, 5% or ephemeral_ports:0")
    return Tolerance(default, per_limit)


@dataclass(frozen=True)
class Comparison:
    """One observation against its baseline."""

    old: int
    new: int
    changed: tuple[str, ...]  # what differs from the baseline's measurement (profile, kernel, provider)
    bound: Bound | None

    @property
    def delta(self) -> int:
        return self.new - self.old

    @property
    def delta_text(self) -> str:
        percent = f" ({self.delta / self.old:+.1%})" if self.old else ""
        return f"{self.delta:+d}{percent}"

    @property
    def beyond(self) -> bool:
        return self.bound is not None and not self.bound.allows(self.old, self.new)

    def to_json(self) -> dict[str, Any]:
        return {"observed": self.old, "delta": self.delta, "delta_text": self.delta_text,
                "tolerance": str(self.bound) if self.bound else None, "beyond": self.beyond,
                "changed": list(self.changed)}

    def message(self, limit: str, profile: str) -> str:
        text = (f"connlab baseline: {limit} on {profile} moved: baseline {self.old}, now {self.new}, "
                f"delta {self.delta_text}, beyond the tolerance {self.bound}")
        return text + "".join(f"\n  {c}" for c in self.changed)


def _changes(old: dict[str, Any], now: dict[str, Any]) -> tuple[str, ...]:
    out = []
    old_ctx, now_ctx = old.get("context") or {}, now.get("context") or {}
    for key, what in (("profile_fingerprint", f"profile {now.get('profile')} changed"), ("kernel", "kernel")):
        if old_ctx.get(key) and now_ctx.get(key) and old_ctx[key] != now_ctx[key]:
            out.append(f"{what} since the baseline: {old_ctx[key]} -> {now_ctx[key]}")
        elif not old_ctx.get(key):
            out.append(f"the baseline does not say which {key.replace('_', ' ')} it was measured on")
    if old.get("provider") != now.get("provider"):
        out.append(f"provider since the baseline: {old.get('provider')} -> {now.get('provider')}")
    return tuple(out)


def compare(old: dict[str, Any], now: dict[str, Any], tolerance: Tolerance | None) -> Comparison:
    bound = tolerance.for_limit(str(now["limit"])) if tolerance else None
    return Comparison(int(old["observed"]), int(now["observed"]), _changes(old, now), bound)
