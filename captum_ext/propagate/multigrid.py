r"""An aggregation multigrid V-cycle for window-graph systems, used to precondition CG.

The system of :func:`~captum_ext.propagate.solvers.conjugate_gradient` is
``A V = b`` with ``A = D / gamma - W``, symmetric positive definite and diagonally dominant.
``A`` is stored as a (B, K, H, W) stencil exactly as the affinities are
(:func:`~captum_ext.propagate.graph.stencil_affinity`): entry ``[b, k, y, x]`` couples pixel
``(y, x)`` with its ``k``-th window neighbour.

Coarsening: pixels are grouped in 2 x 2 blocks (an odd side is padded with pixels that have no
edge and a unit diagonal), and the coarse operator is the Galerkin product ``A_c = R A R^T`` with
``R`` summing each block (piecewise-constant aggregation). For a window of radius ``r`` the
coarse operator is again a window stencil, of radius ``ceil(r / 2)`` (radius 1 stays 1), so every
level is a batched stencil and one matrix product builds it. Levels are added until the grid is
small; the coarsest is solved exactly by a batched Cholesky factorisation.

The V-cycle uses one damped Jacobi step before and one after the coarse correction, the same on
both sides, so it is a symmetric positive-definite operator, as preconditioned CG needs. Every
image of the batch is its own system: no level mixes images.

Examples::

    >>> from captum_ext.propagate import StencilOperator
    >>> op = StencilOperator.from_guide(torch.rand(2, 3, 16, 16, dtype=torch.float64))
    >>> A = system_stencil(op.weights, op.degree, gamma=0.9)
    >>> mg = MultigridPreconditioner(A, radius=1)
    >>> r = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    >>> e = mg(r)  # an approximation of A^-1 r
    >>> bool((stencil_apply(A, e, 1) - r).norm() < 0.6 * r.norm())
    True
"""

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from captum_ext._checks import (
    check_image_batch,
    check_int_at_least,
    check_positive,
)
from captum_ext.propagate.graph import check_all_finite, window_offsets
from captum_ext.propagate.operators import _window_slices, stencil_accumulate

#: Grids with at most this many pixels per image are solved exactly (dense Cholesky).
COARSEST_PIXELS = 64
#: The damping of the Jacobi smoother (safe for diagonally dominant systems: < 1).
JACOBI_DAMPING = 0.7


def stencil_apply(stencil: Tensor, x: Tensor, radius: int, out: Optional[Tensor] = None) -> Tensor:
    """``sum_k stencil[:, k] * x(shifted by offset k)`` for ``x`` of shape (B, M, H, W).

    Examples::

        >>> s = torch.zeros(1, 9, 2, 2); s[:, 4] = 2.0
        >>> stencil_apply(s, torch.ones(1, 1, 2, 2), 1).flatten().tolist()
        [2.0, 2.0, 2.0, 2.0]
    """
    return stencil_accumulate(stencil, x, radius, out=out)


def system_stencil(weights: Tensor, degree: Tensor, gamma: float) -> Tensor:
    """The stencil of ``A = D / gamma - W`` from affinity weights (B, K, H, W) and degrees."""
    stencil = -weights
    center = weights.shape[1] // 2
    stencil[:, center] += degree[:, 0] / gamma
    return stencil


def scaled_system_stencil(weights: Tensor, degree: Tensor, gamma: float,
                          negated: bool = False) -> Tensor:
    """The stencil of ``S A S``, ``A = D / gamma - W`` and ``S = (D / gamma)^-1/2`` (diagonal).

    The symmetric Jacobi scaling of :func:`system_stencil`: its diagonal is
    ``1 - gamma w_ii / d_i`` and entry ``k`` of pixel ``i`` is ``-w_ij s_i s_j``. With
    ``negated=True``, the stencil of ``-S A S`` (built in the same passes).

    Examples::

        >>> w = torch.zeros(1, 9, 2, 2); w[:, 4] = 1.0; w[:, 5, :, 0] = 1.0; w[:, 3, :, 1] = 1.0
        >>> a = scaled_system_stencil(w, w.sum(1, keepdim=True), gamma=0.5)
        >>> a[0, 4, 0, 0].item(), a[0, 5, 0, 0].item()  # 1 - 0.5 / 2, -0.5 / 2
        (0.75, -0.25)
    """
    inverse_sqrt = (degree / gamma).rsqrt()  # (B, 1, H, W)
    stencil = weights * (inverse_sqrt if negated else -inverse_sqrt)
    radius = int(round(weights.shape[1] ** 0.5)) // 2
    for k, target, source in _window_slices(radius, *weights.shape[2:]):  # K offsets
        stencil[:, k][target] *= inverse_sqrt[:, 0][source]
    center = weights.shape[1] // 2
    stencil[:, center] *= inverse_sqrt[:, 0]  # +-w_ii s_i^2
    stencil[:, center] += -1.0 if negated else 1.0
    return stencil


