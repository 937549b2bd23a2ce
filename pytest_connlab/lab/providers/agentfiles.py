"""The agent's files, for providers that copy it onto a host (docker put_archive, SFTP)."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

from .base import AGENT_PARENT


def agent_files() -> list[tuple[str, bytes]]:
    """(path relative to the agent's parent folder, content) of every agent source file."""
    root = Path(AGENT_PARENT)
    return [(str(p.relative_to(root)), p.read_bytes())
            for p in sorted((root / "agent").rglob("*.py"))]


def agent_tar(folder: str) -> bytes:
    """A tar holding the agent under ``folder/`` (for put_archive into the parent of ``folder``)."""
    buffer = io.BytesIO()
    files = agent_files()
    folders = sorted({str(Path(folder, name).parent) for name, _ in files} | {folder})
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in folders:
            info = tarfile.TarInfo(path)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in files:
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
