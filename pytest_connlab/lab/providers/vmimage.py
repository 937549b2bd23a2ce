"""The vm provider's guest image, built locally: a Debian kernel, a read-only root, a busybox initramfs.

``connlab image build --vm`` fetches the guest kernel with ``apt-get download`` and
unpacks it with ``dpkg -x`` (never installed into this machine's /boot), debootstraps
a minimal root, makes a raw ext4 disk of it with ``mke2fs -d`` (no loop mount), and
packs a busybox initramfs that mounts that disk read-only under a RAM overlay. The
image lives in ``/var/cache/connlab/vm/<hash>/`` where the hash covers every input
(kernel package and version, suite, mirror, packages, the guest files below), so a
build with the same inputs is a no-op and a lab can compare kernels by naming one.
An SSH key pair made at build time is the only way in: the guest runs ``sshd -i`` on
a virtio-serial port, never on a network.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import ImageBuildError
from .aptsources import mirror_for
from .image import DEFAULT_SUITE, _slim

CACHE_DIR = Path("/var/cache/connlab/vm")
RECIPE_VERSION = "1"
# the agent's needs, then the real clients labs/test_lab_wide.py checks the lab with (curl, hping3, ping)
PACKAGES = ("python3", "iproute2", "nftables", "iptables", "procps", "kmod", "openssh-server",
            "curl", "hping3", "iputils-ping")
KERNEL_PACKAGE = re.compile(r"^linux-image-[0-9][a-z0-9.+~-]{0,60}$")
PORT_NAME = "connlab"  # the virtio-serial port the guest's sshd answers on
HOST_KEY_ALIAS = "connlab-vm"  # the name the guest's host key is recorded under
# modules the initramfs loads to reach the root disk (dependencies are added from modules.dep)
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "crc32c_generic", "ext4", "overlay")
IMAGE_FILES = ("kernel", "initrd.img", "root.img", "id_ed25519", "known_hosts", "recipe.json")

INITRAMFS_INIT = """#!/bin/busybox sh
# connlab initramfs: mount the read-only root disk under a RAM overlay, then hand over.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.list); do insmod "/modules/$m" 2>/dev/null; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
mkdir -p /lower /rw /newroot
mount -t ext4 -o ro /dev/vda /lower || { echo "connlab-init: no root disk"; poweroff -f; }
mount -t tmpfs -o mode=0755 rw /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot
mkdir -p /newroot/lower /newroot/rw
mount --move /lower /newroot/lower
mount --move /rw /newroot/rw
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/connlab-init
"""

GUEST_INIT = """#!/bin/sh
# connlab guest init (PID 1): kernel file systems, NIC drivers, then sshd -i on the control port.
mount -t proc proc /proc
mount -t sysfs sys /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/sshd
hostname "$(sed -n 's/.*connlab.host=\\([a-z0-9]*\\).*/\\1/p' /proc/cmdline)"
# nf_conntrack loaded so its kernel-wide keys exist on every host (it tracks nothing until a rule needs it)
modprobe -a virtio_net virtio_console nf_conntrack
ip link set lo up
# a guest's processes may raise their descriptor limit up to fs.nr_open; they start at the usual 1024
ulimit -Hn 1048576
ulimit -Sn 1024
# no udev here: find the control port by its name in sysfs
port=""
i=0
while [ -z "$port" ] && [ $i -lt 200 ]; do
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = connlab ] && port="/dev/${p##*/}"
  done
  [ -n "$port" ] || sleep 0.05
  i=$((i+1))
done
echo "connlab-init: ready"
# sshd -i answers the host on the control port, one session after another. A port opens once at a
# time, so sshd gets one read-write descriptor as its input and output. Each session starts with the
# host's hello line: what an ended session left unread in the port comes before it and is skipped
# here, and the answer carries the hello's nonce, so the host skips what came before it on its side.
echo -1000 > /proc/self/oom_score_adj  # sshd is exempt from the OOM killer; what it starts resets its score
while :; do
  exec 3<>"$port"
  hello=""
  while IFS= read -r line <&3; do
    case "$line" in *"CONNLAB-HELLO "*) hello="${line##*CONNLAB-HELLO }"; break ;; esac
  done
  if [ -n "$hello" ]; then
    echo "CONNLAB-READY $hello" >&3
    /usr/sbin/sshd -i -e -f /etc/ssh/connlab_sshd_config <&3 >&3 2>/dev/console
  fi
  exec 3>&-
  sleep 0.1
