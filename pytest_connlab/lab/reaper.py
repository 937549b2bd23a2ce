"""The liveness lock of a run, the keep records of --lab-keep, and the sweep of what dead runs left.

Everything a run makes is named after its lab (``names.LabName``). A live run holds
a shared flock on ``/run/connlab/<run id>.lock`` (the controller and each xdist
worker). The sweep asks each provider to remove what it holds of labs whose run's
lock nobody holds (kept labs excepted), never by a broad pattern, so a parallel
run is never touched; the reaper knows no provider's internals.
"""
from __future__ import annotations

import fcntl
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ReaperError
from .names import LAB_NAME, LabName
from .providers.base import Provider
from .rundir import LOCK_DIR, private_dir

KEEP_DIR = LOCK_DIR / "keep"  # labs kept by --lab-keep: spared until `connlab down`


@dataclass
class RunLock:
    """A shared lock that says run ``run_id`` is alive while this process holds it."""

    run_id: str
    fd: int = -1

    @property
    def path(self) -> Path:
        return LOCK_DIR / f"{self.run_id}.lock"

    def acquire(self) -> RunLock:
        """Hold the lock; retry if a sweep unlinked the file between open and flock."""
        private_dir(LOCK_DIR)
        while True:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            os.fchmod(self.fd, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_SH)
            try:
                if os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
                    return self
            except FileNotFoundError:
                pass
            os.close(self.fd)

    def release(self) -> None:
        """Let go; the last holder of a run's lock also removes the file."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            if not run_is_alive(self.run_id):
                self.path.unlink(missing_ok=True)


def _lock_holders(path: Path) -> list[int]:
    """Pids that /proc/locks names as holding a flock on ``path`` (0 where the kernel cannot say)."""
    info = os.stat(path)
    wanted = (os.major(info.st_dev), os.minor(info.st_dev), info.st_ino)
    holders = []
    try:
        with open("/proc/locks") as f:
            lines = f.readlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue  # "->" lines are waiters, not holders
        try:
            major, minor, inode = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) == wanted:
                holders.append(max(0, int(fields[4])))
        except ValueError:
            continue
    return holders


def _held_by_us(pid: int) -> bool:
    """True unless ``pid`` is known to run as another user (an unknown holder counts as ours)."""
    if pid <= 0:
        return True
    try:
        return os.stat(f"/proc/{pid}").st_uid == os.geteuid()
    except OSError:
        return True  # gone, or in another pid namespace: cannot tell, so it stays alive


def run_is_alive(run_id: str) -> bool:
    """True while some process of ours holds the run's lock; a lock that only processes of
    other users hold does not keep a dead run's leftovers from the sweep."""
    path = LOCK_DIR / f"{run_id}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holders = _lock_holders(path)
        return not holders or any(_held_by_us(pid) for pid in holders)
    finally:
        os.close(fd)
    return False


def sweep(providers: Iterable[Provider], dry_run: bool = False) -> dict[str, list[str]]:
    """Ask every provider to remove what dead runs left (kept labs are spared), then remove the
    dead runs' lock files; return what was (or would be) removed, by run id."""
    kept = kept_labs()
    alive: dict[str, bool] = {}

    def spare(lab: LabName) -> bool:
        if str(lab) in kept:
            return True
        if lab.run not in alive:
            alive[lab.run] = run_is_alive(lab.run)
        return alive[lab.run]

    removed: dict[str, list[str]] = {}
    for provider in providers:
        for lab, names in sorted(provider.sweep(spare, dry_run).items()):
            removed.setdefault(lab.run, []).extend(names)
    if not dry_run and LOCK_DIR.is_dir():
        for lock in LOCK_DIR.glob("*.lock"):
            if not run_is_alive(lock.stem):
                lock.unlink(missing_ok=True)
    return removed


def kept_labs() -> set[str]:
    """Names of labs left standing by --lab-keep."""
    if not KEEP_DIR.is_dir():
        return set()
    return {p.name for p in KEEP_DIR.iterdir() if LAB_NAME.match(p.name)}


def record_kept(lab_name: str, run_id: str, profile: str, provider: str, namespaces: list[str]) -> None:
    """Remember a kept lab and exactly which namespaces are its own, for `connlab down`."""
    if not LAB_NAME.match(lab_name):
        raise ReaperError(f"{lab_name!r} is not a lab name")
    private_dir(KEEP_DIR)
    record = {"lab": lab_name, "run": run_id, "profile": profile, "provider": provider,
              "namespaces": sorted(n for n in namespaces if LabName.of_resource(n) == LabName.parse(lab_name))}
    fd = os.open(KEEP_DIR / lab_name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)


def _kept_record(lab_name: str) -> dict[str, Any]:
    """The keep record of ``lab_name``; ReaperError when connlab did not keep a lab of that name."""
    if not LAB_NAME.match(lab_name):
        raise ReaperError(f"{lab_name!r} is not the name of a connlab lab (connlab-<run>-<worker>-<n>); "
                          "nothing removed")
    path = KEEP_DIR / lab_name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        kept = ", ".join(sorted(kept_labs())) or "none"
        raise ReaperError(f"no lab {lab_name} was kept by connlab (kept labs: {kept}); nothing removed") from None
    with os.fdopen(fd) as f:
        info = os.fstat(f.fileno())
        text = f.read(65536) if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() else ""
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if not isinstance(record, dict) or record.get("lab") != lab_name or not isinstance(record.get("namespaces"), list):
        raise ReaperError(f"{path} is not a keep record written by this connlab; nothing removed (remove it and "
                          "the lab by hand if it is yours)")
    return record


def remove_kept_lab(lab_name: str, providers: Iterable[Provider]) -> list[str]:
    """Remove a lab that --lab-keep left standing, after checking its keep record and that its
    run is over: every provider removes what it holds of exactly that lab."""
    _kept_record(lab_name)
    lab = LabName.parse(lab_name)
    assert lab is not None  # the record check matched the grammar
    if run_is_alive(lab.run):
        raise ReaperError(f"lab {lab_name} belongs to run {lab.run}, which is still running; nothing removed "
                          "(it is removed by `connlab down` once that run has ended)")
    names: list[str] = []
    for provider in providers:
        names += provider.remove(lab)
    (KEEP_DIR / lab_name).unlink(missing_ok=True)
    return names
