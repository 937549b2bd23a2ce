"""The Debian mirror this machine itself installs from, read from its apt sources.

Images are debootstrapped from the mirror apt already uses here (a proxy, a local
mirror or deb.debian.org alike), so a lab image never needs a host the machine
does not reach. Both formats are read: one-line ``deb URI SUITE COMPONENTS`` in
``sources.list`` / ``*.list`` and deb822 stanzas in ``*.sources``.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ...errors import ImageBuildError

APT_DIR = Path("/etc/apt")


def _one_line_entries(text: str) -> Iterator[tuple[str, list[str], list[str]]]:
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        rest = line[4:].strip()
        if rest.startswith("["):  # options: deb [arch=amd64 signed-by=...] URI SUITE COMPONENTS
            rest = rest.partition("]")[2]
        words = rest.split()
        if len(words) >= 2:
            yield words[0], [words[1]], words[2:]


def _deb822_entries(text: str) -> Iterator[tuple[str, list[str], list[str]]]:
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            yield uri, fields.get("suites", "").split(), fields.get("components", "").split()


def entries(apt_dir: Path = APT_DIR) -> Iterator[tuple[str, list[str], list[str]]]:
    """Every enabled ``deb`` source: (URI, suites, components)."""
    one_line = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if path.is_file():
            yield from _one_line_entries(path.read_text(errors="replace"))
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        yield from _deb822_entries(path.read_text(errors="replace"))


def mirror_for(suite: str, apt_dir: Path = APT_DIR) -> str:
    """The URI of the first enabled source that serves ``suite`` with component main; else of the
    first that serves any release suite with main (a Debian mirror carries every suite)."""
    found = [(uri.rstrip("/"), suites) for uri, suites, components in entries(apt_dir) if "main" in components]
    for uri, suites in found:
        if suite in suites:
            return uri
    for uri, suites in found:
        if any("-" not in s and "/" not in s for s in suites):
            return uri
    raise ImageBuildError(f"no apt source in {apt_dir} serves '{suite} main': "
                          "give the Debian mirror with --mirror URI")
