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
                     help="also run the whole reproduction suite on every profile (about 24 minutes; "
                          "CI runs it as a step of its own: pytest tests --all-profiles -m all_profiles)")


def pytest_configure(config):
    config.addinivalue_line("markers", "all_profiles: the whole suite on every profile (runs with --all-profiles)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--all-profiles"):
        return
    skip = pytest.mark.skip(reason="the whole suite on every profile runs with --all-profiles "
                                   "(about 24 minutes; CI runs it as a step of its own)")
    for item in items:
        if "all_profiles" in item.keywords:
            item.add_marker(skip)
