"""The lab image for the docker provider, built locally: debootstrap a minimal Debian, docker import.

No registry is needed: ``connlab image build`` runs debootstrap into a temporary
folder, packs it and imports it with the docker SDK. The tag carries a hash of
what goes in (suite, mirror, packages, recipe version), so a build with the same
inputs is a no-op and a changed recipe makes a new image.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...errors import ImageBuildError
from .aptsources import mirror_for

IMAGE_REPOSITORY = "connlab-lab"
DEFAULT_IMAGE = f"{IMAGE_REPOSITORY}:latest"
RECIPE_VERSION = "1"
PACKAGES = ("python3", "iproute2", "nftables", "iptables", "procps", "openssh-server", "sudo")
DEFAULT_SUITE = "bookworm"


@dataclass(frozen=True)
class Recipe:
    """What goes into the image; its hash names the tag."""

    suite: str = DEFAULT_SUITE
    mirror: str = ""  # empty: the mirror this machine's apt sources use for the suite
    packages: tuple[str, ...] = PACKAGES

    def __post_init__(self) -> None:
        if not self.mirror:
            object.__setattr__(self, "mirror", mirror_for(self.suite))

    @property
    def content_hash(self) -> str:
        text = "\n".join([RECIPE_VERSION, self.suite, self.mirror, *sorted(self.packages)])
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def tag(self) -> str:
        return f"{IMAGE_REPOSITORY}:{self.content_hash}"


def debootstrap_argv(recipe: Recipe, root: str) -> list[str]:
    """The debootstrap command that fills ``root``."""
    return ["debootstrap", "--variant=minbase", f"--include={','.join(recipe.packages)}",
            recipe.suite, root, recipe.mirror]


def _slim(root: Path) -> None:
    """Drop what a lab host never reads (apt lists, caches, docs) to keep the image small."""
    for sub in ("var/lib/apt/lists", "var/cache/apt/archives", "usr/share/doc", "usr/share/man",
                "usr/share/locale"):
        path = root / sub
        if path.is_dir():
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                elif child.name != "lock":
                    child.unlink(missing_ok=True)


def _pack(root: Path, out: Path) -> None:
    with tarfile.open(out, "w") as tar:
        for entry in sorted(root.iterdir()):
            tar.add(str(entry), arcname=entry.name)


def build(recipe: Recipe = Recipe(), force: bool = False, log: Callable[[str], None] = print) -> str:
    """Build (or find) the image for ``recipe``; tag it as the default too; return its tag."""
    try:
        import docker
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        raise ImageBuildError(f"connlab image build: no Docker engine answers ({exc})") from None
    try:
        existing = client.images.get(recipe.tag)
    except docker.errors.ImageNotFound:
        existing = None
    if existing is not None and not force:
        existing.tag(IMAGE_REPOSITORY, "latest")
        log(f"{recipe.tag}: already built ({existing.short_id}); tagged {DEFAULT_IMAGE}")
        return recipe.tag
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("connlab image build: needs debootstrap (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise ImageBuildError("connlab image build: debootstrap needs root")
    with tempfile.TemporaryDirectory(prefix="connlab-image-") as tmp:
        root = Path(tmp) / "root"
        argv = debootstrap_argv(recipe, str(root))
        log(f"running: {' '.join(argv)}")
        done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
            raise ImageBuildError("connlab image build: debootstrap failed:\n" + "\n".join(tail))
        _slim(root)
        archive = Path(tmp) / "root.tar"
        _pack(root, archive)
        log(f"importing {archive.stat().st_size / 2**20:.0f} MiB as {recipe.tag}")
        client.api.import_image_from_file(str(archive), repository=IMAGE_REPOSITORY, tag=recipe.content_hash,
                                          changes=['CMD ["sleep", "infinity"]',
                                                   f'LABEL connlab.recipe="{recipe.content_hash}"'])
    image = client.images.get(recipe.tag)
    image.tag(IMAGE_REPOSITORY, "latest")
    log(f"built {recipe.tag} ({image.short_id}); tagged {DEFAULT_IMAGE}")
    return recipe.tag
