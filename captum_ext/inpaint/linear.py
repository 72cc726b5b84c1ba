"""Noisy linear imputation: the inpainter of ROAD (Rong et al., ICML 2022).

Known (the paper and the authors' code): every removed pixel is the weighted mean of its 8
neighbours, weight 1/6 for the 4 direct and 1/12 for the 4 diagonal neighbours; at the image
border the weights of the neighbours that exist are renormalised (divided by their sum). The
neighbours can be removed pixels themselves, so all removed pixels of an image are one sparse
linear system, solved per channel; Gaussian noise of standard deviation ``noise`` (0.01 in the
paper) is then added to the imputed values, so that the fill carries no trace of the shape of
the removed region.

Chosen here: the system is solved for the whole batch at once on the images' device, by
conjugate gradients on the 3 x 3 stencil (the matrix ``diag(s) - W`` restricted to the removed
pixels is symmetric and positive definite whenever the image has a known pixel), preconditioned
by a symmetric multigrid V-cycle (damped Jacobi smoothing, Galerkin coarse operators of 2 x 2
aggregation; counted: about 23 iterations for a 72-pixel and 31 for a 168-pixel square hole,
against about 137 and 297 with a Jacobi preconditioner, at 4-5 stencil applications per
iteration instead of 1), started from a pull-push fill, in float64, to a relative residual of
``tol``.
An image that is all hole has no boundary and gets ``fallback``. Each image's noise is drawn
from a generator seeded with ``derive_seed(seed, *key)``, where ``key`` is the image's entry of
``image_indices`` (e.g. its index in the data set) or, without it, its position in the batch;
so with ``image_indices`` the result of an image never depends on the rest of the batch.
"""

from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from captum_ext._checks import check_choice, check_int_at_least, check_number, check_positive
from captum_ext._utils import derive_seed, warn_external
from captum_ext.inpaint.base import FallbackType, _check_known_finite, check_holes, composite
from captum_ext.inpaint.harmonic import _pull_push_fill
from captum_ext.inpaint.inpainters import Inpainter

__all__ = ["NoisyLinearInpainter", "ROAD_WEIGHTS"]

#: ROAD's neighbour weights as a 3 x 3 stencil: 1/6 direct, 1/12 diagonal, 0 in the centre.
ROAD_WEIGHTS = torch.tensor(
    [[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0.0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]], dtype=torch.float64
)

Key = Union[int, Tuple[int, ...]]


def _stencil(u: Tensor) -> Tensor:
    """Weighted sum of the 8 neighbours of every pixel (zero outside the image), (..., H, W).

    Shifted slices rather than ``conv2d``: float64 convolutions are slow on some CPUs.
    """
    height, width = u.shape[-2:]
    padded = F.pad(u, (1, 1, 1, 1))
    out = torch.zeros_like(u)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            weight = float(ROAD_WEIGHTS[1 + dy, 1 + dx])
            if weight:
                out = out + weight * padded[..., 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]
    return out


def _batched_dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(dim=(1, 2, 3), keepdim=True)


_OFFSETS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]


def _apply_stencil(coef: Tensor, u: Tensor) -> Tensor:
    """Variable 9-point operator: ``sum_k coef[:, k] * u(p + offset_k)`` (zero outside), (B, C, H, W)."""
    height, width = u.shape[-2:]
    padded = F.pad(u, (1, 1, 1, 1))
    out = torch.zeros_like(u)
    for k, (dy, dx) in enumerate(_OFFSETS):
        out = out + coef[:, k:k + 1] * padded[..., 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]
    return out


def _fine_coefficients(free: Tensor) -> Tensor:
    """The imputation operator on the holes as 9 coefficient fields (B, 9, H, W); identity elsewhere."""
    height, width = free.shape[-2:]
    padded = F.pad(free, (1, 1, 1, 1))
    ones = torch.ones(1, 1, height, width, dtype=free.dtype, device=free.device)
    weight_sum = _stencil(ones)
    coefs = []
    for dy, dx in _OFFSETS:
        if (dy, dx) == (0, 0):
            coefs.append(free * weight_sum + (1 - free))
        else:
            neighbour = padded[..., 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]
            coefs.append(-float(ROAD_WEIGHTS[1 + dy, 1 + dx]) * free * neighbour)
    return torch.cat(coefs, dim=1)


