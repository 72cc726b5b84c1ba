"""Similarity of attribution maps: ranks, Spearman, Pearson, SSIM, HOG.

The measures of the sanity checks (Adebayo et al., NeurIPS 2018), batched over images, and
the one average-rank function of the package (also used by the ROC AUC of
:mod:`captum_ext.metrics.localization`).

Chosen here: a map is reduced to one value per pixel, the channel sum (``spearman``) or the
channel sum of ``|a|`` (``spearman_abs``); SSIM and HOG compare the ``|a|`` maps normalized as
the PAIR saliency library's grayscale visualization (minimum to 0, 99th percentile to 1,
clipped); SSIM is a batched torch re-implementation of scikit-image's default
``structural_similarity`` (7 x 7 uniform window, sample covariance, K1 = 0.01, K2 = 0.03,
``data_range = 1``) and HOG of ``skimage.feature.hog`` (9 orientations, 8 x 8 cells, 3 x 3
blocks, L2-Hys); both are tested against scikit-image.
"""

import math
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from captum_ext._checks import (
    as_map_batch,
    check_int_at_least,
    check_number,
    check_positive,
    check_tensor,
    nonfinite_rows,
)
from captum_ext._utils import warn_external
from captum_ext.metrics._common import nonfinite_images

#: The similarity measures reported per stage, in plotting order.
MEASURES: Tuple[str, ...] = ("spearman_abs", "spearman", "ssim", "hog")

__all__ = [
    "MEASURES",
    "average_ranks",
    "hog_features",
    "map_similarities",
    "normalise_abs_map",
    "normalize_abs_map",
    "pearson",
    "spearman",
    "ssim",
]


def average_ranks(values: Tensor) -> Tensor:
    """1-based average ranks along dim 1 (ties share their mean rank, as ``scipy.stats.rankdata``).

    The one rank function of the package (Spearman and the ROC AUC use it).

    Args:
        values (Tensor): (B, N) values, no NaN.

    Returns:
        Tensor: (B, N) float64 ranks in [1, N].

    Examples::

        >>> average_ranks(torch.tensor([[3.0, 1.0, 3.0, 2.0]])).tolist()
        [[3.5, 1.0, 3.5, 2.0]]
    """
    check_tensor("values", values, dims=(2,), finite=True)
    return _average_ranks(values)


def _average_ranks(values: Tensor) -> Tensor:
    """:func:`average_ranks` without the checks (callers mask non-finite rows themselves)."""
    ordered = values.sort(dim=1).values.contiguous()
    below = torch.searchsorted(ordered, values.contiguous(), right=False)
    upto = torch.searchsorted(ordered, values.contiguous(), right=True)
    return (below + upto + 1).to(torch.float64) / 2.0


def pearson(x: Tensor, y: Tensor) -> Tensor:
    """Pearson correlation of the rows of ``x`` and ``y`` (B, N); NaN where a row is constant.

    Examples::

        >>> pearson(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[2.0, 4.0, 7.0]])).item() > 0.98
        True
    """
    x = x.to(torch.float64).flatten(1)
    y = y.to(torch.float64).flatten(1)
    if x.shape != y.shape:
        raise ValueError(f"`x` and `y` must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    xc = x - x.mean(dim=1, keepdim=True)
    yc = y - y.mean(dim=1, keepdim=True)
    denominator = xc.norm(dim=1) * yc.norm(dim=1)
    r = (xc * yc).sum(dim=1) / denominator
    constant = (x.amax(dim=1) == x.amin(dim=1)) | (y.amax(dim=1) == y.amin(dim=1))
    return r.clamp(-1.0, 1.0).masked_fill(constant, math.nan)


def spearman(x: Tensor, y: Tensor) -> Tensor:
    """Spearman rank correlation of the rows of ``x`` and ``y`` (any shape (B, ...)).

    Average ranks for ties (as ``scipy.stats.spearmanr``); NaN where a row is constant.

    Examples::

        >>> round(spearman(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([[4.0, 1.0, 9.0, 16.0]])).item(), 6)
        0.8
    """
    x = x.flatten(1)
    y = y.flatten(1)
    if x.shape != y.shape:
        raise ValueError(f"`x` and `y` must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    bad = nonfinite_rows(x, y)
    x64 = x.to(torch.float64).masked_fill(bad.view(-1, 1), 0.0)
    y64 = y.to(torch.float64).masked_fill(bad.view(-1, 1), 0.0)
    return pearson(_average_ranks(x64), _average_ranks(y64)).masked_fill(bad, math.nan)


def ssim(x: Tensor, y: Tensor, data_range: float = 1.0, win_size: int = 7) -> Tensor:
    """Mean structural similarity of two batches of gray images, as scikit-image computes it.

    The same numbers as ``skimage.metrics.structural_similarity(x, y, data_range=data_range)``
    with its defaults: a ``win_size`` uniform window, sample covariance, K1 = 0.01, K2 = 0.03,
    and the mean over the pixels whose window fits inside the image.

    Args:
        x (Tensor): (B, H, W) or (B, 1, H, W) images.
        y (Tensor): images of the same shape.
        data_range (float): the value range of the images. Default 1.
        win_size (int): odd window side, at most min(H, W). Default 7.

    Returns:
        Tensor: (B,) float64.

    Examples::

        >>> x = torch.rand(2, 16, 16)
        >>> ssim(x, x).tolist()
        [1.0, 1.0]
    """
    check_positive("data_range", data_range)
    check_int_at_least("win_size", win_size, 3)
    if win_size % 2 == 0:
        raise ValueError(f"`win_size` must be odd, got {win_size}")
    x = x.to(torch.float64)
    y = y.to(torch.float64)
    if x.dim() == 3:
        x, y = x.unsqueeze(1), y.unsqueeze(1)
    if x.shape != y.shape or x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"`x` and `y` must both be (B, H, W) or (B, 1, H, W), got {tuple(x.shape)}, {tuple(y.shape)}")
    if min(x.shape[-2:]) < win_size:
        raise ValueError(f"images of size {tuple(x.shape[-2:])} are smaller than `win_size` {win_size}")
    pool = lambda t: F.avg_pool2d(t, win_size, stride=1)  # noqa: E731 - the 'valid' part only
    ux, uy = pool(x), pool(y)
    uxx, uyy, uxy = pool(x * x), pool(y * y), pool(x * y)
    n = win_size * win_size
    cov_norm = n / (n - 1.0)
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3))


