"""A user's own program (a server under test) running inside a lab host."""
from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from typing import Any, Protocol


class Stoppable(Protocol):
    """Anything the lab must stop at teardown."""

    def stop(self, timeout: float = 10.0) -> None: ...


class Program:
    """A process started in a host; output goes to a file (never a pipe that could fill up)."""

    def __init__(self, spawn: Callable[..., subprocess.Popen[bytes]], argv: list[str]) -> None:
        self._log = tempfile.TemporaryFile()
        self.proc = spawn(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def output(self, limit: int = 4000) -> str:
        """The last ``limit`` characters the program printed."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-limit:]

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` s."""
        if self.running:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def result(self) -> dict[str, Any]:
        """What a Target reports when this program stops."""
        return {"returncode": self.proc.returncode, "output_tail": self.output(1000)}
