"""Ground-truth localization metrics: the stamp distance and its companions.

Every function takes attributions in Captum's layout (a tensor (B, C, H, W) or (B, H, W), or a
tuple of such tensors for multi-input models) and binary ground-truth masks of the same spatial
layout ((B, 1, H, W) or (B, H, W); a tuple when the attributions are a tuple), and returns one
value per image, a float64 tensor (B,), NaN where the metric is undefined for that image. A 3-D
tensor is always a batch of 2-D maps, never one (C, H, W) image (``_checks.as_map_batch`` /
``as_mask_batch``). An image whose map holds a NaN or an inf gets NaN (``_checks.nonfinite_rows``),
never a number computed from it.
Channels are summed (after ``abs`` where asked); a tuple's tensors are concatenated per image.
Everything is batched tensor code: no Python loop over images or pixels.
"""

import math
from typing import Tuple, Union

import torch
from torch import Tensor

from captum_ext._checks import as_map_batch, as_mask_batch, check_number
from captum_ext.metrics._common import nonfinite_images
from captum_ext.metrics.similarity import _average_ranks

TensorOrTuple = Union[Tensor, Tuple[Tensor, ...]]

__all__ = [
    "flatten_maps",
    "stamp_distance",
    "pointing_game",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "roc_auc",
    "mean_and_interval",
]


def _flatten(
    attributions: TensorOrTuple, masks: TensorOrTuple, abs: bool
) -> Tuple[Tensor, Tensor, Tensor]:
    """Maps (B, N) float64 (NaN rows zeroed), masks (B, N) bool, and the NaN rows (B,) bool."""
    attrs = attributions if isinstance(attributions, tuple) else (attributions,)
    mask_tuple = masks if isinstance(masks, tuple) else (masks,)
    if isinstance(attributions, tuple) != isinstance(masks, tuple) or len(attrs) != len(mask_tuple):
        raise ValueError(
            "`masks` must have the structure of `attributions` (a tensor, or a tuple of equal length)"
        )
    if not attrs:
        raise ValueError("`attributions` must hold at least one tensor")
    flat_a, flat_m, bad = [], [], []
    for i, (a, m) in enumerate(zip(attrs, mask_tuple)):
        a_name = f"attributions[{i}]" if isinstance(attributions, tuple) else "attributions"
        m_name = f"masks[{i}]" if isinstance(attributions, tuple) else "masks"
        a = as_map_batch(a_name, a)
        if not (a.is_floating_point() or a.dtype in (torch.int32, torch.int64)):
            raise TypeError(f"`{a_name}` must be a real-valued tensor, got {a.dtype}")
        if a.shape[0] != as_map_batch("attributions", attrs[0]).shape[0]:
            raise ValueError("all attribution tensors must have the same batch size")
        m = as_mask_batch(m_name, m, a)
        a = a.detach().to(torch.float64)
        bad.append(nonfinite_images(a))
        a = a.abs() if abs else a
        flat_a.append(a.sum(dim=1).flatten(1))
        flat_m.append(m.flatten(1).to(a.device))
    nonfinite = torch.stack(bad).any(dim=0)
    values = torch.cat(flat_a, dim=1)
    values = values.masked_fill(nonfinite[:, None], 0.0)
    return values, torch.cat(flat_m, dim=1), nonfinite


def flatten_maps(
    attributions: TensorOrTuple, masks: TensorOrTuple, abs: bool = False
) -> Tuple[Tensor, Tensor]:
    """Reduce attributions to one float64 value per pixel and masks to one bool per pixel.

    The shape policy of every metric: maps ``(B, C, H, W)`` or ``(B, H, W)`` (a 3-D tensor is
    never one ``(C, H, W)`` image), masks ``(B, 1, H, W)`` or ``(B, H, W)``, binary. Values are
    returned as they are (a NaN stays NaN).

    Args:
        attributions (Tensor or tuple of Tensor): (B, C, H, W) or (B, H, W) maps.
        masks (Tensor or tuple of Tensor): binary ground truth (B, 1, H, W) or (B, H, W).
        abs (bool): take ``abs`` of each entry before summing channels. Default False.

    Returns:
        (Tensor, Tensor): maps (B, N) float64 and masks (B, N) bool.

    Examples::

        >>> a, m = flatten_maps(torch.ones(2, 3, 4, 4), torch.zeros(2, 1, 4, 4))
        >>> a.shape, m.shape, a[0, 0].item()
        (torch.Size([2, 16]), torch.Size([2, 16]), 3.0)
        >>> flatten_maps(torch.ones(2, 4, 5), torch.zeros(2, 4, 5))[0].shape
        torch.Size([2, 20])
    """
    values, flat_masks, nonfinite = _flatten(attributions, masks, abs)
    if bool(nonfinite.any()):
        values = values.masked_fill(nonfinite[:, None], math.nan)
    return values, flat_masks


