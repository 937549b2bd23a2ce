"""The markers ``topology``, ``settings`` and ``limit``: parsed and validated once, at collection.

``parse(item, profile)`` checks all three and keeps the result in the item's stash
(``LAB_REQUEST_KEY``); the fixtures read it from there (``request_of``).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import pytest

from ..errors import ProfileError
from ..lab.topology import TopologyRequest
from ..profiles.limits import LIMITS
from ..profiles.profile import Profile

MARKERS = {
    "topology": "topology(clients=1, ips_per_client=1, router=False, memory=None, client_memory=None, vcpus=1, "
                "connections=None): the lab hosts this test needs (memory and vcpus: on providers whose hosts "
                "have their own, vm; connections: a scale lab's planned count, each namespace then gets a TCP "
                "hash of its own sized for it)",
    "settings": "settings(sysctl={...}, windows={...}, emulated={...}, rlimit={'nofile': N}): "
                "settings applied on top of the lab profile (windows and emulated both take "
                "emulated settings, e.g. Tcpip.MaxUserPort)",
    "limit": "limit(name): the documented limit this test reproduces",
}
SETTINGS_KINDS = ("sysctl", "windows", "emulated", "rlimit")


@dataclass(frozen=True)
class LabRequest:
    """What one test asks of its lab, from its markers: hosts, profile (settings applied), limit."""

    topology: TopologyRequest
    profile: Profile
    limit: str | None


LAB_REQUEST_KEY = pytest.StashKey[LabRequest]()


def parse(item: pytest.Item, profile: Profile) -> LabRequest:
    """Validate the item's markers against ``profile`` and keep the result in its stash."""
    request = LabRequest(topology_of(item), profile_for(item, profile), limit_of(item))
    item.stash[LAB_REQUEST_KEY] = request
    return request


def request_of(item: pytest.Item, profile: Profile) -> LabRequest:
    """The request ``parse`` kept at collection (parsed now for an item collected otherwise)."""
    kept = item.stash.get(LAB_REQUEST_KEY, None)
    return kept if kept is not None else parse(item, profile)


def _only_kwargs(item: pytest.Item, name: str) -> dict[str, Any]:
    marker = item.get_closest_marker(name)
    if marker is None:
        return {}
    if marker.args:
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.{name} takes keyword arguments only")
    return dict(marker.kwargs)


def topology_of(item: pytest.Item) -> TopologyRequest:
    """The test's TopologyRequest; a UsageError names the test and the bad argument."""
    kwargs = _only_kwargs(item, "topology")
    known = tuple(f.name for f in fields(TopologyRequest))
    unknown = set(kwargs) - set(known)
    if unknown:
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.topology: unknown argument "
                                f"{', '.join(sorted(unknown))}; known: {', '.join(known)}")
    try:
        return TopologyRequest(**kwargs)
    except ValueError as exc:
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.topology: {exc}") from None


def profile_for(item: pytest.Item, profile: Profile) -> Profile:
    """``profile`` with the test's ``settings`` marker applied."""
    kwargs = _only_kwargs(item, "settings")
    unknown = set(kwargs) - set(SETTINGS_KINDS)
    if unknown:
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.settings: unknown argument "
                                f"{', '.join(sorted(unknown))}; known: {', '.join(SETTINGS_KINDS)}")
    for kind in SETTINGS_KINDS:
        if not isinstance(kwargs.get(kind, {}), dict):
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.settings: {kind} must be a dict")
    if not kwargs:
        return profile
    try:
        rlimits = {f"rlimit.{k}": v for k, v in kwargs.get("rlimit", {}).items()}
        return profile.with_overrides({**kwargs.get("sysctl", {}), **rlimits},
                                      {**kwargs.get("windows", {}), **kwargs.get("emulated", {})},
                                      origin=f"{item.nodeid} @pytest.mark.settings")
    except ProfileError as exc:
        raise pytest.UsageError(str(exc)) from None


def limit_of(item: pytest.Item) -> str | None:
    """The limit named by the test's ``limit`` marker (validated)."""
    marker = item.get_closest_marker("limit")
    if marker is None:
        return None
    if len(marker.args) != 1 or marker.args[0] not in LIMITS:
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.limit takes one limit name; "
                                f"known: {', '.join(sorted(LIMITS))}")
    return str(marker.args[0])
