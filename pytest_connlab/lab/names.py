"""Lab names, built and parsed in one place: ``connlab-<run>-<worker>-<n>``.

Everything a lab makes is named after it: ``<lab>-<host>`` and ``<lab>-<segment>``
namespaces, containers and networks, vagrant work folders named ``<lab>``. The
sweep and ``connlab down`` find a resource's lab (and so its run) by this grammar
alone, never by a broad pattern.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

PREFIX = "connlab"
RUN_ID = re.compile(r"^[0-9a-f]{8}$")
WORKER = re.compile(r"^[a-z0-9]{1,16}$")
LAB_NAME = re.compile(r"^connlab-([0-9a-f]{8})-([a-z0-9]{1,16})-([0-9]{1,9})$")
RESOURCE_SUFFIX = re.compile(r"^[a-z0-9]{1,32}$")  # a host or segment name after the lab name


def new_run_id() -> str:
    """Eight hex digits: short enough for names, random enough not to collide."""
    return secrets.token_hex(4)


@dataclass(frozen=True, order=True)
class LabName:
    """The name of one lab: the run that made it, the pytest process (``main`` or an xdist
    worker) and its number in that process."""

    run: str
    worker: str
    seq: int

    def __post_init__(self) -> None:
        if not (RUN_ID.match(self.run) and WORKER.match(self.worker) and 0 < self.seq < 10**9):
            raise ValueError(f"not a lab name: run {self.run!r}, worker {self.worker!r}, number {self.seq!r}")

    def __str__(self) -> str:
        return f"{PREFIX}-{self.run}-{self.worker}-{self.seq}"

    @classmethod
    def parse(cls, text: str) -> LabName | None:
        """The lab called ``text``, or None when ``text`` is not a lab name."""
        m = LAB_NAME.match(text)
        return cls(m.group(1), m.group(2), int(m.group(3))) if m and int(m.group(3)) > 0 else None

    @classmethod
    def of_resource(cls, name: str) -> LabName | None:
        """The lab a resource (``<lab>-<host or segment>``) belongs to, or None."""
        lab, _, suffix = name.rpartition("-")
        return cls.parse(lab) if RESOURCE_SUFFIX.match(suffix) else None

    def resource(self, suffix: str) -> str:
        """The name of this lab's host or segment ``suffix``."""
        if not RESOURCE_SUFFIX.match(suffix):
            raise ValueError(f"{suffix!r} is not a host or segment name")
        return f"{self}-{suffix}"

    def owns(self, name: str) -> bool:
        """True when the resource ``name`` is this lab's."""
        return LabName.of_resource(name) == self