def _aggregation_map(radius: int, dtype: torch.dtype, device: torch.device) -> Tuple[Tensor, int]:
    """(4 K, K_c) 0/1 matrix: fine (offset, position in block) -> coarse offset."""
    coarse_radius = (radius + 1) // 2
    fine, coarse = window_offsets(radius), window_offsets(coarse_radius)
    index = {offset: c for c, offset in enumerate(coarse)}
    table = torch.zeros(len(fine), 2, 2, len(coarse), dtype=dtype, device=device)
    for k, (dy, dx) in enumerate(fine):  # K x 4 entries of a constant table
        for i in range(2):
            for j in range(2):
                table[k, i, j, index[((i + dy) // 2, (j + dx) // 2)]] = 1.0
    return table.view(-1, len(coarse)), coarse_radius


def _pad_even(stencil: Tensor) -> Tensor:
    """Pad H and W to even sizes with decoupled pixels (unit diagonal, no edge)."""
    height, width = stencil.shape[2:]
    pad_h, pad_w = height % 2, width % 2
    if not (pad_h or pad_w):
        return stencil
    padded = F.pad(stencil, (0, pad_w, 0, pad_h))
    center = stencil.shape[1] // 2
    if pad_h:
        padded[:, center, -1, :] = 1.0
    if pad_w:
        padded[:, center, :, -1] = 1.0
    return padded


def galerkin_coarsen(stencil: Tensor, radius: int) -> Tuple[Tensor, int]:
    """``R A R^T`` for 2 x 2 block aggregation, as a stencil on the (ceil(H/2), ceil(W/2)) grid.

    Returns the coarse stencil (B, K_c, H_c, W_c) and its radius.

    Examples::

        >>> s = torch.zeros(1, 9, 4, 4); s[:, 4] = 1.0  # the identity
        >>> coarse, r = galerkin_coarsen(s, 1)
        >>> coarse.shape, r, coarse[0, 4].unique().tolist()  # 4 pixels per block
        (torch.Size([1, 9, 2, 2]), 1, [4.0])
    """
    stencil = _pad_even(stencil)
    batch, kernel, height, width = stencil.shape
    table, coarse_radius = _aggregation_map(radius, stencil.dtype, stencil.device)
    blocks = stencil.view(batch, kernel, height // 2, 2, width // 2, 2)
    blocks = blocks.permute(0, 2, 4, 1, 3, 5).reshape(batch, height // 2, width // 2, 4 * kernel)
    coarse = (blocks @ table).permute(0, 3, 1, 2).contiguous()
    return coarse, coarse_radius


def restrict(x: Tensor) -> Tensor:
    """Sum each 2 x 2 block (odd sides padded with zeros): ``R x``."""
    height, width = x.shape[2:]
    if height % 2 or width % 2:
        x = F.pad(x, (0, width % 2, 0, height % 2))
    rows = x[..., 0::2, :] + x[..., 1::2, :]  # strided adds: ~10x faster than avg_pool2d on CPUs
    return rows[..., 0::2] + rows[..., 1::2]


def prolong(x: Tensor, height: int, width: int) -> Tensor:
    """Copy each coarse value to its 2 x 2 block, cropped to (height, width): ``R^T x``."""
    fine = F.interpolate(x, scale_factor=2.0, mode="nearest")
    return fine[..., :height, :width]


def _dense(stencil: Tensor, radius: int) -> Tensor:
    """The (B, N, N) matrix of a stencil on a small grid (column j: the stencil applied to e_j)."""
    batch, _, height, width = stencil.shape
    n = height * width
    basis = torch.eye(n, dtype=stencil.dtype, device=stencil.device).view(1, n, height, width)
    columns = stencil_apply(stencil, basis.expand(batch, n, height, width).contiguous(), radius)
    return columns.reshape(batch, n, n).transpose(1, 2)


class MultigridPreconditioner:
    r"""A symmetric aggregation-multigrid V-cycle approximating ``A^-1`` for a batch of systems.

    Args:
        stencil (Tensor): (B, K, H, W) stencil of the SPD system ``A`` (see
            :func:`system_stencil`).
        radius (int): the stencil's window radius.
        coarsest_pixels (int): solve grids with at most this many pixels exactly. Default 64.
        damping (float): Jacobi damping of the smoother. Default 0.7.

    Examples::

        >>> A = torch.zeros(1, 9, 8, 8, dtype=torch.float64); A[:, 4] = 2.0
        >>> mg = MultigridPreconditioner(A, radius=1)
        >>> torch.allclose(mg(torch.ones(1, 1, 8, 8, dtype=torch.float64)),
        ...                torch.full((1, 1, 8, 8), 0.5, dtype=torch.float64))
        True
    """

    def __init__(
        self, stencil: Tensor, radius: int, coarsest_pixels: int = COARSEST_PIXELS,
        damping: float = JACOBI_DAMPING,
    ) -> None:
        check_image_batch("stencil", stencil)
        check_all_finite("stencil", stencil)
        check_int_at_least("radius", radius, 0)
        if stencil.shape[1] != (2 * radius + 1) ** 2:
            raise ValueError(
                f"`stencil` must have (2 radius + 1)^2 = {(2 * radius + 1) ** 2} entries on dim 1 "
                f"for radius={radius}, got shape {tuple(stencil.shape)}"
            )
        check_int_at_least("coarsest_pixels", coarsest_pixels, 1)
        check_positive("damping", damping)
        self.damping = damping
        # (-stencil, radius, damping / diagonal) per grid: the negated stencil makes each
        # residual r - A e one fused stencil pass (stencil_accumulate with base r)
        self.levels: List[Tuple[Tensor, int, Tensor]] = []
        center = lambda s: s.shape[1] // 2  # noqa: E731
        while True:
            diagonal = stencil[:, center(stencil)].unsqueeze(1)
            self.levels.append((-stencil, radius, damping / diagonal))
            height, width = stencil.shape[2:]
            if height * width <= coarsest_pixels or min(height, width) < 2:
                break
            stencil, radius = galerkin_coarsen(stencil, radius)
        coarsest, coarse_radius, _ = self.levels[-1]
        # float64 Cholesky of the small coarsest systems: exact and cheap
        dense = _dense(-coarsest.double(), coarse_radius)
        self.cholesky = torch.linalg.cholesky(dense)
        self.coarse_shape = coarsest.shape[2:]

    @property
    def depth(self) -> int:
        """Number of grids, the finest included."""
        return len(self.levels)

    def _solve_coarsest(self, r: Tensor) -> Tensor:
        batch, channels = r.shape[:2]
        rhs = r.double().reshape(batch, channels, -1).transpose(1, 2)
        solution = torch.cholesky_solve(rhs, self.cholesky)
        return solution.transpose(1, 2).reshape(r.shape).to(r.dtype)

    def _cycle(self, level: int, r: Tensor) -> Tensor:
        if level == len(self.levels) - 1:
            return self._solve_coarsest(r)
        negated, radius, scaled_inverse = self.levels[level]
        height, width = r.shape[2:]
        e = r * scaled_inverse  # pre-smoothing from zero
        residual = stencil_accumulate(negated, e, radius, base=r)  # r - A e
        e += prolong(self._cycle(level + 1, restrict(residual)), height, width)
        stencil_accumulate(negated, e, radius, out=residual, base=r)
        return e.addcmul_(residual, scaled_inverse)  # post-smoothing

    def __call__(self, r: Tensor) -> Tensor:
        """``z ~ A^-1 r`` for ``r`` of shape (B, M, H, W)."""
        if r.shape[0] == 0:  # an empty batch: nothing to solve
            return torch.zeros_like(r)
        return self._cycle(0, r)
