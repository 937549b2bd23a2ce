"""Providers realise a topology as hosts: netns (default), later docker, ssh, vagrant."""
from __future__ import annotations

from .base import Provider, ProviderUnavailable

PROVIDERS = ("netns",)


def get_provider(name: str) -> Provider:
    """The provider called ``name``; imports its dependencies on first use."""
    if name == "netns":
        from .netns import NetnsProvider
        return NetnsProvider()
    raise ValueError(f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}")


__all__ = ["PROVIDERS", "Provider", "ProviderUnavailable", "get_provider"]
