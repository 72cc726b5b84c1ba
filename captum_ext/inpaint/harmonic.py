"""Harmonic (Laplace) hole filling by a coarse-to-fine pyramid, and pull-push.

Both work on a batch at once, on any device, in the space the images are given in (the fill
is linear in the image, so it commutes with per-channel affine normalisation).

The harmonic fill solves the discrete Laplace equation inside the hole: every missing pixel
is the average of its 4 in-image neighbours (Neumann condition at the image border) and known
pixels are fixed (Dirichlet). The solver pulls the known data down a pyramid by masked average
pooling, solves the coarsest level, and on the way up uses the bilinearly upsampled coarser
solution as the initial guess for a few red-black SOR sweeps per level.

Each sample is first cropped to the bounding box of its hole plus a one-pixel ring (clipped to
the image): the fill inside a hole depends only on that ring, so the crop changes nothing but
the cost, which is then proportional to the hole's box rather than the image.
"""

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from captum_ext._checks import check_int_at_least, check_number, check_positive

_EPS = 1e-12


def _neighbour_sum(u: Tensor) -> Tensor:
    p = F.pad(u, (1, 1, 1, 1))
    return p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]


def _neighbour_count(height: int, width: int, like: Tensor) -> Tensor:
    ones = torch.ones(1, 1, height, width, dtype=like.dtype, device=like.device)
    return _neighbour_sum(ones)


def _sor(u: Tensor, known: Tensor, sweeps: int, omega: float,
         tol: Optional[float] = None, max_sweeps: int = 0) -> Tensor:
    """Red-black SOR sweeps on the hole pixels (``known == 0``); known pixels stay fixed."""
    height, width = u.shape[-2:]
    hole = known == 0
    rows = torch.arange(height, device=u.device).view(-1, 1)
    cols = torch.arange(width, device=u.device).view(1, -1)
    parity = ((rows + cols) % 2 == 0).view(1, 1, height, width)
    colours = [(hole & parity).to(u.dtype), (hole & ~parity).to(u.dtype)]
    scale = omega / _neighbour_count(height, width, u)
    u = u.clone()

    def sweep() -> Tensor:
        largest = u.new_zeros(())
        for colour in colours:
            delta = _neighbour_sum(u).mul_(scale).add_(u, alpha=-omega).mul_(colour)
            u.add_(delta)
            if tol is not None:
                largest = torch.maximum(largest, delta.abs().max())
        return largest

    for _ in range(sweeps):
        sweep()
    if tol is not None:
        done = sweeps
        while done < max_sweeps:
            if float(sweep()) < tol:
                break
            done += 1
    return u


def _pyramid_solve(u: Tensor, known: Tensor, sweeps: int, coarsest: int, omega: float,
                   level: int) -> Tensor:
    height, width = u.shape[-2:]
    if max(height, width) > coarsest and bool((known == 0).any()):
        num = F.avg_pool2d(u * known, 2, ceil_mode=True)
        den = F.avg_pool2d(known, 2, ceil_mode=True)
        coarse = num / den.clamp_min(_EPS)
        coarse_known = (den > 0).to(u.dtype)
        coarse = _pyramid_solve(coarse, coarse_known, sweeps, coarsest, omega, level + 1)
        up = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
        u = torch.where(known > 0, u, up)
        level_sweeps = sweeps * min(2 ** level, 8) if sweeps else 0
    else:
        # coarsest level: start from the mean of the known pixels, sweep to convergence
        mean = (u * known).sum((-2, -1), keepdim=True) / known.sum((-2, -1), keepdim=True).clamp_min(_EPS)
        u = torch.where(known > 0, u, mean.expand_as(u))
        level_sweeps = 2 * max(height, width) + 10 if sweeps else 0
    return _sor(u, known, level_sweeps, omega) if level_sweeps else u


def _hole_boxes(holes: Tensor) -> Tuple[Tensor, Tensor, int, int]:
    """Per-sample top-left corner and the common size of boxes holding each hole plus a ring."""
    height, width = holes.shape[-2:]
    rows = holes.any(dim=-1).flatten(1)  # (B, H)
    cols = holes.any(dim=-2).flatten(1)  # (B, W)

    def span(line: Tensor, size: int) -> Tuple[Tensor, Tensor]:
        first = line.to(torch.uint8).argmax(dim=1)
        last = size - 1 - line.flip(1).to(torch.uint8).argmax(dim=1)
        return first, last

    top, bottom = span(rows, height)
    left, right = span(cols, width)
    box_h = min(int((bottom - top).max()) + 3, height)
    box_w = min(int((right - left).max()) + 3, width)
    top0 = (top - 1).clamp(min=0, max=height - box_h)
    left0 = (left - 1).clamp(min=0, max=width - box_w)
    return top0, left0, box_h, box_w


