"""Statistics for per-image metric values: bootstrap intervals and paired comparisons.

A summary a paper can cite reports, per method, the mean over images with a 95% interval, and
for every method against a reference the mean paired difference (same images), its interval
and a Wilcoxon signed-rank p-value.

- :func:`bootstrap_interval`: the percentile bootstrap of the mean. With the same seed it draws
  exactly what ``scipy.stats.bootstrap(..., method="percentile", rng=np.random.default_rng(seed))``
  draws (``n_resamples`` rows of ``n`` indices in one call), so the two intervals agree.
- :func:`paired_comparison`: mean of ``values - reference`` over the images where both are
  finite, its bootstrap interval and ``scipy.stats.wilcoxon``'s two-sided p-value (scipy ships
  with scikit-image, a dependency of this package).

NaN values (a metric undefined for an image) are left out and counted, never treated as 0.
"""

import math
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
from torch import Tensor

from captum_ext._checks import check_fraction, check_int_at_least

ArrayLike = Union[Sequence[float], np.ndarray, Tensor]

#: Most bootstrap indices drawn at once (memory: 8 bytes each).
_MAX_DRAWS = 2**23

__all__ = ["BootstrapInterval", "PairedComparison", "bootstrap_interval", "paired_comparison"]


def _as_array(name: str, values: ArrayLike) -> np.ndarray:
    if isinstance(values, Tensor):
        values = values.detach().cpu().double().numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`{name}` must be a sequence of numbers, got {type(values).__name__}") from error
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional (one value per image), got shape {array.shape}")
    return array


@dataclass(frozen=True)
class BootstrapInterval:
    """Mean of the finite values and its percentile-bootstrap interval.

    Attributes:
        mean (float): mean of the finite values (NaN if there are none).
        low (float): lower end of the interval (NaN for fewer than 2 finite values).
        high (float): upper end.
        n (int): number of finite values used.
        n_nan (int): number of values left out (NaN or infinite).
    """

    mean: float
    low: float
    high: float
    n: int
    n_nan: int


def _percentile_bootstrap(
    values: np.ndarray, confidence: float, n_resamples: int, seed: int
) -> "tuple[float, float]":
    n = values.shape[0]
    if n < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    # Resamples in chunks of an even number of rows (bounded memory for 50k images): numpy's
    # bounded 32-bit draws are buffered in pairs within a call, so even-sized chunks draw the
    # same stream as scipy's single call of shape (n_resamples, n).
    rows = max(2, (_MAX_DRAWS // n) // 2 * 2)
    means = np.empty(n_resamples, dtype=np.float64)
    for lo in range(0, n_resamples, rows):
        count = min(rows, n_resamples - lo)
        means[lo:lo + count] = values[rng.integers(0, n, (count, n))].mean(axis=-1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_interval(
    values: ArrayLike, confidence: float = 0.95, n_resamples: int = 9999, seed: int = 0
) -> BootstrapInterval:
    """Percentile-bootstrap interval of the mean of per-image values (NaNs left out).

    Args:
        values (sequence, ndarray or Tensor): one value per image.
        confidence (float): coverage of the interval, in (0, 1). Default 0.95.
        n_resamples (int): bootstrap resamples. Default 9999 (scipy's default).
        seed (int): seed of ``numpy.random.default_rng``. Default 0.

    Returns:
        BootstrapInterval: mean, low, high, n, n_nan.

    Examples::

        >>> r = bootstrap_interval([1.0, 2.0, 3.0, 4.0, float("nan")], n_resamples=999)
        >>> r.mean, r.n, r.n_nan, r.low < 2.5 < r.high
        (2.5, 4, 1, True)
    """
    array = _as_array("values", values)
    check_fraction("confidence", confidence)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"`confidence` must lie in (0, 1), got {confidence}")
    check_int_at_least("n_resamples", n_resamples, 1)
    finite = array[np.isfinite(array)]
    n_nan = int(array.shape[0] - finite.shape[0])
    mean = float(finite.mean()) if finite.size else math.nan
    low, high = _percentile_bootstrap(finite, confidence, n_resamples, int(seed))
    return BootstrapInterval(mean, low, high, int(finite.shape[0]), n_nan)


@dataclass(frozen=True)
class PairedComparison:
    """A method against a reference on the same images.

    Attributes:
        mean_difference (float): mean of ``values - reference`` over the paired finite images.
        low (float): lower end of its bootstrap interval.
        high (float): upper end.
        p_value (float): two-sided Wilcoxon signed-rank p-value (``scipy.stats.wilcoxon``
            with its defaults); NaN when there are no non-zero differences.
        n (int): images where both values are finite.
    """

    mean_difference: float
    low: float
    high: float
    p_value: float
    n: int


def paired_comparison(
    values: ArrayLike,
    reference: ArrayLike,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
) -> PairedComparison:
    """Paired comparison of per-image values against a reference method on the same images.

    Args:
        values (sequence, ndarray or Tensor): the method's value per image.
        reference (sequence, ndarray or Tensor): the reference's value per image, same order.
        confidence (float): coverage of the interval. Default 0.95.
        n_resamples (int): bootstrap resamples. Default 9999.
        seed (int): seed of the bootstrap. Default 0.

    Returns:
        PairedComparison: mean difference, interval, Wilcoxon p-value, number of pairs.

    Examples::

        >>> c = paired_comparison([0.2, 0.4, 0.5, 0.7, 0.9, 0.3], [0.1, 0.1, 0.2, 0.3, 0.4, 0.0],
        ...                       n_resamples=999)
        >>> round(c.mean_difference, 3), c.n, round(c.p_value, 4)
        (0.317, 6, 0.0312)
    """
    a = _as_array("values", values)
    b = _as_array("reference", reference)
    if a.shape != b.shape:
        raise ValueError(f"`values` and `reference` must have one value per image each, got {a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    diff = a[keep] - b[keep]
    interval = bootstrap_interval(diff, confidence, n_resamples, seed)
    return PairedComparison(interval.mean, interval.low, interval.high, _wilcoxon(diff), int(diff.shape[0]))


def _wilcoxon(diff: np.ndarray) -> float:
    if not np.any(diff != 0):
        return math.nan
    from scipy.stats import wilcoxon

    return float(wilcoxon(diff).pvalue)
