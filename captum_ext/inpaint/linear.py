"""Noisy linear imputation: the inpainter of ROAD (Rong et al., ICML 2022).

Known (the paper and the authors' code): every removed pixel is the weighted mean of its 8
neighbours, weight 1/6 for the 4 direct and 1/12 for the 4 diagonal neighbours; at the image
border the weights of the neighbours that exist are renormalised (divided by their sum). The
neighbours can be removed pixels themselves, so all removed pixels of an image are one sparse
linear system, solved per channel; Gaussian noise of standard deviation ``noise`` (0.01 in the
paper) is then added to the imputed values, so that the fill carries no trace of the shape of
the removed region.

Chosen here: the system is solved for the whole batch at once on the images' device, by
Jacobi-preconditioned conjugate gradients on the 3 x 3 stencil (the matrix ``diag(s) - W``
restricted to the removed pixels is symmetric and positive definite whenever the image has a
known pixel), started from a pull-push fill, in float64, to a relative residual of ``tol``.
An image that is all hole has no boundary and gets ``fallback``. Each image's noise is drawn
from a generator seeded with ``derive_seed(seed, *key)``, where ``key`` is the image's entry of
``image_indices`` (e.g. its index in the data set) or, without it, its position in the batch;
so with ``image_indices`` the result of an image never depends on the rest of the batch.
"""

from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from captum_ext._checks import check_int_at_least, check_number, check_positive
from captum_ext._utils import derive_seed, warn_external
from captum_ext.inpaint.base import FallbackType, check_holes, composite
from captum_ext.inpaint.harmonic import pull_push_fill
from captum_ext.inpaint.inpainters import Inpainter

__all__ = ["NoisyLinearInpainter", "ROAD_WEIGHTS"]

#: ROAD's neighbour weights as a 3 x 3 stencil: 1/6 direct, 1/12 diagonal, 0 in the centre.
ROAD_WEIGHTS = torch.tensor(
    [[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0.0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]], dtype=torch.float64
)

Key = Union[int, Tuple[int, ...]]


def _stencil(u: Tensor) -> Tensor:
    """Weighted sum of the 8 neighbours of every pixel (zero outside the image), (N, 1, H, W)."""
    weight = ROAD_WEIGHTS.to(device=u.device, dtype=u.dtype).view(1, 1, 3, 3)
    return F.conv2d(u, weight, padding=1)


def _batched_dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(dim=(1, 2, 3), keepdim=True)


def solve_linear_imputation(
    images: Tensor, holes: Tensor, tol: float = 1e-7, max_iter: Optional[int] = None,
    initial: Optional[Tensor] = None,
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
    if initial is None:
        initial = pull_push_fill(images.to(torch.float64), holes)
    u = free * initial.to(torch.float64).reshape(-1, 1, height, width)
    residual = rhs - operator(u)
    rhs_norm = _batched_dot(rhs, rhs).sqrt()
    threshold = (tol * rhs_norm) ** 2
    z = free * residual / weight_sum
    direction = z
    rz = _batched_dot(residual, z)
    converged = False
    for iteration in range(max_iter + 1):
        if iteration % 8 == 0 or iteration == max_iter:
            converged = bool((_batched_dot(residual, residual) <= threshold).all())
            if converged or iteration == max_iter:
                break
        a_dir = operator(direction)
        curvature = _batched_dot(direction, a_dir)
        alpha = torch.where(curvature > 0, rz / curvature.clamp_min(1e-300), torch.zeros_like(rz))
        u = u + alpha * direction
        residual = residual - alpha * a_dir
        z = free * residual / weight_sum
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
        out = self.fill(images, holes)
        if self.noise > 0:
            keys = list(range(images.shape[0])) if image_indices is None else list(image_indices)
            noise = (self.noise * self._noise(images, keys)).to(images.dtype)
            out = torch.where(holes, out + noise, out)
        return composite(images, holes, out, self.fallback, use_fallback=True, select=False)

    def __repr__(self) -> str:
        return f"NoisyLinearInpainter(noise={self.noise}, seed={self.seed})"
