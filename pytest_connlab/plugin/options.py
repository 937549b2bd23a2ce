"""The plugin's command-line options and ini keys: declared, then read back checked.

Every value is untrusted: an option given empty, a name that is not one, a path that
cannot be used, is a ``pytest.UsageError`` naming the option, never a silent default.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ..errors import BaselineError, JsonPathError
from ..lab.providers import PROVIDERS
from ..lab.providers.image import DEFAULT_IMAGE
from ..report import baseline
from ..report.baseline import Tolerance
from ..report.jsonfile import check_target

DEFAULT_LAB = "linux-default"
# docker's image reference grammar, loosely: repository[:tag][@digest]
IMAGE_REFERENCE = re.compile(r"[a-z0-9][a-z0-9._/-]{0,200}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?")
VAGRANT_PROVIDERS = ("docker", "libvirt", "virtualbox")


def add_options(parser: pytest.Parser) -> None:
    """Declare the options and ini keys."""
    group = parser.getgroup("connlab", "connection-limit labs (pytest-connlab)")
    group.addoption("--lab", dest="connlab_lab", metavar="NAME[,NAME]|all", default=None,
                    help=f"lab profile(s) to run lab tests on (default: {DEFAULT_LAB}); 'all' for every profile")
    group.addoption("--lab-provider", dest="connlab_provider", metavar="NAME", default=None,
                    help=f"how lab hosts are made: {', '.join(PROVIDERS)} (default: ini connlab_provider or netns)")
    group.addoption("--lab-image", dest="connlab_image", metavar="IMAGE", default=None,
                    help="docker provider: the image of lab hosts (default: ini connlab_docker_image "
                         "or connlab-lab:latest, built by `connlab image build`); any image with python3")
    group.addoption("--lab-inventory", dest="connlab_inventory", metavar="PATH", default=None,
                    help="ssh provider: the YAML inventory of hosts (default: ini connlab_inventory)")
    group.addoption("--lab-vagrant-dir", dest="connlab_vagrant_dir", metavar="DIR", default=None,
                    help="vagrant provider: the folder with the Vagrantfile (default: ini "
                         "connlab_vagrant_dir or the rootdir)")
    group.addoption("--lab-vm-kernel", dest="connlab_vm_kernel", metavar="PACKAGE", default=None,
                    help="vm provider: boot the guest image built with this Debian kernel package "
                         "(`connlab image build --vm --kernel PACKAGE`; default: ini connlab_vm_kernel or "
                         "the newest image)")
    group.addoption("--lab-keep", dest="connlab_keep", action="store_true",
                    help="keep the lab of a failed test for inspection; print how to enter and remove it")
    group.addoption("--lab-json", dest="connlab_json", metavar="PATH", default=None,
                    help="write every observation of the run to PATH as JSON (its folder must exist)")
    group.addoption("--lab-plots", dest="connlab_plots", metavar="DIR", default=None,
                    help="write PNG plots of the evidence (held connections, churn, push latency, errors) to "
                         "DIR, named by test (needs matplotlib: the [report] extra; DIR must exist)")
    group.addoption("--lab-baseline-save", dest="connlab_baseline_save", metavar="FILE", default=None,
                    help="store every observation of the run, with kernel, provider and profile, as a "
                         "baseline for --lab-compare (its folder must exist)")
    group.addoption("--lab-compare", dest="connlab_compare", metavar="FILE", default=None,
                    help="compare each observation with a baseline (or --lab-json) file: baseline and "
                         "delta in the summary, changed profile, kernel or provider shown")
    group.addoption("--lab-compare-fail", dest="connlab_compare_fail", metavar="TOL", action="append",
                    default=None, help="with --lab-compare: fail a test whose observed limit moved beyond "
                                       "TOL: 0, 5%%, or per limit ephemeral_ports:0 (comma-separated or repeated)")
    parser.addini("connlab_labs", type="paths", default=[],
                  help="folders with your own lab profiles (*.yaml); they shadow shipped ones of the same name")
    parser.addini("connlab_provider", default="netns", help="default --lab-provider")
    parser.addini("connlab_docker_image", default=DEFAULT_IMAGE, help="default --lab-image")
    parser.addini("connlab_inventory", default="", help="default --lab-inventory")
    parser.addini("connlab_vagrant_dir", default="", help="default --lab-vagrant-dir")
    parser.addini("connlab_vm_kernel", default="", help="default --lab-vm-kernel")
    parser.addini("connlab_vagrant_provider", default="docker",
                  help="the provider vagrant makes lab machines with: docker (default), libvirt, virtualbox")


def _given(config: pytest.Config, dest: str, flag: str) -> str | None:
    """An option's value as typed, or None when it was not given; UsageError when given empty."""
    value: Any = config.getoption(dest)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise pytest.UsageError(f"{flag}: given empty; leave the option out for its default")
    if not value.isprintable():
        raise pytest.UsageError(f"{flag}: {value!r} has characters that cannot be printed")
    return value


def value(config: pytest.Config, dest: str, flag: str, ini: str) -> str:
    """The option if given, else the ini key (which may be empty)."""
    given = _given(config, dest, flag)
    if given is not None:
        return given
    from_ini: Any = config.getini(ini)
    if not isinstance(from_ini, str):
        raise pytest.UsageError(f"ini {ini}: expected one value")
    return from_ini.strip()


def selected_labs(config: pytest.Config, names: list[str]) -> list[str]:
    """The profiles --lab names, checked against those that exist."""
    option = _given(config, "connlab_lab", "--lab")
    if option is None:
        return [DEFAULT_LAB]
    wanted = [n.strip() for n in option.split(",")]
    if any(not n for n in wanted):
        raise pytest.UsageError(f"--lab: {option!r} has an empty name; give NAME[,NAME] or all")
    if wanted == ["all"]:
        return names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        shown = ", ".join(n if " " not in n else repr(n) for n in unknown)
        raise pytest.UsageError(f"--lab: unknown lab {shown}; known: {', '.join(names)}, or all")
    return list(dict.fromkeys(wanted))


