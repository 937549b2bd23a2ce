"""A remote command over SSH that behaves like the parts of subprocess.Popen the lab uses.

The command runs under ``setsid`` and first prints its process group id, so
terminate() and kill() signal the whole remote group. stdout and stderr are
drained by one thread each into local pipes or files, so a command that writes
much to both never stalls on a full SSH window while the reader waits on the
other. Closing stdin sends EOF (the agent ends on it); with stdin=DEVNULL the
remote input stays open and empty until the process is stopped.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

# Print the group id (setsid made the shell its leader), then become the command; -w: setsid
# waits for it (a session leader's setsid forks), so the exit status reaches the channel.
WRAPPER = "exec setsid -w sh -c 'echo $$; exec \"$@\"' connlab"
OPEN_TIMEOUT_S = 30.0  # a session that does not open a channel within this is lost


class SessionLost(OSError):
    """The SSH session could not open a channel: its transport ended or no longer answers."""


class _RemoteInput:
    """stdin: write, flush, close (EOF)."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel
        self.closed = False

    def write(self, data: bytes) -> int:
        if self.closed:
            raise ValueError("write to closed remote stdin")
        try:
            self._channel.sendall(data)
        except OSError as exc:
            raise BrokenPipeError(str(exc)) from None
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered locally."""

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self._channel.shutdown_write()
            except (OSError, EOFError):
                pass


class ChannelProcess:
    """A remote process; ``stdout``/``stderr`` are local file objects when PIPE was asked for."""

    def __init__(self, client: Any, argv: Sequence[str], stdin: Any = None, stdout: Any = None,
                 stderr: Any = None, **_: Any) -> None:
        self.args = list(argv)
        self._client = client
        transport = client.get_transport() if client is not None else None
        try:
            if transport is None:
                raise EOFError("no transport")
            self.channel = transport.open_session(timeout=OPEN_TIMEOUT_S)
        except Exception as exc:  # paramiko's SSHException (also on the timeout), EOFError, OSError
            raise SessionLost(f"ssh: no channel for {self.args[0]}: {type(exc).__name__}: {exc}") from exc
        self.channel.exec_command(f"{WRAPPER} {shlex.join(self.args)}")
        self.returncode: int | None = None
        self.pid = self._read_group_id()
        self.stdin: _RemoteInput | None = None
        if stdin == subprocess.PIPE:
            self.stdin = _RemoteInput(self.channel)
        elif stdin is None:
            self.channel.shutdown_write()
        # DEVNULL: leave the remote input open and empty (the process is stopped by signal)
        self.stdout = self._sink(stdout, self.channel.recv, "stdout")
        self.stderr = self._sink(stderr, self.channel.recv_stderr, "stderr")

    def _read_group_id(self) -> int:
        line = b""
        deadline = time.monotonic() + 30
        while not line.endswith(b"\n"):
            if time.monotonic() > deadline:
                raise OSError(f"ssh: {self.args[0]} did not start within 30 s")
            byte = self.channel.recv(1)
            if not byte:
                err = self.channel.recv_stderr(4096).decode(errors="replace")
                raise OSError(f"ssh: could not start {self.args[0]}: {err.strip() or 'no output'}")
            line += byte
        return int(line)

    def _sink(self, target: Any, receive: Any, name: str) -> IO[bytes] | None:
        """Drain one stream in a thread: to a new pipe (PIPE), a file (fd/file object) or nowhere."""
        reader: IO[bytes] | None = None
        if target == subprocess.PIPE:
            read_fd, write_fd = os.pipe()
            reader = os.fdopen(read_fd, "rb", buffering=0)
            out_fd, close_after = write_fd, True
        elif target in (None, subprocess.DEVNULL):
            out_fd, close_after = -1, False
        else:
            out_fd = target if isinstance(target, int) else target.fileno()
            close_after = False

        def pump() -> None:
            try:
                while True:
                    chunk = receive(65536)
                    if not chunk:
                        break
                    if out_fd >= 0:
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(out_fd, view):]
            except OSError:
                pass
            finally:
                if close_after:
                    os.close(out_fd)

        threading.Thread(target=pump, name=f"ssh-{name}", daemon=True).start()
        return reader

    def poll(self) -> int | None:
        if self.returncode is None and self.channel.exit_status_ready():
            self.returncode = self.channel.recv_exit_status()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode

    def _signal(self, name: str) -> None:
        if self.poll() is not None:
            return
        try:
            _, out, _ = self._client.exec_command(f"kill -{name} -- -{self.pid}", timeout=15)
            out.channel.recv_exit_status()
        except Exception:  # the session may be gone; closing the channel still ends the agent
            pass

    def terminate(self) -> None:
        self._signal("TERM")

    def kill(self) -> None:
        self._signal("KILL")
        self.channel.close()
        if self.returncode is None:
            self.returncode = -9

    def communicate(self, input: bytes | None = None,
                    timeout: float | None = None) -> tuple[bytes, bytes]:
        if input is not None and self.stdin is not None:
            self.stdin.write(input)
        if self.stdin is not None:
            self.stdin.close()
        results: dict[str, bytes] = {}

        def read_all(name: str, stream: IO[bytes] | None) -> None:
            results[name] = stream.read() if stream is not None else b""

        readers = [threading.Thread(target=read_all, args=(n, s), daemon=True)
                   for n, s in (("out", self.stdout), ("err", self.stderr))]
        for t in readers:
            t.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in readers:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        self.wait(None if deadline is None else max(0.1, deadline - time.monotonic()))
        return results.get("out", b""), results.get("err", b"")
