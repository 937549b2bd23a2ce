"""pytest-connlab: connection-limit labs on real kernels, as pytest tests."""

__version__ = "0.1.0"
