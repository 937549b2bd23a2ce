"""The run folder ``/run/connlab``: root's own (0700), holding run locks, keep records and
provider work folders; nothing in it is followed through a link."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import ReaperError

LOCK_DIR = Path("/run/connlab")  # root's own: 0700, its files 0600


def private_dir(path: Path) -> Path:
    """``path`` as a folder only this user may enter (0700, owned by us): made, or put right
    (and so is every folder between it and the run folder)."""
    if path != LOCK_DIR and LOCK_DIR in path.parents:
        private_dir(path.parent)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise ReaperError(f"{path} is not a folder (a link or file is there); connlab will not use it")
    if info.st_uid != os.geteuid():
        os.chown(path, os.geteuid(), os.getegid(), follow_symlinks=False)
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700, follow_symlinks=False)
    return path
