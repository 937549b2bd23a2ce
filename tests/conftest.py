"""Shared fixtures of the project's tests."""
import pytest

from pytest_connlab.errors import ProviderUnavailable
from pytest_connlab.lab.providers import get_provider


@pytest.fixture
def needs_netns():
    """Skip (with the provider's own reason) where network namespaces cannot be made."""
    try:
        get_provider("netns").check()
    except ProviderUnavailable as exc:
        pytest.skip(str(exc))


def pytest_addoption(parser):
    parser.addoption("--all-profiles", action="store_true",
                     help="also run the whole reproduction suite on every profile (with -n 6: about 4 minutes; "
                          "CI runs it as a step of its own: pytest tests --all-profiles -m all_profiles)")
    parser.addoption("--vm", action="store_true",
                     help="also run the vm provider's tests on qemu guests (CI runs them as a step of their "
                          "own: pytest tests --vm -m vm)")


def pytest_configure(config):
    config.addinivalue_line("markers", "all_profiles: the whole suite on every profile (runs with --all-profiles)")
    config.addinivalue_line("markers", "vm: the vm provider on qemu guests (runs with --vm)")


def pytest_collection_modifyitems(config, items):
    steps = {"all_profiles": ("--all-profiles", "the whole suite on every profile runs with --all-profiles "
                                                "(with -n 6: about 4 minutes; CI runs it as a step of its own)"),
             "vm": ("--vm", "the vm provider's tests on qemu guests run with --vm (CI runs them as a step "
                            "of their own)")}
    for marker, (option, reason) in steps.items():
        if config.getoption(option):
            continue
        skip = pytest.mark.skip(reason=reason)
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)