def hog_features(images: Tensor, orientations: int = 9, cell: int = 8, block: int = 3) -> Tensor:
    """Histogram-of-oriented-gradients features of gray images, as ``skimage.feature.hog``.

    The same features, in the same order, as ``skimage.feature.hog(image, orientations,
    (cell, cell), (block, block), block_norm="L2-Hys")``: central-difference gradients (zero on
    the border), unsigned orientation bins without interpolation, cell means, L2-Hys block
    normalisation; batched.

    Args:
        images (Tensor): (B, H, W) or (B, 1, H, W); H and W at least ``cell * block``.
        orientations (int): orientation bins over [0, 180) degrees. Default 9.
        cell (int): cell side in pixels. Default 8.
        block (int): block side in cells. Default 3.

    Returns:
        Tensor: (B, F) float64.

    Examples::

        >>> hog_features(torch.rand(2, 32, 32)).shape
        torch.Size([2, 324])
    """
    check_int_at_least("orientations", orientations, 1)
    check_int_at_least("cell", cell, 1)
    check_int_at_least("block", block, 1)
    x = images.to(torch.float64)
    x = x.squeeze(1) if x.dim() == 4 and x.shape[1] == 1 else x
    if x.dim() != 3:
        raise ValueError(f"`images` must be (B, H, W) or (B, 1, H, W), got {tuple(images.shape)}")
    n_rows, n_cols = x.shape[1] // cell, x.shape[2] // cell
    if n_rows < block or n_cols < block:
        raise ValueError(f"images of size {tuple(x.shape[1:])} are smaller than one block ({cell * block} pixels)")
    g_row = torch.zeros_like(x)
    g_col = torch.zeros_like(x)
    g_row[:, 1:-1, :] = x[:, 2:, :] - x[:, :-2, :]
    g_col[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    magnitude = torch.hypot(g_col, g_row)
    orientation = torch.rad2deg(torch.atan2(g_row, g_col)).remainder(180.0)
    edges = (180.0 / orientations) * torch.arange(1, orientations, dtype=torch.float64, device=x.device)
    bins = torch.bucketize(orientation, edges, right=True)  # number of edges <= orientation
    votes = F.one_hot(bins, orientations).to(torch.float64) * magnitude.unsqueeze(-1)  # (B, H, W, O)
    votes = votes[:, : n_rows * cell, : n_cols * cell].permute(0, 3, 1, 2)
    histogram = F.avg_pool2d(votes, cell)  # (B, O, n_rows, n_cols): cell sums / cell area
    blocks = histogram.unfold(2, block, 1).unfold(3, block, 1)  # (B, O, bR, bC, block, block)
    blocks = blocks.permute(0, 2, 3, 4, 5, 1)  # skimage's order: (bR, bC, block, block, O)
    eps2 = 1e-5**2
    out = blocks / torch.sqrt(blocks.pow(2).sum(dim=(3, 4, 5), keepdim=True) + eps2)
    out = out.clamp(max=0.2)
    out = out / torch.sqrt(out.pow(2).sum(dim=(3, 4, 5), keepdim=True) + eps2)
    return out.flatten(1)


def normalize_abs_map(attributions: Tensor, percentile: float = 99.0) -> Tensor:
    """``|a|`` summed over channels, scaled so its minimum is 0 and its ``percentile`` is 1, clipped.

    (The PAIR saliency library's ``VisualizeImageGrayscale``, which the sanity-check paper's
    code uses.) A constant map becomes all zeros.

    Args:
        attributions (Tensor): (B, C, H, W) maps.
        percentile (float): the percentile mapped to 1, in (0, 100]. Default 99.

    Returns:
        Tensor: (B, H, W) float64 in [0, 1].

    Examples::

        >>> normalize_abs_map(torch.tensor([[[[0.0, -2.0], [4.0, 1.0]]]]), percentile=100).tolist()
        [[[0.0, 0.5], [1.0, 0.25]]]
    """
    check_number("percentile", percentile, low=0.0, high=100.0, low_open=True)
    a = attributions.detach().to(torch.float64).abs().sum(dim=1)
    if a.shape[0] == 0:
        return a
    bad = nonfinite_rows(a)
    if bool(bad.any()):
        rows = bad.view(-1, *[1] * (attributions.dim() - 1))
        clean = normalize_abs_map(attributions.masked_fill(rows, 0.0), percentile)
        return clean.masked_fill(bad.view(-1, 1, 1), math.nan)
    flat = a.flatten(1)
    vmin = flat.amin(dim=1)
    vmax = torch.quantile(flat, percentile / 100.0, dim=1)
    span = (vmax - vmin).view(-1, 1, 1)
    scaled = (a - vmin.view(-1, 1, 1)) / span.clamp_min(torch.finfo(torch.float64).tiny)
    return torch.where(span > 0, scaled.clamp(0.0, 1.0), torch.zeros_like(a))


def map_similarities(reference: Tensor, maps: Tensor) -> Dict[str, Tensor]:
    """The four similarities of each map to its reference map, per image.

    Args:
        reference (Tensor): (B, C, H, W) or (B, H, W) maps of the trained model.
        maps (Tensor): maps of a randomized model, the same shape.

    Returns:
        dict: ``{"spearman_abs", "spearman", "ssim", "hog"}`` -> (B,) float64. NaN for an image
        whose map or reference holds a NaN or an inf; HOG is NaN for images smaller than
        24 x 24 pixels, SSIM for images smaller than 7 x 7.

    Examples::

        >>> a = torch.rand(2, 3, 32, 32)
        >>> sorted(map_similarities(a, a)), map_similarities(a, a)["ssim"].tolist()
        (['hog', 'spearman', 'spearman_abs', 'ssim'], [1.0, 1.0])
    """
    reference = as_map_batch("reference", reference)
    maps = as_map_batch("maps", maps)
    if reference.shape != maps.shape:
        raise ValueError(
            f"`maps` must match the reference maps {tuple(reference.shape)}, got {tuple(maps.shape)}"
        )
    ref64, map64 = reference.detach().to(torch.float64), maps.detach().to(torch.float64)
    bad = nonfinite_images(ref64) | nonfinite_images(map64)
    ref64 = ref64.masked_fill(bad.view(-1, 1, 1, 1), 0.0)
    map64 = map64.masked_fill(bad.view(-1, 1, 1, 1), 0.0)
    out = {
        "spearman_abs": spearman(ref64.abs().sum(1), map64.abs().sum(1)),
        "spearman": spearman(ref64.sum(1), map64.sum(1)),
    }
    ref_n, map_n = normalize_abs_map(ref64), normalize_abs_map(map64)
    height, width = ref_n.shape[-2:]
    nan = torch.full((ref_n.shape[0],), math.nan, dtype=torch.float64, device=ref_n.device)
    out["ssim"] = ssim(ref_n, map_n) if min(height, width) >= 7 else nan
    out["hog"] = pearson(hog_features(ref_n), hog_features(map_n)) if min(height, width) >= 24 else nan
    return {name: values.masked_fill(bad, math.nan) for name, values in out.items()}


def normalise_abs_map(attributions: Tensor, percentile: float = 99.0) -> Tensor:
    """Deprecated British spelling of :func:`normalize_abs_map` (one release).

    Examples::

        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     normalise_abs_map(torch.ones(1, 1, 2, 2)).shape
        torch.Size([1, 2, 2])
    """
    warn_external(
        "`normalise_abs_map` is deprecated and will be removed in the next release; use "
        "`normalize_abs_map`",
        DeprecationWarning,
    )
    return normalize_abs_map(attributions, percentile)
