"""Mark the notebooks in tutorials/ as ``slow`` end-to-end runs (CI runs them; ``make test-fast`` skips them).

This lives at the root: two conftest.py files would clash under ``--doctest-modules``.
"""

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