def _restrict(r: Tensor) -> Tensor:
    """``P^T r``: the sum over each 2 x 2 block (zero-padded to even size)."""
    height, width = r.shape[-2:]
    r = F.pad(r, (0, width % 2, 0, height % 2))
    *lead, h2, w2 = r.shape
    return r.reshape(*lead, h2 // 2, 2, w2 // 2, 2).sum(dim=(-3, -1))


def _prolong(e: Tensor, free: Tensor) -> Tensor:
    """``P e``: each coarse value copied to its 2 x 2 block, on the free pixels."""
    height, width = free.shape[-2:]
    return free * e.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)[..., :height, :width]


def _galerkin(coef: Tensor, free: Tensor) -> Tuple[Tensor, Tensor]:
    """Coarse operator ``P^T A P`` (9 coefficient fields, found with 9 coloured probes) and mask."""
    batch = coef.shape[0]
    coarse_free = (_restrict(free) > 0).to(free.dtype)
    c_height, c_width = coarse_free.shape[-2:]
    rows = torch.arange(c_height, device=coef.device).view(-1, 1)
    cols = torch.arange(c_width, device=coef.device).view(1, -1)
    coarse = torch.zeros(batch, 9, c_height, c_width, dtype=coef.dtype, device=coef.device)
    for a in range(3):
        for b in range(3):
            probe = (((rows % 3) == a) & ((cols % 3) == b)).to(coef.dtype).expand(batch, 1, c_height, c_width)
            response = _restrict(free * _apply_stencil(coef, _prolong(probe, free)))
            dy = ((a - rows) % 3 + 1) % 3 - 1  # the offset of the probed neighbour: -1, 0 or 1
            dx = ((b - cols) % 3 + 1) % 3 - 1
            k = ((dy + 1) * 3 + (dx + 1)).expand(c_height, c_width)
            coarse.scatter_add_(1, k.expand(batch, 1, c_height, c_width), response)
    coarse[:, 4:5] = coarse[:, 4:5] + (1 - coarse_free)  # identity on cells without a free pixel
    return coarse, coarse_free


class _Multigrid:
    """A symmetric V-cycle (damped Jacobi, Galerkin coarse operators of piecewise-constant
    aggregation) used as the preconditioner of the conjugate gradients."""

    def __init__(self, free: Tensor, sweeps: int = 1, omega: float = 0.8, coarsest: int = 4) -> None:
        self.levels: List[Tuple[Tensor, Tensor]] = []
        coef = _fine_coefficients(free)
        while True:
            self.levels.append((coef, free))
            if min(free.shape[-2:]) <= coarsest:
                break
            coef, free = _galerkin(coef, free)
        self.sweeps, self.omega = sweeps, omega

    def _smooth(self, level: int, x: Tensor, r: Tensor, sweeps: int) -> Tensor:
        coef, free = self.levels[level]
        diagonal = coef[:, 4:5]
        for _ in range(sweeps):
            x = x + self.omega * free * (r - _apply_stencil(coef, x)) / diagonal
        return x

    def _cycle(self, level: int, r: Tensor) -> Tensor:
        x = torch.zeros_like(r)
        if level == len(self.levels) - 1:
            return self._smooth(level, x, r, 20)
        coef, free = self.levels[level]
        x = self._smooth(level, x, r, self.sweeps)
        coarse_r = _restrict(free * (r - _apply_stencil(coef, x)))
        x = x + _prolong(self._cycle(level + 1, coarse_r), free)
        return self._smooth(level, x, r, self.sweeps)

    def __call__(self, r: Tensor) -> Tensor:
        return self._cycle(0, r)