done
"""

SSHD_CONFIG = """# sshd -i on the virtio-serial port only (no listener on any network)
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
AuthorizedKeysFile /etc/ssh/connlab_authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
MaxSessions 1000
MaxStartups 1000
Subsystem sftp internal-sftp
"""

GUEST_FILES = {"init": INITRAMFS_INIT, "sbin/connlab-init": GUEST_INIT, "etc/ssh/connlab_sshd_config": SSHD_CONFIG}


def default_kernel_package(suite: str = DEFAULT_SUITE) -> str:
    """The versioned kernel package Debian's ``linux-image-amd64`` points at here (apt's own index)."""
    done = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True,
                          timeout=60)
    for line in done.stdout.splitlines():
        name = line.strip().removeprefix("Depends:").strip()
        if KERNEL_PACKAGE.match(name):
            return name
    raise ImageBuildError("connlab image build --vm: apt knows no linux-image-amd64 here; "
                          "name the guest kernel with --kernel linux-image-VERSION-amd64")


@dataclass(frozen=True)
class VmRecipe:
    """What goes into a guest image; its hash names the image's folder."""

    kernel: str = ""  # a linux-image-* package; empty: the one linux-image-amd64 depends on
    suite: str = DEFAULT_SUITE
    mirror: str = ""
    packages: tuple[str, ...] = PACKAGES
    kernel_version: str = field(default="", compare=False)  # the package version apt resolves

    def __post_init__(self) -> None:
        if not self.kernel:
            object.__setattr__(self, "kernel", default_kernel_package(self.suite))
        if not KERNEL_PACKAGE.match(self.kernel):
            raise ImageBuildError(f"connlab image build --vm: --kernel {self.kernel!r} is not a Debian kernel "
                                  "package name (linux-image-VERSION-FLAVOUR)")
        if not self.mirror:
            object.__setattr__(self, "mirror", mirror_for(self.suite))
        if not self.kernel_version:
            object.__setattr__(self, "kernel_version", _package_version(self.kernel))

    @property
    def content_hash(self) -> str:
        parts = [RECIPE_VERSION, self.kernel, self.kernel_version, self.suite, self.mirror, *sorted(self.packages),
                 *INITRAMFS_MODULES, *(f"{name}\n{text}" for name, text in sorted(GUEST_FILES.items()))]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]

    @property
    def folder(self) -> Path:
        return CACHE_DIR / self.content_hash


def _package_version(package: str) -> str:
    done = subprocess.run(["apt-cache", "show", "--no-all-versions", package], capture_output=True, text=True,
                          timeout=60)
    for line in done.stdout.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    raise ImageBuildError(f"connlab image build --vm: apt knows no package {package} "
                          "(apt-get update, or name another with --kernel)")


@dataclass(frozen=True)
class VmImage:
    """A built guest image: its files and what it was built from."""

    folder: Path
    recipe: dict[str, object]

    @property
    def kernel(self) -> Path:
        return self.folder / "kernel"

    @property
    def initrd(self) -> Path:
        return self.folder / "initrd.img"

    @property
    def root(self) -> Path:
        return self.folder / "root.img"

    @property
    def key(self) -> Path:
        return self.folder / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.folder / "known_hosts"

    @property
    def kernel_release(self) -> str:
        return str(self.recipe.get("kernel_release", ""))


def load(folder: Path) -> VmImage | None:
    """The image in ``folder`` when every file is there and the folder is root's own; else None."""
    try:
        info = os.lstat(folder)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
            return None
        if not all((folder / name).is_file() and not (folder / name).is_symlink() for name in IMAGE_FILES):
            return None
        recipe = json.loads((folder / "recipe.json").read_text())
    except (OSError, ValueError):
        return None
    return VmImage(folder, recipe) if isinstance(recipe, dict) else None


def find(kernel: str = "") -> VmImage | None:
    """The newest built image (of ``kernel``, a linux-image package, when given), or None. No apt call:
    a lab starts from what was built."""
    if not CACHE_DIR.is_dir():
        return None
    found = [img for entry in CACHE_DIR.iterdir() if (img := load(entry)) is not None
             and (not kernel or img.recipe.get("kernel") == kernel)]
    return max(found, key=lambda img: img.root.stat().st_mtime, default=None)


