"""Progress of a long probe: one live line on a terminal, nothing anywhere else.

A probe calls ``lab.progress.update(text)`` as often as it likes; ``done()`` ends the
line. ``Progress`` itself is silent (a lab outside a terminal); the plugin's
``TerminalProgress`` rewrites one line through pytest's terminal reporter, only when
it writes to a terminal, so captured runs and CI logs get nothing extra.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any


class Progress:
    """Progress that goes nowhere."""

    def update(self, text: str) -> None:
        """Show ``text`` as the probe's current state."""

    def done(self) -> None:
        """The probe has finished: end its line."""


class TerminalProgress(Progress):
    """One rewritten line on pytest's terminal, past output capturing; at most 4 updates a second."""

    MIN_GAP_S = 0.25

    def __init__(self, reporter: Any, capture: Any) -> None:
        self.reporter = reporter
        self.capture = capture
        self.live = False
        self.last = 0.0
        self.lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.reporter is not None and bool(getattr(self.reporter, "isatty", False))

    def _write(self, action: Any) -> None:
        if self.capture is not None:
            with self.capture.global_and_fixture_disabled():
                action()
        else:
            action()

    def update(self, text: str) -> None:
        if not self.enabled:
            return
        with self.lock:
            now = time.monotonic()
            if self.live and now - self.last < self.MIN_GAP_S:
                return
            self.last = now

            def show() -> None:
                if not self.live:
                    self.reporter.write("\n")
                self.reporter.rewrite(f"connlab: {text}", erase=True)
            self._write(show)
            self.live = True

    def done(self) -> None:
        with self.lock:
            if self.live:
                self._write(lambda: self.reporter.write("\n"))
                self.live = False


class StderrProgress(Progress):
    """For scripts: one line per update on stderr when it is a terminal, else every 5 s."""

    def __init__(self) -> None:
        self.last = 0.0

    def update(self, text: str) -> None:
        now = time.monotonic()
        if sys.stderr.isatty():
            sys.stderr.write(f"\r\x1b[2Kconnlab: {text}")
            sys.stderr.flush()
        elif now - self.last >= 5:
            print(f"connlab: {text}", file=sys.stderr, flush=True)
            self.last = now

    def done(self) -> None:
        if sys.stderr.isatty():
            sys.stderr.write("\n")
