"""Run ids, the liveness lock of a run, and the sweep of what dead runs left.

Every namespace a run makes is named ``connlab-<run id>-...``. A live run holds
a shared flock on ``/run/connlab/<run id>.lock`` (the controller and each xdist
worker). The sweep removes only resources of runs whose lock nobody holds, never
by a broad pattern, so a parallel run is never touched.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ReaperError

LOCK_DIR = Path("/run/connlab")  # root's own: 0700, its files 0600
KEEP_DIR = LOCK_DIR / "keep"  # labs kept by --lab-keep: spared until `connlab down`
NAME_PREFIX = "connlab"
RUN_ID = re.compile(r"^connlab-([0-9a-f]{8})-")
LAB_NAME = re.compile(r"^connlab-([0-9a-f]{8})-([a-z0-9]{1,16})-([0-9]{1,9})$")
RESOURCE_SUFFIX = re.compile(r"^[a-z0-9]{1,32}$")  # a host or segment name after the lab name




def new_run_id() -> str:
    """Eight hex digits: short enough for names, random enough not to collide."""
    return secrets.token_hex(4)


def private_dir(path: Path) -> Path:
    """``path`` as a folder only this user may enter (0700, owned by us): made, or put right
    (and so is every folder between it and the lock folder)."""
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


def lab_of(resource_name: str) -> str | None:
    """The lab a namespace (or container, network) belongs to, by the name grammar; None if none."""
    lab, _, suffix = resource_name.rpartition("-")
    return lab if LAB_NAME.match(lab) and RESOURCE_SUFFIX.match(suffix) else None


def lab_namespaces(netns_dir: Path) -> dict[str, list[str]]:
    """connlab namespace names by run id."""
    by_run: dict[str, list[str]] = {}
    if not netns_dir.is_dir():
        return by_run
    for entry in sorted(netns_dir.iterdir()):
        m = RUN_ID.match(entry.name)
        if m and lab_of(entry.name):
            by_run.setdefault(m.group(1), []).append(entry.name)
    return by_run


def sweep(dry_run: bool = False) -> dict[str, list[str]]:
    """Remove the namespaces of dead runs and their lock files; return what was (or would be) removed."""
    from .providers.netns import remove_namespace
    from .providers.nsexec import NETNS_DIR
    removed: dict[str, list[str]] = {}
    kept = kept_labs()
    for run_id, names in lab_namespaces(NETNS_DIR).items():
        names = [n for n in names if lab_of(n) not in kept]
        if not names or run_is_alive(run_id):
            continue
        removed[run_id] = names
        if not dry_run:
            for name in names:
                remove_namespace(name)
    for run_id, names in sweep_docker(kept, dry_run).items():
        removed.setdefault(run_id, []).extend(names)
    from .providers.docker import run_of
    from .providers.vagrant import dead_labs
    for work in dead_labs(run_is_alive):
        if work.name not in kept:
            removed.setdefault(run_of(work.name), []).append(f"vagrant work folder {work}")
            if not dry_run:
                shutil.rmtree(work, ignore_errors=True)
    if not dry_run and LOCK_DIR.is_dir():
        for lock in LOCK_DIR.glob("*.lock"):
            if not run_is_alive(lock.stem):
                lock.unlink(missing_ok=True)
    return removed


def _docker_client() -> object | None:
    """A client of a Docker engine that answers, or None (no SDK, no daemon)."""
    try:
        import docker
        client = docker.from_env(timeout=5)
        client.ping()
        return client
    except Exception:
        return None


def sweep_docker(kept: set[str], dry_run: bool = False) -> dict[str, list[str]]:
    """Remove the containers and networks of dead runs (labels connlab.run / connlab.lab)."""
    client = _docker_client()
    if client is None:
        return {}
    from .providers.docker import lab_names, remove_lab
    removed: dict[str, list[str]] = {}
    for run_id, labs in lab_names(client).items():
        if run_is_alive(run_id):
            continue
        for lab_name, names in labs.items():
            if lab_name in kept:
                continue
            removed.setdefault(run_id, []).extend(names)
            if not dry_run:
                remove_lab(client, lab_name)
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
              "namespaces": sorted(n for n in namespaces if lab_of(n) == lab_name)}
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


def remove_kept_lab(lab_name: str) -> list[str]:
    """Remove a lab that --lab-keep left standing: exactly the namespaces its record names and the
    containers and networks labelled with its name, after checking that its run is over."""
    record = _kept_record(lab_name)
    run_id = LAB_NAME.match(lab_name).group(1)  # type: ignore[union-attr]
    if run_is_alive(run_id):
        raise ReaperError(f"lab {lab_name} belongs to run {run_id}, which is still running; nothing removed "
                          "(it is removed by `connlab down` once that run has ended)")
    from .providers.netns import remove_namespace
    from .providers.nsexec import NETNS_DIR
    names = [n for n in record["namespaces"] if isinstance(n, str) and lab_of(n) == lab_name
             and (NETNS_DIR / n).exists()]
    for name in names:
        remove_namespace(name)
    client = _docker_client()
    if client is not None:
        from .providers.docker import remove_lab as remove_docker_lab
        names += remove_docker_lab(client, lab_name)
    (KEEP_DIR / lab_name).unlink(missing_ok=True)
    return names