def _run(argv: list[str], what: str, cwd: Path | None = None, timeout: float = 1800) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise ImageBuildError(f"connlab image build --vm: {what} failed:\n" + "\n".join(tail))
    return done.stdout


def uncompressed_kernel(bzimage: bytes) -> bytes | None:
    """The ELF vmlinux inside a bzImage compressed with xz (Debian's), for a direct PVH boot; None when
    the payload is not found."""
    start = bzimage.find(b"\xfd7zXZ\x00")
    if start < 0:
        return None
    try:
        elf = lzma.LZMADecompressor().decompress(bzimage[start:])
    except lzma.LZMAError:
        return None
    return elf if elf[:4] == b"\x7fELF" else None


def _kernel(recipe: VmRecipe, work: Path, log: Callable[[str], None]) -> tuple[bytes, Path, str]:
    """(kernel to boot, unpacked package folder, kernel release)."""
    debs = work / "debs"
    debs.mkdir()
    os.chown(debs, 0, 0)
    log(f"apt-get download {recipe.kernel} ({recipe.kernel_version})")
    _run(["apt-get", "download", f"{recipe.kernel}={recipe.kernel_version}"], "apt-get download", cwd=debs)
    deb = next(debs.glob("*.deb"))
    unpacked = work / "kernel"
    _run(["dpkg", "-x", str(deb), str(unpacked)], "dpkg -x")
    images = sorted((unpacked / "boot").glob("vmlinuz-*"))
    if not images:
        raise ImageBuildError(f"connlab image build --vm: {recipe.kernel} has no /boot/vmlinuz")
    release = images[0].name.removeprefix("vmlinuz-")
    bzimage = images[0].read_bytes()
    return uncompressed_kernel(bzimage) or bzimage, unpacked, release


def _module_closure(modules_dir: Path, wanted: tuple[str, ...]) -> list[str]:
    """Module paths (relative to ``modules_dir``) for ``wanted`` and their dependencies, load order."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (modules_dir / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        by_name[Path(path).name.split(".ko")[0].replace("-", "_")] = path
    ordered: list[str] = []

    def visit(path: str) -> None:
        if path in ordered:
            return
        for dep in deps.get(path, []):
            visit(dep)
        ordered.append(path)

    for name in wanted:
        if name in by_name:
            visit(by_name[name])
    return ordered


def _cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive of (path, mode, data) entries (directories with empty data)."""
    out = io.BytesIO()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        encoded = name.encode() + b"\0"
        header = "070701" + "".join(f"{v:08x}" for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0))
        out.write(header.encode() + encoded)
        out.write(b"\0" * (-(110 + len(encoded)) % 4))
        out.write(data)
        out.write(b"\0" * (-len(data) % 4))
    return out.getvalue()


def _initramfs(root: Path, release: str) -> bytes:
    """busybox (static, from the root) + the root-disk modules + /init."""
    modules_dir = root / "lib/modules" / release
    closure = _module_closure(modules_dir, INITRAMFS_MODULES)
    busybox = (root / "bin/busybox").read_bytes()
    entries: list[tuple[str, int, bytes]] = [(d, 0o40755, b"") for d in ("bin", "dev", "proc", "sys", "modules")]
    entries.append(("bin/busybox", 0o100755, busybox))
    entries += [(f"modules/{Path(p).name}", 0o100644, (modules_dir / p).read_bytes()) for p in closure]
    entries.append(("modules.list", 0o100644, "".join(Path(p).name + "\n" for p in closure).encode()))
    entries.append(("init", 0o100755, INITRAMFS_INIT.encode()))
    return gzip.compress(_cpio_newc(entries), compresslevel=6)


