"""The image's Debian mirror comes from the machine's apt sources, never a fixed host."""
from __future__ import annotations

import pytest

from pytest_connlab.errors import ImageBuildError
from pytest_connlab.lab.providers.aptsources import APT_DIR, entries, mirror_for
from pytest_connlab.lab.providers.image import Recipe


def _apt(tmp_path, one_line: str = "", **sources: str):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(one_line)
    for name, text in sources.items():
        (tmp_path / "sources.list.d" / f"{name}.sources").write_text(text)
    return tmp_path


def test_a_one_line_source_with_options_gives_its_uri(tmp_path):
    apt = _apt(tmp_path, "# deb http://commented.example/debian bookworm main\n"
                         "deb-src http://src.example/debian bookworm main\n"
                         "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main contrib\n")
    assert mirror_for("bookworm", apt) == "http://mirror.example/debian"


def test_deb822_stanzas_skip_disabled_ones_and_other_suites(tmp_path):
    apt = _apt(tmp_path, debian=(
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n\n"
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb deb-src\nURIs: http://on.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"))
    assert mirror_for("bookworm", apt) == "http://on.example/debian"
    assert mirror_for("trixie", apt) == "http://on.example/debian"  # a Debian mirror carries every suite


def test_no_usable_source_is_a_clear_error_naming_the_option(tmp_path):
    apt = _apt(tmp_path, "deb http://x.example/debian bookworm contrib\n")
    with pytest.raises(ImageBuildError, match="--mirror"):
        mirror_for("bookworm", apt)


def test_the_default_recipe_uses_this_machines_own_mirror():
    uris = [uri.rstrip("/") for uri, suites, components in entries(APT_DIR) if "main" in components]
    assert Recipe().mirror in uris
    assert Recipe(mirror="http://given.example/debian").mirror == "http://given.example/debian"
