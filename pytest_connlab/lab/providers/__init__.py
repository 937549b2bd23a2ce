"""Providers realise a topology as hosts: netns (default), docker, ssh, vagrant, vm.

A provider is one module here with a class that meets ``base.Provider`` (make hosts,
run commands, destroy, sweep what dead runs left, remove a kept lab) and one entry
in ``_MAKERS``; nothing else in the plugin names providers.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...errors import ProviderUnavailable
from .base import Provider
from .image import DEFAULT_IMAGE


@dataclass(frozen=True)
class ProviderOptions:
    """What the providers other than netns need from the command line or ini file."""

    docker_image: str = DEFAULT_IMAGE
    inventory: Path | None = None  # the ssh provider's hosts (YAML)
    vagrant_dir: Path | None = None  # the folder holding the Vagrantfile
    vagrant_provider: str = "docker"  # the provider vagrant makes the machines with
    vm_kernel: str = ""  # the vm provider's guest kernel (a linux-image-* package); empty: the newest image


def _netns(options: ProviderOptions) -> Provider:
    from .netns import NetnsProvider
    return NetnsProvider()


def _docker(options: ProviderOptions) -> Provider:
    from .docker import DockerProvider
    return DockerProvider(options.docker_image)


def _ssh(options: ProviderOptions) -> Provider:
    from .ssh import SshProvider
    return SshProvider(options.inventory)


def _vagrant(options: ProviderOptions) -> Provider:
    from .vagrant import VagrantProvider
    return VagrantProvider(options.vagrant_dir, options.vagrant_provider, options.docker_image)


def _vm(options: ProviderOptions) -> Provider:
    from .vm import VmProvider
    return VmProvider(options.vm_kernel)


_MAKERS: dict[str, Callable[[ProviderOptions], Provider]] = {
    "netns": _netns, "docker": _docker, "ssh": _ssh, "vagrant": _vagrant, "vm": _vm}
PROVIDERS = tuple(_MAKERS)


def get_provider(name: str, options: ProviderOptions | None = None) -> Provider:
    """The provider called ``name``; imports its dependencies on first use."""
    if name not in _MAKERS:
        raise ValueError(f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}")
    return _MAKERS[name](options or ProviderOptions())


def every_provider(options: ProviderOptions | None = None) -> list[Provider]:
    """One of each provider whose module imports here, for the sweep and `connlab down` (a
    provider whose library is not installed can have made nothing on this machine)."""
    found = []
    for make in _MAKERS.values():
        try:
            found.append(make(options or ProviderOptions()))
        except ImportError:
            continue
    return found


__all__ = ["PROVIDERS", "Provider", "ProviderOptions", "ProviderUnavailable", "every_provider", "get_provider"]
