"""Providers realise a topology as hosts: netns (default), docker, ssh, vagrant."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import ProviderUnavailable
from .base import Provider
from .image import DEFAULT_IMAGE

PROVIDERS = ("netns", "docker", "ssh", "vagrant")


@dataclass(frozen=True)
class ProviderOptions:
    """What the providers other than netns need from the command line or ini file."""

    docker_image: str = DEFAULT_IMAGE
    inventory: Path | None = None  # the ssh provider's hosts (YAML)
    vagrant_dir: Path | None = None  # the folder holding the Vagrantfile
    vagrant_provider: str = "docker"  # the provider vagrant makes the machines with


def get_provider(name: str, options: ProviderOptions | None = None) -> Provider:
    """The provider called ``name``; imports its dependencies on first use."""
    options = options or ProviderOptions()
    if name == "netns":
        from .netns import NetnsProvider
        return NetnsProvider()
    if name == "docker":
        from .docker import DockerProvider
        return DockerProvider(options.docker_image)
    if name == "ssh":
        from .ssh import SshProvider
        return SshProvider(options.inventory)
    if name == "vagrant":
        from .vagrant import VagrantProvider
        return VagrantProvider(options.vagrant_dir, options.vagrant_provider, options.docker_image)
    raise ValueError(f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}")


__all__ = ["PROVIDERS", "Provider", "ProviderOptions", "ProviderUnavailable", "get_provider"]
