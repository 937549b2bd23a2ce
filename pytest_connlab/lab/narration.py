"""The story of a lab test, told as it happens: lab up, settings applied, load, observation.

``Narrator`` is silent; the plugin swaps in its Allure narrator when allure-pytest writes
results (``--alluredir``), so nothing here imports Allure. ``tables`` turns a lab and an
observation into the rows the narrators (and ``connlab``'s own output) show.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from ..profiles.emulation import rule_for

if TYPE_CHECKING:
    from ..report.observation import Observation
    from .lab import Lab


class Narrator:
    """Where a lab test's story goes; nowhere by default."""

    def step(self, title: str) -> AbstractContextManager[Any]:
        return nullcontext()

    def lab_up(self, lab: Lab) -> None:
        """The lab is up: its hosts and the settings applied."""

    def observed(self, lab: Lab, obs: Observation) -> None:
        """A probe returned an observation."""


def host_rows(lab: Lab) -> list[list[str]]:
    """host, role, interface, segment, addresses: one row per NIC."""
    rows = [["host", "role", "interface", "segment", "addresses"]]
    for host in lab.hosts.values():
        for nic in host.host.spec.nics:
            rows.append([host.name, host.role, nic.name, nic.segment, " ".join(nic.addresses)])
    return rows


def setting_rows(lab: Lab) -> list[list[str]]:
    """setting, Linux knob, value, fidelity, reason: the profile's settings and pins as applied."""
    rows = [["setting", "linux knob", "value", "fidelity", "reason"]]
    for s in lab.profile.settings:
        rule = rule_for(s.key)
        if rule is None:
            rows.append([s.key, s.key, str(s.value), "exact", f"set as is ({s.source})"])
        else:
            rows.append([s.key, rule.linux.replace("<value>", str(s.value)), str(s.value), rule.fidelity,
                         rule.reason.replace("<value>", str(s.value))])
    for pin in lab.profile.linux:
        rows.append([pin.key, pin.key, str(pin.value), "exact", f"pinned: {pin.source}"])
    for key, value in lab.conditions.items():
        rows.append([key, key, value, "exact", "a measurement condition of the probe"])
    return rows


def counter_rows(obs: Observation) -> list[list[str]]:
    return [["counter", "delta"], *([k, str(v)] for k, v in sorted(obs.counters.items()))]


def state_rows(obs: Observation) -> list[list[str]]:
    """where, state, sockets: the socket-state snapshot of the observation."""
    rows = [["where", "state", "sockets"]]
    for where, states in sorted(obs.states.items()):
        if isinstance(states, dict):
            rows.extend([str(where), str(state), str(count)] for state, count in sorted(states.items()))
    return rows


def csv_text(rows: list[list[str]]) -> str:
    import csv
    import io
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()