def _is_constant(values: Tensor) -> Tensor:
    return values.amax(dim=1) == values.amin(dim=1)


def _degenerate_mask(mask: Tensor) -> Tensor:
    count = mask.sum(dim=1)
    return (count == 0) | (count == mask.shape[1])


def stamp_distance(attributions: TensorOrTuple, masks: TensorOrTuple, abs: bool = False) -> Tensor:
    """The stamp distance: mean squared difference of the z-scored map and z-scored mask.

    ``D = mean((z(a) - z(m))^2) = 2 (1 - rho)`` with population standard deviations, ``rho`` the
    Pearson correlation of map and mask. 0 = perfect, 2 = chance, 4 = inverted; lower is better.
    Invariant to positive scaling and to adding a constant; flipping the sign gives ``4 - D``.
    A reconstruction of Jung and Kwon (IEEE Access 2020), of which only the abstract was read.

    Args:
        attributions (Tensor or tuple of Tensor): maps (B, C, H, W) or (B, H, W); channels are
            summed.
        masks (Tensor or tuple of Tensor): stamp footprints, binary.
        abs (bool): take ``abs`` of the attributions before summing channels. Default False.

    Returns:
        Tensor: (B,) float64; NaN for a map with a NaN or inf, a constant map, or an empty or
        full mask.

    Examples::

        >>> mask = torch.zeros(1, 1, 4, 4); mask[..., :2, :2] = 1
        >>> round(stamp_distance(mask * 5 + 1, mask).item(), 6), stamp_distance(-mask, mask).item()
        (0.0, 4.0)
    """
    a, m, nonfinite = _flatten(attributions, masks, abs)
    m = m.to(torch.float64)
    za = (a - a.mean(dim=1, keepdim=True)) / a.std(dim=1, correction=0, keepdim=True)
    zm = (m - m.mean(dim=1, keepdim=True)) / m.std(dim=1, correction=0, keepdim=True)
    distance = (za - zm).pow(2).mean(dim=1)
    undefined = _is_constant(a) | _degenerate_mask(m.bool()) | nonfinite
    return distance.masked_fill(undefined, math.nan)


def pointing_game(attributions: TensorOrTuple, masks: TensorOrTuple, abs: bool = False) -> Tensor:
    """Pointing game: 1 if the map's maximum lies inside the mask, else 0.

    Ties are strict: a hit needs every pixel attaining the maximum to lie in the mask, so a
    constant map never hits (unless the mask is full, which is undefined).

    Args:
        attributions (Tensor or tuple of Tensor): maps (B, C, H, W) or (B, H, W); channels are
            summed.
        masks (Tensor or tuple of Tensor): binary ground truth (B, 1, H, W) or (B, H, W).
        abs (bool): take ``abs`` before summing channels. Default False.

    Returns:
        Tensor: (B,) float64 of 0/1; NaN for a map with a NaN or inf or an empty or full mask.

    Examples::

        >>> mask = torch.zeros(1, 1, 4, 4); mask[..., 0, 0] = 1
        >>> pointing_game(mask, mask).item(), pointing_game(torch.ones(1, 1, 4, 4), mask).item()
        (1.0, 0.0)
    """
    a, m, nonfinite = _flatten(attributions, masks, abs)
    at_max = a == a.amax(dim=1, keepdim=True)
    hit = (at_max & ~m).sum(dim=1) == 0
    return hit.to(torch.float64).masked_fill(_degenerate_mask(m) | nonfinite, math.nan)


def relevance_mass_accuracy(attributions: TensorOrTuple, masks: TensorOrTuple, abs: bool = False) -> Tensor:
    """Relevance mass accuracy: positive attribution inside the mask over all positive attribution.

    Args:
        attributions (Tensor or tuple of Tensor): maps (B, C, H, W) or (B, H, W); channels are
            summed.
        masks (Tensor or tuple of Tensor): binary ground truth (B, 1, H, W) or (B, H, W).
        abs (bool): use ``|a|`` (summed over channels) instead of the positive part. Default False.

    Returns:
        Tensor: (B,) float64 in [0, 1]; NaN for a map with a NaN or inf, where there is no
        positive attribution, or where the mask is empty or full.

    Examples::

        >>> mask = torch.zeros(1, 1, 2, 2); mask[..., 0, 0] = 1
        >>> relevance_mass_accuracy(torch.ones(1, 1, 2, 2), mask).item()
        0.25
    """
    a, m, nonfinite = _flatten(attributions, masks, abs)
    positive = a.clamp_min(0)
    total = positive.sum(dim=1)
    inside = (positive * m).sum(dim=1)
    result = inside / total
    return result.masked_fill((total == 0) | _degenerate_mask(m) | nonfinite, math.nan)


