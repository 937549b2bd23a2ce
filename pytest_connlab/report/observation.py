"""What a probe saw: the limit it measured, how it ended, and the evidence."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..profiles.errnos import winsock_for

NO_ERROR = "none"  # the probe reached its own bound without any error
# What a row says happened: the lab reproduced the number; it measured another; it cannot show the
# documented value at all (fidelity none); or the host distorted the figure (see lab.pressure).
VERDICTS = ("ok", "failed", "not emulable", "disturbed")
NOTE_KEYS = ("how", "time_wait_race", "parity_note")  # evidence a person should read on failure


@dataclass
class Observation:
    """One measured limit. ``expected`` None means "no limit within the probe's bound"."""

    limit: str
    profile: str
    provider: str
    observed: int
    expected: int | None
    ended_by: str
    expected_ended_by: tuple[str, ...] = ()
    documented: int | None = None
    documented_ended_by: str | None = None
    expectation_from: str = ""
    fidelity: str = "exact"
    fidelity_reason: str = ""
    duration_s: float = 0.0
    bound: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    states: dict[str, Any] = field(default_factory=dict)
    conditions: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    test: str = ""
    disturbed: str = ""  # why the host distorted this figure ("": it did not)

    @property
    def windows_error(self) -> str | None:
        return winsock_for(self.ended_by)

    @property
    def value_matches(self) -> bool:
        if self.expected is None:  # no figure predicted: no error within the bound, or the predicted ending
            if self.expected_ended_by and self.ended_by != NO_ERROR:
                return self.ending_matches
            return self.ended_by == NO_ERROR and self.observed >= self.bound
        return self.observed == self.expected

    @property
    def ending_matches(self) -> bool:
        return not self.expected_ended_by or self.ended_by in self.expected_ended_by

    @property
    def verdict(self) -> str:
        """``disturbed`` when the host distorted the figure; ``not emulable`` when the lab cannot show
        the documented value (fidelity none); else ``ok`` when the lab reproduced it, ``failed`` not."""
        if self.disturbed:
            return "disturbed"
        if self.fidelity == "none":
            return "not emulable"
        return "ok" if self.value_matches and self.ending_matches else "failed"

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def how_it_ended(self) -> str:
        """``EADDRNOTAVAIL (WSAENOBUFS 10055)``, or that no error came before the bound."""
        if self.ended_by == NO_ERROR:
            return f"no error within {self.bound}" if self.bound else "read from the kernel"
        wsa = self.windows_error
        return f"{self.ended_by} ({wsa})" if wsa else self.ended_by

    def expected_text(self) -> str:
        if self.expected is None:
            return f"by {'/'.join(self.expected_ended_by)}" if self.expected_ended_by else "no limit"
        return str(self.expected)

    def explain(self) -> str:
        """A few lines for an assertion message: what was expected, what the kernel did, and why."""
        lines = [f"{self.limit} on profile {self.profile} ({self.provider}): observed "
                 f"{self.observed}, expected {self.expected_text()} "
                 f"[{self.expectation_from}]; ended by {self.how_it_ended()}"]
        if self.expected_ended_by and not self.ending_matches:
            lines.append(f"  expected it to end by {' or '.join(self.expected_ended_by)}")
        if self.documented is not None or self.documented_ended_by:
            lines.append(f"  documented: {self.documented} then {self.documented_ended_by or '?'}")
        lines.append(f"  fidelity {self.fidelity}: {self.fidelity_reason}")
        if self.disturbed:
            lines.append(f"  disturbed by the host: {self.disturbed}")
        if self.counters:
            lines.append("  counters: " + ", ".join(f"{k} +{v}" for k, v in sorted(self.counters.items())))
        for key in NOTE_KEYS:
            if self.evidence.get(key):
                lines.append(f"  note: {self.evidence[key]}")
        if self.conditions:
            lines.append("  conditions: " + ", ".join(f"{k}={v}" for k, v in self.conditions.items()))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A plain dict that survives xdist and JSON; derived fields included."""
        data = asdict(self)
        data["expected_ended_by"] = list(self.expected_ended_by)
        data.update(verdict=self.verdict, windows_error=self.windows_error,
                    how_it_ended=self.how_it_ended())
        return data


def counter_delta(before: dict[str, int], after: dict[str, int], keep: tuple[str, ...] = (),
                  prefix: str = "Tcp") -> dict[str, int]:
    """TCP counters (Tcp*, TcpExt*) that changed, and any named in ``keep``, as after - before."""
    out = {}
    for key, value in after.items():
        delta = value - before.get(key, 0)
        if (delta and key.startswith(prefix)) or key in keep:
            out[key] = delta
    return out