def provider_name(config: pytest.Config) -> str:
    """--lab-provider (or ini connlab_provider), one of the known providers."""
    name = value(config, "connlab_provider", "--lab-provider", "connlab_provider") or "netns"
    if name not in PROVIDERS:
        raise pytest.UsageError(f"--lab-provider: unknown provider {name!r}; known: {', '.join(PROVIDERS)}")
    return name


def docker_image(config: pytest.Config) -> str:
    """--lab-image (or ini connlab_docker_image), shaped like an image reference."""
    image = value(config, "connlab_image", "--lab-image", "connlab_docker_image") or DEFAULT_IMAGE
    if not IMAGE_REFERENCE.fullmatch(image):
        raise pytest.UsageError(f"--lab-image: {image!r} is not an image reference (repository[:tag])")
    return image


def inventory_path(config: pytest.Config) -> Path | None:
    """--lab-inventory (or ini connlab_inventory) as a path, or None."""
    text = value(config, "connlab_inventory", "--lab-inventory", "connlab_inventory")
    return Path(text) if text else None


def vagrant_dir(config: pytest.Config, provider: str) -> Path:
    """--lab-vagrant-dir (or ini, or the rootdir); with the vagrant provider it must be a folder."""
    text = value(config, "connlab_vagrant_dir", "--lab-vagrant-dir", "connlab_vagrant_dir")
    folder = Path(text) if text else Path(config.rootpath)
    if provider == "vagrant" and not folder.is_dir():
        raise pytest.UsageError(f"--lab-vagrant-dir: {folder} is not a folder")
    return folder


def vm_kernel(config: pytest.Config) -> str:
    """--lab-vm-kernel (or ini connlab_vm_kernel): a Debian kernel package name, or empty."""
    from ..lab.providers.vmimage import KERNEL_PACKAGE
    name = value(config, "connlab_vm_kernel", "--lab-vm-kernel", "connlab_vm_kernel") or ""
    if name and not KERNEL_PACKAGE.match(name):
        raise pytest.UsageError(f"--lab-vm-kernel: {name!r} is not a Debian kernel package name "
                                "(linux-image-VERSION-FLAVOUR, e.g. linux-image-6.1.0-57-amd64)")
    return name


def vagrant_provider(config: pytest.Config) -> str:
    """ini connlab_vagrant_provider, one of the providers the Vagrantfile defines."""
    name = str(config.getini("connlab_vagrant_provider")).strip() or "docker"
    if name not in VAGRANT_PROVIDERS:
        raise pytest.UsageError(f"ini connlab_vagrant_provider: {name!r}; known: {', '.join(VAGRANT_PROVIDERS)}")
    return name


def _output_file(config: pytest.Config, dest: str, flag: str) -> Path | None:
    """An output file option as an absolute path that can be written at the end of the run, or None."""
    text = _given(config, dest, flag)
    if text is None:
        return None
    try:
        return check_target(Path(text))
    except JsonPathError as exc:
        raise pytest.UsageError(f"{flag}: {exc}") from None


def json_path(config: pytest.Config) -> Path | None:
    """--lab-json as an absolute path that can be written at the end of the run, or None."""
    return _output_file(config, "connlab_json", "--lab-json")


def baseline_save_path(config: pytest.Config) -> Path | None:
    """--lab-baseline-save as an absolute path that can be written at the end of the run, or None."""
    return _output_file(config, "connlab_baseline_save", "--lab-baseline-save")


def comparison(config: pytest.Config) -> tuple[dict[str, dict[str, Any]] | None, Tolerance | None]:
    """The baseline's rows (--lab-compare) and the tolerance (--lab-compare-fail); UsageError when
    either cannot be used, naming the option and the file."""
    text = _given(config, "connlab_compare", "--lab-compare")
    tolerances: list[str] | None = config.getoption("connlab_compare_fail")
    if text is None:
        if tolerances:
            raise pytest.UsageError("--lab-compare-fail needs --lab-compare FILE (the baseline to compare with)")
        return None, None
    try:
        tolerance = baseline.parse_tolerance(tolerances) if tolerances else None
    except BaselineError as exc:
        raise pytest.UsageError(str(exc)) from None
    try:
        return baseline.load(Path(text)), tolerance
    except BaselineError as exc:
        raise pytest.UsageError(f"--lab-compare: {exc}") from None


def plots_dir(config: pytest.Config) -> Path | None:
    """--lab-plots as an existing, writable folder (never a link), or None; UsageError otherwise."""
    text = _given(config, "connlab_plots", "--lab-plots")
    if text is None:
        return None
    from ..report import plots
    if not plots.available():
        raise pytest.UsageError("--lab-plots needs matplotlib: pip install 'pytest-connlab[report]'")
    folder = Path(text)
    if folder.is_symlink() or not folder.is_dir():
        raise pytest.UsageError(f"--lab-plots: {folder}: not a folder (connlab does not create it, nor follow a link)")
    try:
        check_target(folder / ".connlab-plots")
    except JsonPathError as exc:
        raise pytest.UsageError(f"--lab-plots: {exc}") from None
    return folder.resolve()


def allure_dir(config: pytest.Config) -> Path | None:
    """Where allure-pytest writes results, when it is installed and asked to (--alluredir)."""
    if not config.pluginmanager.hasplugin("allure_pytest"):
        return None
    folder = getattr(config.option, "allure_report_dir", None)
    return Path(folder).resolve() if folder else None
