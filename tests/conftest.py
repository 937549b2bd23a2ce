"""Shared fixtures of the project's tests."""
import pytest

from pytest_connlab.providers import ProviderUnavailable, get_provider


@pytest.fixture
def needs_netns():
    """Skip (with the provider's own reason) where network namespaces cannot be made."""
    try:
        get_provider("netns").check()
    except ProviderUnavailable as exc:
        pytest.skip(str(exc))
