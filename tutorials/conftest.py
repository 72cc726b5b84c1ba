"""The notebooks are end-to-end runs: mark them ``slow`` (CI runs them; ``make test-fast`` skips them)."""

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
