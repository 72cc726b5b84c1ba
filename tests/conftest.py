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


# --------------------------------------------------------------------------------------------
# kornia-style ``device`` and ``dtype`` fixtures (issue 14.6), available to every test file.
#
#   def test_x(device, dtype):          # runs on cpu (+ cuda when present) x float32, float64
#   def test_y(device, any_dtype):      # + bfloat16 / float16, for code that claims them
#
# ``--device cpu,cuda`` / ``--dtype float32`` narrow the run (comma lists; ``all`` = default).
# CUDA is parametrised only when ``torch.cuda.is_available()``; a CPU machine never runs a
# CPU-vs-CPU "device" test.
# --------------------------------------------------------------------------------------------

FLOAT_DTYPES = {"float32": torch.float32, "float64": torch.float64}
HALF_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def _available_devices():
    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    return out


def pytest_addoption(parser):
    group = parser.getgroup("captum_ext")
    group.addoption("--device", default="all", help="devices for the `device` fixture: cpu,cuda or all")
    group.addoption("--dtype", default="all", help="dtypes for the `dtype` fixtures: float32,float64,... or all")


def _selected(config, option, available):
    wanted = config.getoption(option)
    if wanted == "all":
        return list(available)
    names = [w.strip() for w in wanted.split(",") if w.strip()]
    return [n for n in names if n in available]


def _parametrized_by_test(metafunc, name):
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        if name in names:
            return True
    return False


def pytest_generate_tests(metafunc):
    """Parametrise ``device`` / ``dtype`` / ``any_dtype`` unless the test parametrises them itself."""
    config = metafunc.config
    if "device" in metafunc.fixturenames and not _parametrized_by_test(metafunc, "device"):
        devices = _selected(config, "--device", _available_devices())
        metafunc.parametrize("device", [torch.device(d) for d in devices], ids=devices)
    if "dtype" in metafunc.fixturenames and not _parametrized_by_test(metafunc, "dtype"):
        names = _selected(config, "--dtype", FLOAT_DTYPES)
        metafunc.parametrize("dtype", [FLOAT_DTYPES[n] for n in names], ids=names)
    if "any_dtype" in metafunc.fixturenames and not _parametrized_by_test(metafunc, "any_dtype"):
        table = {**FLOAT_DTYPES, **HALF_DTYPES}
        names = _selected(config, "--dtype", table)
        metafunc.parametrize("any_dtype", [table[n] for n in names], ids=names)


@pytest.fixture
def tolerance():
    """``(rtol, atol)`` for comparing results computed in ``dtype`` with an oracle."""

    def tol(dtype):
        return {
            torch.float64: (1e-10, 1e-12),
            torch.float32: (1e-5, 1e-6),
            torch.float16: (1e-2, 1e-3),
            torch.bfloat16: (2e-2, 1e-2),
        }[dtype]

    return tol
