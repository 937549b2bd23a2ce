"""The markers ``topology``, ``settings`` and ``limit``: parsed and validated at collection."""
from __future__ import annotations

from typing import Any

import pytest

from ..errors import ProfileError
from ..lab.topology import TopologyRequest
from ..profiles.limits import LIMITS
from ..profiles.profile import Profile

MARKERS = {
    "topology": "topology(clients=1, ips_per_client=1, router=False): the lab hosts this test needs",
    "settings": "settings(sysctl={...}, windows={...}, emulated={...}, rlimit={'nofile': N}): "
                "settings applied on top of the lab profile (windows and emulated both take "
                "emulated settings, e.g. Tcpip.MaxUserPort)",
    "limit": "limit(name): the documented limit this test reproduces",
}
SETTINGS_KINDS = ("sysctl", "windows", "emulated", "rlimit")


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
    unknown = set(kwargs) - {"clients", "ips_per_client", "router"}
    if unknown:
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.topology: unknown argument "
                                f"{', '.join(sorted(unknown))}; known: clients, ips_per_client, router")
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