def solve_linear_imputation(
    images: Tensor, holes: Tensor, tol: float = 1e-7, max_iter: Optional[int] = None,
    initial: Optional[Tensor] = None, preconditioner: str = "multigrid",
) -> Tensor:
    """The exact (noise-free) solution of ROAD's imputation equations, batched.

    For every removed pixel ``i`` (per channel): ``s_i x_i - sum_{j removed} w_ij x_j =
    sum_{j known} w_ij x_j``, with ``w`` the :data:`ROAD_WEIGHTS` of the in-image neighbours
    and ``s_i`` their sum (1 inside the image, less at the border).

    Args:
        images (Tensor): ``(B, C, H, W)``; values in the holes are ignored.
        holes (Tensor): bool ``(B, 1, H, W)``, True = removed.
        tol (float): relative residual ``|r| / |b|`` at which a system counts as solved.
        max_iter (int, optional): conjugate-gradient iterations at most; default
            ``20 * max(H, W) + 100``.
        initial (Tensor, optional): starting guess ``(B, C, H, W)``; default a pull-push fill.
        preconditioner (str): ``"multigrid"`` (a symmetric V-cycle: few iterations whatever the
            hole's size) or ``"jacobi"`` (the diagonal). Default ``"multigrid"``.

    Returns:
        Tensor: float64 ``(B, C, H, W)``, the known pixels unchanged and the holes imputed.

    Examples::

        >>> x = torch.arange(25.).view(1, 1, 5, 5) % 5      # a ramp along the width
        >>> holes = torch.zeros(1, 1, 5, 5, dtype=torch.bool); holes[..., 1:4, 1:4] = True
        >>> out = solve_linear_imputation(x, holes)
        >>> bool(torch.allclose(out, x.double(), atol=1e-8))  # a linear ramp is reproduced
        True
    """
    batch, channels, height, width = images.shape
    if max_iter is None:
        max_iter = 20 * max(height, width) + 100
    x64 = images.to(torch.float64)
    hole = holes.expand(batch, channels, height, width).reshape(-1, 1, height, width)
    known_values = x64.reshape(-1, 1, height, width).masked_fill(hole, 0.0)
    free = hole.to(torch.float64)
    ones = torch.ones(1, 1, height, width, dtype=torch.float64, device=images.device)
    weight_sum = _stencil(ones)  # s_i: 1 inside, 7/12 .. 5/12 at the border

    def operator(u: Tensor) -> Tensor:  # (diag(s) - W) restricted to the holes
        return free * (weight_sum * u - _stencil(u * free))

    rhs = free * _stencil(known_values)
    check_choice("preconditioner", preconditioner, ("multigrid", "jacobi"))
    if preconditioner == "multigrid":
        multigrid = _Multigrid(hole.view(batch, channels, height, width)[:, :1].to(torch.float64))

        def precondition(r: Tensor) -> Tensor:
            return multigrid(r.view(batch, channels, height, width)).reshape(-1, 1, height, width)
    else:

        def precondition(r: Tensor) -> Tensor:
            return free * r / weight_sum

    if initial is None:
        initial = _pull_push_fill(images.to(torch.float64), holes)
    u = free * initial.to(torch.float64).reshape(-1, 1, height, width)
    residual = rhs - operator(u)
    rhs_norm = _batched_dot(rhs, rhs).sqrt()
    threshold = (tol * rhs_norm) ** 2
    z = precondition(residual)
    direction = z
    rz = _batched_dot(residual, z)
    converged = False
    check_every = 2 if preconditioner == "multigrid" else 8  # a check is a host sync on a GPU
    for iteration in range(max_iter + 1):
        if iteration % check_every == 0 or iteration == max_iter:
            converged = bool((_batched_dot(residual, residual) <= threshold).all())
            if converged or iteration == max_iter:
                break
        a_dir = operator(direction)
        curvature = _batched_dot(direction, a_dir)
        alpha = torch.where(curvature > 0, rz / curvature.clamp_min(1e-300), torch.zeros_like(rz))
        u = u + alpha * direction
        residual = residual - alpha * a_dir
        z = precondition(residual)
        rz_new = _batched_dot(residual, z)
        beta = torch.where(rz > 0, rz_new / rz.clamp_min(1e-300), torch.zeros_like(rz))
        direction = z + beta * direction
        rz = rz_new
    if not converged:
        warn_external(
            f"linear imputation stopped after max_iter={max_iter} iterations before reaching the "
            f"relative residual tol={tol}; raise max_iter or tol",
            RuntimeWarning,
        )
    out = known_values + free * u
    return out.view(batch, channels, height, width)


