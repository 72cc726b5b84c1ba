"""Bootstrap intervals and paired comparisons against scipy on the same numbers."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from captum_ext.metrics.statistics import bootstrap_interval, paired_comparison


@pytest.mark.parametrize("n,seed", [(7, 0), (40, 3), (200, 11)])
def test_bootstrap_equals_scipy_percentile(n, seed):
    values = np.random.default_rng(100 + n).gamma(2.0, size=n)
    ours = bootstrap_interval(values, confidence=0.95, n_resamples=2000, seed=seed)
    theirs = stats.bootstrap((values,), np.mean, confidence_level=0.95, n_resamples=2000,
                             method="percentile", rng=np.random.default_rng(seed)).confidence_interval
    assert ours.low == pytest.approx(theirs.low, rel=1e-12, abs=1e-12)
    assert ours.high == pytest.approx(theirs.high, rel=1e-12, abs=1e-12)
    assert ours.mean == pytest.approx(values.mean())


def test_bootstrap_leaves_out_nan_and_accepts_tensors():
    values = torch.tensor([1.0, float("nan"), 3.0, 2.0, float("inf"), 5.0])
    r = bootstrap_interval(values, n_resamples=500, seed=1)
    clean = bootstrap_interval([1.0, 3.0, 2.0, 5.0], n_resamples=500, seed=1)
    assert (r.n, r.n_nan) == (4, 2)
    assert (r.mean, r.low, r.high) == (clean.mean, clean.low, clean.high)


def test_bootstrap_degenerate_and_bad_input():
    r = bootstrap_interval([float("nan")])
    assert math.isnan(r.mean) and r.n == 0
    one = bootstrap_interval([2.0])
    assert one.mean == 2.0 and math.isnan(one.low)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_interval([1.0, 2.0], confidence=1.0)
    with pytest.raises(ValueError, match="values"):
        bootstrap_interval(np.zeros((2, 2)))


@pytest.mark.parametrize("n", [8, 30, 80])
def test_paired_comparison_matches_scipy(n):
    rng = np.random.default_rng(n)
    reference = rng.normal(size=n)
    values = reference + rng.normal(0.3, 1.0, size=n)
    values[1] = np.nan  # one unpaired image is dropped from both
    c = paired_comparison(values, reference, n_resamples=1000, seed=4)
    keep = np.isfinite(values)
    diff = values[keep] - reference[keep]
    assert c.n == n - 1
    assert c.mean_difference == pytest.approx(diff.mean())
    assert c.p_value == pytest.approx(stats.wilcoxon(values[keep], reference[keep]).pvalue, rel=1e-12)
    ci = stats.bootstrap((diff,), np.mean, n_resamples=1000, method="percentile",
                         rng=np.random.default_rng(4)).confidence_interval
    assert (c.low, c.high) == pytest.approx((ci.low, ci.high), rel=1e-12)


def test_paired_comparison_identical_and_mismatch():
    c = paired_comparison([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], n_resamples=100)
    assert c.mean_difference == 0.0 and math.isnan(c.p_value)
    with pytest.raises(ValueError, match="reference"):
        paired_comparison([1.0, 2.0], [1.0])


@pytest.mark.parametrize("n", [7, 101])
def test_bootstrap_in_chunks_draws_what_scipy_draws(monkeypatch, n):
    """Large data sets are resampled in chunks (bounded memory); the interval must not change."""
    from captum_ext.metrics import statistics

    values = np.random.default_rng(n).normal(size=n)
    whole = bootstrap_interval(values, n_resamples=1001, seed=2)
    monkeypatch.setattr(statistics, "_MAX_DRAWS", 5 * n)  # chunks of 4 rows, the last one odd
    chunked = bootstrap_interval(values, n_resamples=1001, seed=2)
    theirs = stats.bootstrap((values,), np.mean, n_resamples=1001, method="percentile",
                             rng=np.random.default_rng(2)).confidence_interval
    assert (chunked.low, chunked.high) == (whole.low, whole.high)
    assert (chunked.low, chunked.high) == pytest.approx((theirs.low, theirs.high), rel=1e-12)
