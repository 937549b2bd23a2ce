"""A running agent: JSON-line events with timeouts, release, and a certain end."""
from __future__ import annotations

import json
import os
import selectors
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any, Literal, overload

from ...agent import proto
from ...errors import AgentError


class AgentProcess:
    """One agent process on a lab host; stdout is read as JSON lines, stderr goes to a file."""

    def __init__(self, spawn: Callable[..., subprocess.Popen[bytes]], argv: list[str],
                 label: str) -> None:
        self.label = label
        self._stderr = tempfile.TemporaryFile()
        self.proc = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        self._buffer = b""
        self._sel = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)

    def stderr_tail(self, limit: int = 2000) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-limit:]

    def _fail(self, why: str) -> AgentError:
        return AgentError(f"agent {self.label}: {why}\n{self.stderr_tail()}".rstrip())

    def next_event(self, timeout: float) -> dict[str, Any]:
        """The next event; AgentError when none comes within ``timeout`` s or the agent dies."""
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._fail(f"no event within {timeout:.1f} s")
            if not self._sel.select(timeout=left):
                continue
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise self._fail(f"exited with {self.proc.wait()} before its next event")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            event: dict[str, Any] = json.loads(line)
        except ValueError:
            raise self._fail(f"printed a non-event line: {line[:200]!r}") from None
        return event

    def events_within(self, timeout: float) -> list[dict[str, Any]]:
        """Every event that has arrived within ``timeout`` s (maybe none); AgentError if it died."""
        assert self.proc.stdout is not None
        if b"\n" not in self._buffer and self._sel.select(timeout=max(timeout, 0.0)):
            chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
            if not chunk:
                raise self._fail(f"exited with {self.proc.wait()} before its next event")
            self._buffer += chunk
        events = []
        while b"\n" in self._buffer:
            events.append(self.next_event(0))
        return events

    def command(self, line: str) -> None:
        """Send one command line to a role that takes commands (``push``, ``report``, ``sample``)."""
        if self.proc.stdin is None or self.proc.stdin.closed:
            raise self._fail(f"cannot send {line!r}: its input is closed")
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    @overload
    def expect(self, name: Literal["opened"], timeout: float) -> proto.Opened: ...  # type: ignore[overload-overlap]
    @overload
    def expect(self, name: Literal["released"], timeout: float) -> proto.Released: ...  # type: ignore[overload-overlap]
    @overload
    def expect(self, name: Literal["burst"], timeout: float) -> proto.Burst: ...  # type: ignore[overload-overlap]
    @overload
    def expect(self, name: Literal["ready"], timeout: float) -> proto.Ready: ...  # type: ignore[overload-overlap]
    @overload
    def expect(self, name: Literal["stats"], timeout: float) -> proto.Stats: ...  # type: ignore[overload-overlap]
    @overload
    def expect(self, name: Literal["responses"], timeout: float) -> proto.Responses: ...  # type: ignore[overload-overlap]
    @overload
    def expect(self, name: str, timeout: float) -> dict[str, Any]: ...
    def expect(self, name: str, timeout: float) -> Any:
        """The next event other than a progress report, which must be ``name`` (typed as
        ``agent.proto`` declares it, for the events both sides share)."""
        deadline = time.monotonic() + timeout
        event = self.next_event(timeout)
        while event.get("event") == "progress" and name != "progress":
            event = self.next_event(max(0.0, deadline - time.monotonic()))
        if event.get("event") != name:
            raise self._fail(f"expected event {name!r}, got {event!r}")
        return event

    def release(self) -> None:
        """Tell a holding role to let go (closing stdin does the same)."""
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.write(b"release\n")
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass

    def stop(self, timeout: float = 10.0) -> None:
        """Release, wait briefly, then kill: the process never outlives its lab."""
        self.release()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._sel.close()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._stderr.close()

    @property
    def running(self) -> bool:
        return self.proc.poll() is None
