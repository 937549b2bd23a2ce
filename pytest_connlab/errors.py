"""Every exception the plugin raises on purpose, in one place; each message names what is wrong.

The agent (stdlib only, run on lab hosts) has none of its own: it reports errors as events.
"""
from __future__ import annotations


class ConnlabError(Exception):
    """Base of the plugin's own errors: the message is meant for the user, not a traceback."""


# input: profiles, inventories, options
class YamlInputError(ConnlabError):
    """The file cannot be used; ``where`` is "line N" (or "file") and ``message`` says why."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


class ProfileError(ConnlabError):
    """A profile file that cannot be used; the message names the file and the key."""


class SysctlKeyError(ConnlabError, ValueError):
    """A key outside the grammar, outside the allowed subtree, or host-wide; says which and why."""


class InventoryError(ConnlabError):
    """The inventory is unreadable or wrong; the message names the file and key."""


class JsonPathError(ConnlabError):
    """--lab-json names a path that cannot be written; the message says why."""


class BaselineError(ConnlabError):
    """A baseline file (--lab-compare) or tolerance (--lab-compare-fail) that cannot be used."""


# the lab: addresses, providers, hosts, the run folder
class AddressSpaceExhausted(ConnlabError):
    """No free subnet of the requested size is left in this worker's slice."""


class ProviderUnavailable(ConnlabError):
    """The provider cannot run here (no root, no daemon); the message is the skip reason."""


class ImageBuildError(ConnlabError):
    """The build could not run or failed; the message says which step."""


class VagrantError(ConnlabError, RuntimeError):
    """A vagrant command failed; the message has its output's tail."""


class LabSetupError(ConnlabError):
    """A setting could not be applied; the message names the host, key and profile."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class AgentError(ConnlabError):
    """The agent died, timed out, or printed something that is not an event."""


class ReaperError(ConnlabError):
    """The lock folder or a kept lab cannot be used as asked; the message says why."""


# real Windows hosts (connlab windows apply)
class WindowsSettingError(ConnlabError):
    """A command on the Windows host failed; the message names it and what it printed."""
