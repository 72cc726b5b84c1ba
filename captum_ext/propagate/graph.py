"""Pixel graphs from a guide image: window offsets, colour features and affinity weights.

The graph has one node per pixel and an edge from each pixel to every pixel of the
``(2 r + 1) x (2 r + 1)`` window around it (inside the image). The weight of the edge ``i -> j`` is

``w_ij = exp(-|p_i - p_j|^2 / (2 sigma_s^2) - |c_i - c_j|^2 / (2 sigma_c^2))``

with ``p`` the pixel coordinates and ``c`` the guide's colour vector. The weights are stored as a
``(B, K, H, W)`` stencil, ``K = (2 r + 1)^2``: entry ``[b, k, y, x]`` is the weight between pixel
``(y, x)`` and pixel ``(y + dy_k, x + dx_k)`` of image ``b``, zero where the neighbour is outside
the image. The weights are symmetric (``w_ij = w_ji``) exactly, also in floating point.
"""

import math
from typing import List, Tuple

import torch
from torch import Tensor

from captum_ext._checks import check_finite, check_number
from captum_ext._utils import check_image_batch, check_int_at_least, check_positive

COLOR_SPACES = ("rgb", "lab")

# Lab coordinates are divided by this, so that ``sigma_c`` reads in units of 100 Lab (Delta E)
# and ``sigma_c = 0.1`` means about 10 Delta E: comparable to RGB values in [0, 1].
LAB_SCALE = 100.0


def check_all_finite(name: str, tensor: Tensor) -> None:
    """:func:`~captum_ext._checks.check_finite` with a fast path for large tensors.

    ``amax`` and ``amin`` propagate NaN and keep inf, so two plain reductions (no boolean map,
    ~10x faster on CPUs) decide; the full check runs only to word the error.

    Examples::

        >>> check_all_finite("x", torch.tensor([1.0, float("inf")]))
        Traceback (most recent call last):
        ...
        ValueError: `x` contains NaN or inf (1 of 2 values)
    """
    if tensor.numel() and tensor.is_floating_point():
        if not bool(torch.isfinite(tensor.amax()) & torch.isfinite(tensor.amin())):
            check_finite(name, tensor)


def window_offsets(radius: int) -> List[Tuple[int, int]]:
    r"""The ``(dy, dx)`` offsets of a square window, row-major; the centre is at index ``K // 2``.

    Args:
        radius (int): window radius ``r >= 0``; ``K = (2 r + 1)^2`` offsets.

    Returns:
        List of ``(dy, dx)`` pairs.

    Examples::

        >>> window_offsets(1)[:3], len(window_offsets(1)), window_offsets(1)[4]
        ([(-1, -1), (-1, 0), (-1, 1)], 9, (0, 0))
    """
    check_int_at_least("radius", radius, 0)
    span = range(-radius, radius + 1)
    return [(dy, dx) for dy in span for dx in span]


def shifted_slices(dy: int, dx: int, height: int, width: int) -> Tuple[Tuple[slice, slice], ...]:
    """Slices ``(target, source)``: ``target`` pixels whose neighbour at ``(dy, dx)`` is in-image.

    ``x[..., target][i] `` and ``x[..., source][i]`` are a pixel and its neighbour.
    """
    def span(shift: int, size: int) -> Tuple[slice, slice]:  # empty when |shift| >= size
        length = max(0, size - abs(shift))
        start_t, start_s = max(0, -shift), max(0, shift)
        return slice(start_t, start_t + length), slice(start_s, start_s + length)

    (ty, sy), (tx, sx) = span(dy, height), span(dx, width)
    return (ty, tx), (sy, sx)


def color_features(guide: Tensor, color_space: str = "rgb") -> Tensor:
    r"""The colour vectors ``c`` used by the affinity: the guide itself, or Lab / 100.

    Args:
        guide (Tensor): (B, C, H, W) image with values in [0, 1]; ``C = 3`` (RGB) for ``"lab"``.
        color_space (str): ``"rgb"`` (the guide's own channels, any ``C``) or ``"lab"``
            (CIE Lab through :func:`kornia.color.rgb_to_lab`, divided by 100).

    Returns:
        Tensor (B, C, H, W) of features.

    Examples::

        >>> white = torch.ones(1, 3, 2, 2)
        >>> color_features(white, "lab")[0, :, 0, 0].abs().round(decimals=2)
        tensor([1., 0., 0.])
    """
    check_image_batch("guide", guide)
    if color_space == "rgb":
        return guide
    if color_space == "lab":
        if guide.shape[1] != 3:
            raise ValueError(
                f"`color_space='lab'` needs an RGB guide with 3 channels, got {guide.shape[1]}"
            )
        from kornia.color import rgb_to_lab

        return rgb_to_lab(guide.clamp(0, 1)) / LAB_SCALE
    raise ValueError(f"`color_space` must be one of {COLOR_SPACES}, got {color_space!r}")