def harmonic_fill(
    images: Tensor,
    holes: Tensor,
    sweeps: int = 8,
    coarsest: int = 12,
    omega: float = 1.5,
    tol: Optional[float] = None,
    max_sweeps: int = 5000,
    crop: bool = True,
) -> Tensor:
    """Harmonic fill of the holes (the raw solver; see :class:`HarmonicInpainter`).

    Values inside the hole are never read (they are replaced by zeros first), and known
    pixels are returned bit-exact, so the result is already the composite.

    Args:
        images (Tensor): ``(B, C, H, W)``.
        holes (Tensor): bool ``(B, 1, H, W)``, True = missing.
        sweeps (int): red-black SOR sweeps on the finest level (coarser levels get up to 8x
            as many; the coarsest is swept to convergence). 0 gives pull-push.
        coarsest (int): stop coarsening at this size (pixels, larger side).
        omega (float): over-relaxation factor in (0, 2).
        tol (float, optional): if given, keep sweeping the finest level until the largest
            update is below ``tol`` (or ``max_sweeps``).
        max_sweeps (int): cap on finest-level sweeps when ``tol`` is given.
        crop (bool): solve on per-sample boxes around the holes (exact; faster).

    Returns:
        Tensor: images with the holes filled (known pixels unchanged).

    Examples::

        >>> images = torch.tensor([[[[0.0, 0.0, 2.0]]]]); holes = torch.tensor([[[[False, True, False]]]])
        >>> harmonic_fill(images, holes, tol=1e-6).tolist()
        [[[[0.0, 1.0, 2.0]]]]
    """
    holes = _check_raw(images, holes)
    check_int_at_least("sweeps", sweeps, 0)
    check_int_at_least("coarsest", coarsest, 1)
    check_number("omega", omega, low=0.0, high=2.0, low_open=True, high_open=True)
    if tol is not None:
        check_positive("tol", tol)
    check_int_at_least("max_sweeps", max_sweeps, 0)
    if images.shape[0] == 0:
        return images.clone()
    return _harmonic_fill(images, holes, sweeps, coarsest, omega, tol, max_sweeps, crop)


def _check_raw(images: Tensor, holes: Tensor) -> Tensor:
    """The checks of the raw solvers: holes match the images, known pixels are finite."""
    from captum_ext.inpaint.base import _check_known_finite, check_holes

    holes = check_holes(images, holes).expand(images.shape[0], -1, -1, -1)
    _check_known_finite(images, holes)
    return holes


def _harmonic_fill(
    images: Tensor, holes: Tensor, sweeps: int = 8, coarsest: int = 12, omega: float = 1.5,
    tol: Optional[float] = None, max_sweeps: int = 5000, crop: bool = True,
) -> Tensor:
    """:func:`harmonic_fill` without the checks (callers checked the arguments)."""
    batch, channels, height, width = images.shape
    if crop:
        top0, left0, box_h, box_w = _hole_boxes(holes)
        crop = box_h * box_w < 0.8 * height * width
    if not crop:
        u = images.masked_fill(holes, 0.0)
        return _solve(u, (~holes).to(images.dtype), sweeps, coarsest, omega, tol, max_sweeps)
    b = torch.arange(batch, device=images.device).view(-1, 1, 1)
    r = (top0.view(-1, 1) + torch.arange(box_h, device=images.device)).view(batch, box_h, 1)
    c = (left0.view(-1, 1) + torch.arange(box_w, device=images.device)).view(batch, 1, box_w)
    crop_holes = holes.permute(0, 2, 3, 1)[b, r, c].permute(0, 3, 1, 2).contiguous()
    crop_u = images.permute(0, 2, 3, 1)[b, r, c].permute(0, 3, 1, 2).contiguous()
    crop_u = crop_u.masked_fill(crop_holes, 0.0)
    solved = _solve(crop_u, (~crop_holes).to(images.dtype), sweeps, coarsest, omega, tol,
                    max_sweeps)
    out = images.masked_fill(holes, 0.0).permute(0, 2, 3, 1)
    out[b, r, c] = solved.permute(0, 2, 3, 1)
    return out.permute(0, 3, 1, 2)


def _solve(u: Tensor, known: Tensor, sweeps: int, coarsest: int, omega: float,
           tol: Optional[float], max_sweeps: int) -> Tensor:
    u = _pyramid_solve(u, known, sweeps, coarsest, omega, level=0)
    if tol is not None:
        u = _sor(u, known, 0, omega, tol=tol, max_sweeps=max_sweeps)
    return u


def pull_push_fill(images: Tensor, holes: Tensor) -> Tensor:
    """Pull-push fill: one pyramid pass of masked averaging down and bilinear upsampling up.

    Args:
        images (Tensor): ``(B, C, H, W)``.
        holes (Tensor): bool ``(B, 1, H, W)``, True = missing.

    Returns:
        Tensor: images with the holes filled.

    Examples::

        >>> images = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]])
        >>> holes = torch.tensor([[[[False, False], [False, True]]]])
        >>> pull_push_fill(images, holes).tolist()
        [[[[1.0, 1.0], [1.0, 1.0]]]]
    """
    holes = _check_raw(images, holes)
    if images.shape[0] == 0:
        return images.clone()
    return _pull_push_fill(images, holes)


def _pull_push_fill(images: Tensor, holes: Tensor) -> Tensor:
    """:func:`pull_push_fill` without the checks."""
    known = (~holes).to(images.dtype)
    return _pyramid_solve(images.masked_fill(holes, 0.0), known, 0, 1, 1.0, level=0)
