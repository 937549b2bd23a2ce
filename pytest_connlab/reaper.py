"""Run ids, the liveness lock of a run, and the sweep of what dead runs left.

Every namespace a run makes is named ``connlab-<run id>-...``. A live run holds
a shared flock on ``/run/connlab/<run id>.lock`` (the controller and each xdist
worker). The sweep removes only resources of runs whose lock nobody holds, never
by a broad pattern, so a parallel run is never touched.
"""
from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

LOCK_DIR = Path("/run/connlab")
KEEP_DIR = LOCK_DIR / "keep"  # labs kept by --lab-keep: spared until `connlab down`
NAME_PREFIX = "connlab"
RUN_ID = re.compile(r"^connlab-([0-9a-f]{8})-")


def new_run_id() -> str:
    """Eight hex digits: short enough for names, random enough not to collide."""
    return secrets.token_hex(4)


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
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        while True:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
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


def run_is_alive(run_id: str) -> bool:
    """True while some process holds the run's lock."""
    path = LOCK_DIR / f"{run_id}.lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def lab_namespaces(netns_dir: Path) -> dict[str, list[str]]:
    """connlab namespace names by run id."""
    by_run: dict[str, list[str]] = {}
    if not netns_dir.is_dir():
        return by_run
    for entry in sorted(netns_dir.iterdir()):
        m = RUN_ID.match(entry.name)
        if m:
            by_run.setdefault(m.group(1), []).append(entry.name)
    return by_run


def sweep(dry_run: bool = False) -> dict[str, list[str]]:
    """Remove the namespaces of dead runs and their lock files; return what was (or would be) removed."""
    from .providers.netns import remove_namespace
    from .providers.nsexec import NETNS_DIR
    removed: dict[str, list[str]] = {}
    kept = kept_labs()
    for run_id, names in lab_namespaces(NETNS_DIR).items():
        names = [n for n in names if n.rsplit("-", 1)[0] not in kept]
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
    return {p.name for p in KEEP_DIR.iterdir()} if KEEP_DIR.is_dir() else set()


def remove_lab(lab_name: str) -> list[str]:
    """Remove one lab's namespaces (a kept one included) and its keep mark."""
    from .providers.netns import remove_namespace
    from .providers.nsexec import NETNS_DIR
    names = [p.name for p in NETNS_DIR.glob(f"{lab_name}-*")] if NETNS_DIR.is_dir() else []
    for name in names:
        remove_namespace(name)
    client = _docker_client()
    if client is not None:
        from .providers.docker import remove_lab as remove_docker_lab
        names += remove_docker_lab(client, lab_name)
    (KEEP_DIR / lab_name).unlink(missing_ok=True)
    return names
