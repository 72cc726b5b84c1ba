import os

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield


def pytest_configure(config):
    # keep test runs off the user's real cache when CI asks for it
    os.environ.setdefault("CAPTUM_EXT_TEST", "1")
