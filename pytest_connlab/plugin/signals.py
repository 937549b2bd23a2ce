"""Ctrl-C and SIGTERM always stop the run, and the labs are torn down.

SIGTERM is turned into KeyboardInterrupt in pytest's own process (a forked child dies
as by default). A KeyboardInterrupt that Python raises inside an at-fork hook (for
instance logging's ``_releaseLock``, which runs in the parent after every fork that has
a preexec_fn) is not propagated: Python reports it as "unraisable" and drops it, and the
run went on. :class:`InterruptRedelivery` sees such a drop and raises SIGINT again, so
the interrupt arrives at the next point where it can propagate.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

REDELIVERY_DELAY_S = 0.01


class TerminateAsInterrupt:
    """SIGTERM handler: in pytest's own process, raise KeyboardInterrupt so labs are torn down
    as on Ctrl-C. A forked child (a library's helper, or a fork before exec) inherits
    the handler; there it must die as by default, never unwind into a copy of pytest."""

    def __init__(self) -> None:
        self.pid = os.getpid()

    def __call__(self, signum: int, frame: Any) -> None:
        if os.getpid() != self.pid:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            os._exit(128 + signum)
        raise KeyboardInterrupt(f"signal {signum}")


class InterruptRedelivery:
    """A ``sys.unraisablehook`` that re-raises SIGINT when a KeyboardInterrupt was dropped as
    unraisable in this process; every other unraisable goes to the hook it wraps."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.previous: Any = None
        self.redelivered = 0

    def install(self) -> InterruptRedelivery:
        self.previous = sys.unraisablehook
        sys.unraisablehook = self
        return self

    def uninstall(self) -> None:
        if sys.unraisablehook is self:
            sys.unraisablehook = self.previous

    def __call__(self, unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and os.getpid() == self.pid:
            self.redelivered += 1
            try:
                self._send_later()
            except KeyboardInterrupt:  # the signal came again while in here: it too is sent later
                self._send_later()
            return
        if self.previous is not None:
            self.previous(unraisable)

    def _send_later(self) -> None:
        """SIGINT from a helper thread, a moment after this hook has returned: raised here (by
        raise_signal or os.kill, which run the handler at once) it would be dropped again."""
        def send() -> None:
            time.sleep(REDELIVERY_DELAY_S)
            os.kill(self.pid, signal.SIGINT)
        threading.Thread(target=send, name="connlab-sigint", daemon=True).start()