def _guest_root(recipe: VmRecipe, work: Path, unpacked: Path, release: str, log: Callable[[str], None]) -> Path:
    root = work / "root"
    packages = sorted({*recipe.packages, "busybox-static"})
    argv = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", recipe.suite, str(root),
            recipe.mirror]
    log(f"running: {' '.join(argv)}")
    _run(argv, "debootstrap")
    _slim(root)
    shutil.copytree(unpacked / "lib/modules" / release, root / "lib/modules" / release, symlinks=True)
    _run(["chroot", str(root), "depmod", release], "depmod (in the guest root)")
    for name, text in GUEST_FILES.items():
        if name == "init":
            continue
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755 if name.startswith("sbin/") else 0o644)
    for old in (root / "etc/ssh").glob("ssh_host_*"):
        old.unlink()
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", HOST_KEY_ALIAS,
          "-f", str(root / "etc/ssh/ssh_host_ed25519_key")], "ssh-keygen (host key)")
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "connlab", "-f", str(work / "id_ed25519")],
         "ssh-keygen (client key)")
    (root / "etc/ssh/connlab_authorized_keys").write_text((work / "id_ed25519.pub").read_text())
    host_pub = (root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
    (work / "known_hosts").write_text(f"{HOST_KEY_ALIAS} {host_pub[0]} {host_pub[1]}\n")
    (root / "etc/hostname").write_text("connlab\n")
    (root / "etc/fstab").write_text("")
    return root


def _root_disk(root: Path, out: Path) -> None:
    """A raw ext4 disk holding ``root``, sized to its content plus room for the journal."""
    used = sum(p.lstat().st_size for p in root.rglob("*")) // 2**20
    size_mb = int(used * 1.3) + 128
    _run(["mke2fs", "-q", "-t", "ext4", "-O", "^has_journal", "-L", "connlab-root", "-d", str(root), str(out),
          f"{size_mb}M"], "mke2fs -d")


def _prune(recipe: VmRecipe) -> None:
    """Remove images of the same kernel package that older recipes built (other kernels stay, to compare)."""
    for entry in CACHE_DIR.iterdir():
        old = load(entry)
        if old is not None and entry != recipe.folder and old.recipe.get("kernel") == recipe.kernel:
            shutil.rmtree(entry)


def build(recipe: VmRecipe | None = None, force: bool = False, log: Callable[[str], None] = print) -> VmImage:
    """Build (or find) the guest image for ``recipe``; return it."""
    recipe = recipe or VmRecipe()
    existing = load(recipe.folder)
    if existing is not None and not force:
        log(f"vm image {recipe.content_hash}: already built ({recipe.kernel} {existing.kernel_release}) "
            f"in {recipe.folder}")
        return existing
    for tool in ("debootstrap", "mke2fs", "dpkg", "apt-get", "ssh-keygen", "chroot"):
        if shutil.which(tool) is None:
            raise ImageBuildError(f"connlab image build --vm: needs {tool} (setup.sh --providers installs it)")
    if os.geteuid() != 0:
        raise ImageBuildError("connlab image build --vm: debootstrap needs root")
    CACHE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-", dir=CACHE_DIR) as tmp:
        work = Path(tmp)
        kernel, unpacked, release = _kernel(recipe, work, log)
        root = _guest_root(recipe, work, unpacked, release, log)
        out = work / "image"
        out.mkdir(mode=0o700)
        (out / "kernel").write_bytes(kernel)
        (out / "initrd.img").write_bytes(_initramfs(root, release))
        log("making the root disk (mke2fs -d)")
        _root_disk(root, out / "root.img")
        for name in ("id_ed25519", "known_hosts"):
            shutil.copyfile(work / name, out / name)
        (out / "id_ed25519").chmod(0o600)
        info = {"format": "connlab-vm-image/1", "hash": recipe.content_hash, "kernel": recipe.kernel,
                "kernel_version": recipe.kernel_version, "kernel_release": release, "suite": recipe.suite,
                "mirror": recipe.mirror, "packages": sorted(recipe.packages),
                "kernel_format": "elf (PVH)" if kernel[:4] == b"\x7fELF" else "bzImage"}
        (out / "recipe.json").write_text(json.dumps(info, indent=1) + "\n")
        if recipe.folder.exists():
            shutil.rmtree(recipe.folder)
        out.rename(recipe.folder)
    _prune(recipe)
    image = load(recipe.folder)
    if image is None:
        raise ImageBuildError(f"connlab image build --vm: {recipe.folder} is incomplete after the build")
    log(f"built vm image {recipe.content_hash}: {recipe.kernel} {release}, root "
        f"{image.root.stat().st_size / 2**20:.0f} MiB, in {recipe.folder}")
    return image
