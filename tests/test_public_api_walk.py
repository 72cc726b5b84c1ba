"""The public-API walk (issue 13.2), one test per class of defect, parametrised over every public name.

The cases live in ``tests/public_api.py`` (``API``); a name is covered by adding its entry there
(``test_public_api_coverage.py`` fails until it has one). Each case asserts the exact error type
with a message naming the argument, or the exact correct result.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, List

import pytest
from public_api import API, DEFECTS, Case
from public_api_known import KNOWN

#: test function -> class of defect (the keys of tests/public_api_known.py)
FUNCTIONS = {
    "nan": "test_nan",
    "empty": "test_empty_batch",
    "shapes": "test_shapes",
    "params": "test_bad_parameters",
    "targets": "test_targets",
    "model_state": "test_model_state",
}


def _params(defect: str) -> List[Any]:
    out = []
    for key in sorted(API):
        cases = API[key][defect]
        if isinstance(cases, str):
            out.append(pytest.param(key, None, id=f"{key}-n/a", marks=pytest.mark.skip(reason=f"n/a: {cases}")))
            continue
        for case in cases:
            pid = f"{key}-{case.id}"
            reason = case.xfail or KNOWN.get(f"{FUNCTIONS[defect]}[{pid}]")
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(key, case, id=pid, marks=marks))
    return out


def _run(case: Case) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if case.raises is not None:
            with pytest.raises(case.raises) as info:
                case.call()
            message = str(info.value)
            assert re.search(case.names or "", message), f"message does not name {case.names!r}: {message!r}"
            return
        out = case.call()
    assert case.check is not None
    case.check(out)


@pytest.mark.parametrize("key, case", _params("nan"))
def test_nan(key: str, case: Case) -> None:
    """NaN / inf in inputs: ValueError naming the argument, or NaN for exactly the affected images."""
    _run(case)


@pytest.mark.parametrize("key, case", _params("empty"))
def test_empty_batch(key: str, case: Case) -> None:
    """A batch of 0: an empty result of the right shape."""
    _run(case)


@pytest.mark.parametrize("key, case", _params("shapes"))
def test_shapes(key: str, case: Case) -> None:
    """Wrong shapes raise naming the argument; the documented alternatives give the same result."""
    _run(case)


@pytest.mark.parametrize("key, case", _params("params"))
def test_bad_parameters(key: str, case: Case) -> None:
    """NaN, inf, negative, out-of-range and wrong-type parameters raise naming the parameter."""
    _run(case)


@pytest.mark.parametrize("key, case", _params("targets"))
def test_targets(key: str, case: Case) -> None:
    """A target list / tensor must have one entry per example (Captum's rule)."""
    _run(case)


@pytest.mark.parametrize("key, case", _params("model_state"))
def test_model_state(key: str, case: Case) -> None:
    """A model that raises mid-forward and a model in train mode are left as they were."""
    _run(case)


def test_every_defect_class_is_walked() -> None:
    assert set(DEFECTS) == {"nan", "empty", "shapes", "params", "targets", "model_state"}