class NoisyLinearInpainter(Inpainter):
    """ROAD's noisy linear imputation (Rong et al., ICML 2022), registered as ``"linear"``.

    Each removed pixel becomes the weighted mean of its 8 neighbours (1/6 direct, 1/12
    diagonal, renormalised at the image border), all removed pixels of an image solved
    together as one sparse linear system (see :func:`solve_linear_imputation`), plus Gaussian
    noise of standard deviation ``noise``. ``noise=0`` gives the exact solution.

    Args:
        noise (float): standard deviation of the noise added to imputed values (in the units of
            the images). Default: 0.01 (the paper).
        seed (int): seed of the noise; image ``k`` uses ``derive_seed(seed, *key_k)`` with
            ``key_k`` its entry of ``image_indices`` (see :meth:`__call__`) or its position in the
            batch. Default: 0.
        tol (float): relative residual of the solver (the error is then about 1e-6 of the
            image range for 224 x 224 images). Default: 1e-7.
        max_iter (int, optional): solver iterations at most; default ``20 * max(H, W) + 100``.
        fallback (float or Tensor): value of images that are entirely hole. Default: 0.

    Examples::

        >>> x = torch.rand(2, 3, 8, 8)
        >>> holes = torch.zeros(2, 1, 8, 8); holes[:, :, 2:5, 3:6] = 1
        >>> out = NoisyLinearInpainter(noise=0.0)(x, holes)
        >>> torch.equal(out[:, :, :2], x[:, :, :2]), out.shape
        (True, torch.Size([2, 3, 8, 8]))
        >>> a = NoisyLinearInpainter(seed=3)(x, holes, image_indices=[10, 11])
        >>> b = NoisyLinearInpainter(seed=3)(x[1:], holes[1:], image_indices=[11])
        >>> torch.equal(a[1:], b)  # an image's noise does not depend on the batch
        True
    """

    self_compositing = True

    def __init__(self, noise: float = 0.01, seed: int = 0, tol: float = 1e-7,
                 max_iter: Optional[int] = None, fallback: FallbackType = 0.0) -> None:
        super().__init__(fallback)
        check_positive("noise", noise, allow_zero=True)
        check_number("seed", seed, integer=True)
        check_positive("tol", tol)
        if max_iter is not None:
            check_int_at_least("max_iter", max_iter, 1)
        self.noise, self.seed, self.tol, self.max_iter = float(noise), int(seed), float(tol), max_iter

    def fill(self, images: Tensor, holes: Tensor) -> Tensor:
        """The noise-free solution (the images' dtype); known pixels bit-exact."""
        solved = solve_linear_imputation(images, holes, self.tol, self.max_iter)
        return torch.where(holes, solved.to(images.dtype), images)

    def _noise(self, images: Tensor, keys: Sequence[Key]) -> Tensor:
        draws = []
        for key in keys:
            parts = key if isinstance(key, tuple) else (key,)
            generator = torch.Generator().manual_seed(derive_seed(self.seed, *[int(k) for k in parts]))
            draws.append(torch.randn(images.shape[1:], generator=generator, dtype=torch.float64))
        return torch.stack(draws).to(device=images.device)

    def __call__(  # type: ignore[override]
        self, images: Tensor, holes: Tensor, image_indices: Optional[Sequence[Key]] = None
    ) -> Tensor:
        """Fill the holes; ``image_indices`` (one int or tuple of ints per image) seed the noise.

        Args:
            images (Tensor): ``(B, C, H, W)``.
            holes (Tensor): ``(B, 1, H, W)`` binary, 1 = missing.
            image_indices (sequence, optional): per image, the key of its noise (e.g. its index
                in the data set, or ``(index, step)``); default: its position in the batch.

        Returns:
            Tensor: the images with the holes imputed (known pixels unchanged).
        """
        holes = check_holes(images, holes)
        if image_indices is not None:
            if isinstance(image_indices, Tensor):
                image_indices = image_indices.tolist()
            if len(image_indices) != images.shape[0]:
                raise ValueError(
                    f"`image_indices` must have one entry per image ({images.shape[0]}), got "
                    f"{len(image_indices)}"
                )
        if not bool(holes.any()):
            return images
        _check_known_finite(images, holes)
        out = self.fill(images, holes)
        if self.noise > 0:
            keys = list(range(images.shape[0])) if image_indices is None else list(image_indices)
            noise = (self.noise * self._noise(images, keys)).to(images.dtype)
            out = torch.where(holes, out + noise, out)
        return composite(images, holes, out, self.fallback, use_fallback=True, select=False)

    def __repr__(self) -> str:
        return f"NoisyLinearInpainter(noise={self.noise}, seed={self.seed})"
