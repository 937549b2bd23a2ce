"""``--lab-json PATH``: every observation of the run, for tracking limits from run to run.

The path is checked when the run starts (its folder must exist and be writable, and the
path must not be a folder or a link). The file is written through a temporary file made
exclusively in the same folder and renamed over the path: a reader never sees half a
file, and no link planted anywhere is ever followed.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import JsonPathError

FIELDS = ("test", "profile", "provider", "limit", "expected", "observed", "ended_by",
          "fidelity", "verdict", "disturbed", "duration_s")


def entry(row: dict[str, Any]) -> dict[str, Any]:
    """One observation as the file holds it: the main fields, the rest under ``detail``."""
    out = {key: row.get(key) for key in FIELDS}
    out["detail"] = {k: v for k, v in row.items() if k not in FIELDS}
    return out


def check_target(path: Path, probe: bool = True) -> Path:
    """``path`` made absolute when it can be written at the end of the run; JsonPathError otherwise.
    ``probe``: also make and remove a file in its folder (``write`` needs no probe: its own
    temporary file is one)."""
    target = Path(os.path.abspath(path))
    folder = target.parent
    if not str(path).strip() or target.name in ("", ".", ".."):
        raise JsonPathError(f"{str(path)!r} is not a file path")
    if not folder.is_dir():
        raise JsonPathError(f"{folder}: no such folder (connlab does not create it)")
    if probe:  # a file made and removed says more than access(), which is always yes for root
        try:
            fd, made = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".probe")
            os.close(fd)
            os.unlink(made)
        except OSError as exc:
            raise JsonPathError(f"{folder}: not writable ({exc.strerror or exc})") from None
    if target.is_symlink():
        raise JsonPathError(f"{target} is a symbolic link; connlab never writes through a link")
    if target.exists() and not target.is_file():
        raise JsonPathError(f"{target} exists and is not a regular file")
    return target


def render(run_id: str, results: list[dict[str, Any]]) -> str:
    """The JSON text of the run's results."""
    return json.dumps({"run_id": run_id, "results": [entry(r) for r in results]}, indent=2) + "\n"


def write(path: Path, run_id: str, results: list[dict[str, Any]]) -> None:
    """Write the results atomically; OSError or JsonPathError (nothing left behind) when that fails."""
    write_text(path, render(run_id, results))


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file in the same folder, renamed over it)."""
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; never through a link."""
    target = check_target(path, probe=False)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), 0o644)
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