def relevance_rank_accuracy(attributions: TensorOrTuple, masks: TensorOrTuple, abs: bool = False) -> Tensor:
    """Relevance rank accuracy: the fraction of the top-K pixels (K = mask size) inside the mask.

    Ties at the K-th value are resolved by their expectation under random tie-breaking, so a
    constant map scores exactly the mask's area fraction.

    Args:
        attributions (Tensor or tuple of Tensor): maps (B, C, H, W) or (B, H, W); channels are
            summed.
        masks (Tensor or tuple of Tensor): binary ground truth (B, 1, H, W) or (B, H, W).
        abs (bool): take ``abs`` before summing channels. Default False.

    Returns:
        Tensor: (B,) float64 in [0, 1]; NaN for a map with a NaN or inf or an empty or full
        mask.

    Examples::

        >>> mask = torch.zeros(1, 1, 2, 2); mask[..., 0, :] = 1
        >>> relevance_rank_accuracy(mask, mask).item(), relevance_rank_accuracy(torch.ones(1, 1, 2, 2), mask).item()
        (1.0, 0.5)
    """
    a, m, nonfinite = _flatten(attributions, masks, abs)
    k = m.sum(dim=1)
    degenerate = _degenerate_mask(m) | nonfinite
    ordered = a.sort(dim=1, descending=True).values
    kth = ordered.gather(1, (k.clamp(1, a.shape[1]) - 1)[:, None])  # (B, 1)
    above = a > kth
    tied = a == kth
    hits_above = (above & m).sum(dim=1).to(torch.float64)
    slots = (k - above.sum(dim=1)).to(torch.float64)
    tied_share = (tied & m).sum(dim=1).to(torch.float64) / tied.sum(dim=1).to(torch.float64)
    result = (hits_above + slots * tied_share) / k.clamp_min(1).to(torch.float64)
    return result.masked_fill(degenerate, math.nan)


def roc_auc(attributions: TensorOrTuple, masks: TensorOrTuple, abs: bool = False) -> Tensor:
    """ROC AUC of the map as a score for mask membership (Mann-Whitney, ties count one half).

    Args:
        attributions (Tensor or tuple of Tensor): maps (B, C, H, W) or (B, H, W); channels are
            summed.
        masks (Tensor or tuple of Tensor): binary ground truth (B, 1, H, W) or (B, H, W).
        abs (bool): take ``abs`` before summing channels. Default False.

    Returns:
        Tensor: (B,) float64 in [0, 1]; 0.5 for a constant map; NaN for a map with a NaN or
        inf or an empty or full mask.

    Examples::

        >>> mask = torch.zeros(1, 1, 2, 2); mask[..., 0, 0] = 1
        >>> roc_auc(mask, mask).item(), roc_auc(-mask, mask).item(), roc_auc(torch.zeros(1, 1, 2, 2), mask).item()
        (1.0, 0.0, 0.5)
    """
    a, m, nonfinite = _flatten(attributions, masks, abs)
    rank = _average_ranks(a)
    n_pos = m.sum(dim=1).to(torch.float64)
    n_neg = m.shape[1] - n_pos
    rank_sum = (rank * m).sum(dim=1)
    auc = (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return auc.masked_fill(_degenerate_mask(m) | nonfinite, math.nan)


def mean_and_interval(values: Tensor, confidence: float = 0.95) -> Tuple[float, float, int]:
    """Mean of the finite values and the half-width of its normal-approximation interval.

    Args:
        values (Tensor): per-image values; NaNs are left out (and counted by the caller).
        confidence (float): 0.95 gives the 1.96-sigma half-width.

    Returns:
        (float, float, int): mean, half-width, number of finite values.

    Examples::

        >>> mean, half_width, count = mean_and_interval(torch.tensor([1.0, 3.0, float("nan")]))
        >>> mean, round(half_width, 3), count
        (2.0, 1.96, 2)
    """
    check_number("confidence", confidence, low=0.0, high=1.0, low_open=True, high_open=True)
    finite = values[torch.isfinite(values)].to(torch.float64)
    count = int(finite.numel())
    if count == 0:
        return math.nan, math.nan, 0
    mean = float(finite.mean())
    if count == 1:
        return mean, math.nan, 1
    z = float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(0.5 + confidence / 2, dtype=torch.float64)))
    return mean, z * float(finite.std(correction=1)) / math.sqrt(count), count