def min_max_scale(images: Tensor) -> Tensor:
    """Scale each image of a (B, ...) batch to [0, 1] (constant images map to 0).

    Examples::

        >>> min_max_scale(torch.tensor([[2.0, 4.0], [1.0, 1.0]]))
        tensor([[0., 1.],
                [0., 0.]])
    """
    flat = images.detach().flatten(1)
    low = flat.amin(dim=1, keepdim=True)
    span = flat.amax(dim=1, keepdim=True) - low
    scaled = (flat - low) / torch.where(span > 0, span, torch.ones_like(span))
    return scaled.view_as(images)


def stencil_affinity(
    guide: Tensor,
    radius: int = 1,
    sigma_s: float = 1.0,
    sigma_c: float = 0.1,
    color_space: str = "rgb",
    self_loop: bool = True,
    min_weight: float = 1e-10,
) -> Tensor:
    r"""Affinity weights of the window graph of ``guide`` as a (B, K, H, W) stencil.

    Weights below ``min_weight`` are flushed to 0 (tiny weights change nothing at any useful
    tolerance and make denormal floats, which are very slow on CPUs). A pixel left with no edge
    at all (only possible with ``self_loop=False``) gets a self-loop of weight 1, so every row of
    the transition matrix sums to 1.

    Args:
        guide (Tensor): (B, C, H, W) guide image, values in [0, 1].
        radius (int): window radius ``r``; ``K = (2 r + 1)^2``. Default 1.
        sigma_s (float): spatial bandwidth in pixels (``inf`` for a flat window). Default 1.0.
        sigma_c (float): colour bandwidth (``inf`` ignores colour). Default 0.1.
        color_space (str): ``"rgb"`` or ``"lab"``, see :func:`color_features`.
        self_loop (bool): keep the edge ``i -> i`` (weight 1). Default True.
        min_weight (float): weights below this are set to 0. Default 1e-10.

    Returns:
        Tensor (B, K, H, W): ``[b, k, y, x]`` is ``w`` between ``(y, x)`` and its ``k``-th
        neighbour (:func:`window_offsets`), 0 outside the image.

    Examples::

        >>> w = stencil_affinity(torch.zeros(1, 1, 3, 3), radius=1, sigma_s=1.0)
        >>> w.shape, w[0, :, 1, 1].sum().item() > 1, w[0, 0, 0, 0].item()
        (torch.Size([1, 9, 3, 3]), True, 0.0)
    """
    check_image_batch("guide", guide)
    check_all_finite("guide", guide)
    check_int_at_least("radius", radius, 0)
    check_positive("sigma_s", sigma_s, allow_inf=True)
    check_positive("sigma_c", sigma_c, allow_inf=True)
    check_positive("min_weight", min_weight, allow_zero=True)
    features = color_features(guide.detach(), color_space)
    batch, _, height, width = features.shape
    offsets = window_offsets(radius)
    center = len(offsets) // 2
    weights = features.new_zeros(batch, len(offsets), height, width)  # 0 outside the image
    if self_loop and not 1.0 < min_weight:
        weights[:, center] = 1.0  # exp(0): the edge i -> i
    # w_ij = w_ji: each pair of opposite offsets is computed once, on the pixels whose
    # neighbour is inside the image, and written to both (exactly symmetric by construction)
    for k in range(center + 1, len(offsets)):  # K / 2 offsets, never pixels
        dy, dx = offsets[k]
        (ty, tx), (sy, sx) = shifted_slices(dy, dx, height, width)
        if ty.stop <= ty.start or tx.stop <= tx.start:
            continue
        diff = features[..., sy, sx] - features[..., ty, tx]
        exponent = diff.square_().sum(dim=1).div_(2.0 * sigma_c**2)
        exponent += (dy * dy + dx * dx) / (2.0 * sigma_s**2)
        edge = exponent.neg_().exp_()
        edge.masked_fill_(edge < min_weight, 0.0)
        weights[:, k, ty, tx] = edge
        weights[:, len(offsets) - 1 - k, sy, sx] = edge  # offset -(dy, dx): from j back to i
    if not self_loop:
        isolated = weights.sum(dim=1) == 0
        weights[:, center].masked_fill_(isolated, 1.0)
    return weights


def leakage_weight(delta: float, sigma_c: float) -> float:
    """The colour factor ``exp(-delta^2 / (2 sigma_c^2))`` of an edge across a colour step.

    Args:
        delta (float): the colour step (a distance in the guide's colour space).
        sigma_c (float): the colour bandwidth, > 0 (``inf`` ignores colour: weight 1).

    Returns:
        float: the weight in (0, 1].

    Examples::

        >>> round(leakage_weight(0.1, 0.1), 4), leakage_weight(0.5, float("inf"))
        (0.6065, 1.0)
    """
    check_number("delta", delta)
    check_positive("sigma_c", sigma_c, allow_inf=True)
    return math.exp(-(delta**2) / (2.0 * sigma_c**2))
