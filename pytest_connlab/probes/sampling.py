"""A count sampled while a probe waits: the live progress line and the samples of a plot.

    with Sampler(lab, "ephemeral_ports: {:,} ports in TIME_WAIT", read) as sampler:
        result = client.agent_once("churn", ...)
    evidence["samples"] = sampler.samples

The thread reads every ``every_s`` seconds, for at most ``bound_s``, and stops with the
block; a read that fails ends the sampling (the probe's own result still stands).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from ..errors import ConnlabError

if TYPE_CHECKING:
    from ..lab.lab import Lab


class Sampler:
    """Samples ``read()`` on a thread while the block runs; ``samples`` are (seconds, value)."""

    def __init__(self, lab: Lab, label: str, read: Callable[[], int | None], every_s: float = 1.0,
                 bound_s: float = 900.0) -> None:
        self.lab = lab
        self.label = label
        self.read = read
        self.every_s = every_s
        self.bound_s = bound_s
        self.samples: list[tuple[float, int]] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="connlab-sampler", daemon=True)
        self.start = 0.0

    def _run(self) -> None:
        while not self.stopped.wait(self.every_s):
            elapsed = time.monotonic() - self.start
            if elapsed > self.bound_s:
                return
            try:
                value = self.read()
            except ConnlabError:
                return
            if value is None:
                continue
            self.samples.append((round(elapsed, 2), int(value)))
            self.lab.progress.update(f"{self.label.format(value)} after {elapsed:.0f} s")

    def __enter__(self) -> Sampler:
        self.start = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)
