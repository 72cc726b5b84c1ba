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
by a symmetric multigrid V-cycle (Jacobi smoothing, Galerkin coarse operators of 2 x 2
aggregation down to the first grid of at most 256 cells, which is solved exactly by a dense
inverse per mask, coarse corrections over-weighted by 1.5), started from a pull-push fill, to a
relative residual of ``tol`` per image and channel; every image stops on its own (converged
images leave the batch), so its result does not depend on the batch. The fine-grid vectors live
in preallocated zero-bordered buffers and every fine-grid step writes in place: allocating the
large temporaries at each iteration cost more than the arithmetic on a CPU. The arithmetic is
float32 for ``tol >= 1e-5`` and float64 below: the noisy inpainter solves to 1e-5 in float32
(errors of a few 1e-4 of the image range, far below the noise), ``noise=0`` to 1e-7 in float64.
An image that is all hole has no boundary and gets ``fallback``. Each image's noise is drawn
(standard normal, float32: six times cheaper than float64 on a CPU, and the noise needs no more
precision) from a generator seeded with ``derive_seed(seed, *key)``, where ``key`` is the
image's entry of ``image_indices`` (e.g. its index in the data set) or, without it, its
position in the batch; so with ``image_indices`` the result of an image never depends on the
rest of the batch.
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

#: 3 x 3 offsets (dy, dx), row-major; index 4 is the centre.
_OFFSETS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
#: Multigrid: Jacobi damping on the finest grid (the ROAD stencil's Jacobi iteration smooths best
#: undamped: its symbol lies in [0, 4/3]) and on the Galerkin coarse grids, and the over-correction
#: of the aggregation coarse-grid correction (in (0, 2): the V-cycle stays symmetric positive
#: definite, as CG needs; piecewise-constant aggregation under-corrects smooth errors).
FINE_DAMPING, COARSE_DAMPING, OVER_CORRECTION = 1.0, 0.8, 1.5
#: Coarsening stops at the first grid of at most this many cells, which is solved exactly (a
#: dense inverse per mask, one batched matmul): cheaper than the five to six tiny levels below
#: it, whose cost is the per-operation overhead.
DIRECT_CELLS = 256


def _shift(padded: Tensor, dy: int, dx: int, height: int, width: int) -> Tensor:
    return padded[..., 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]


def _neighbour_sum(u: Tensor, padded: Tensor) -> Tensor:
    """``W u``: the ROAD-weighted sum of the 8 neighbours (zero outside the image), (N, C, H, W).

    Separable: ``W = [1 2 1]^T [1 2 1] / 12 - I / 3`` (the centre weight 4/12 taken out again),
    four shifted adds instead of eight. ``padded`` is a (N, C, H + 2, W + 2) buffer with a zero
    border, reused between calls.
    """
    height, width = u.shape[-2:]
    padded[..., 1:-1, 1:-1].copy_(u)
    rows = torch.add(padded[..., 0:width], padded[..., 2:width + 2])
    rows.add_(padded[..., 1:width + 1], alpha=2.0)
    out = torch.add(rows[..., 0:height, :], rows[..., 2:height + 2, :])
    out.add_(rows[..., 1:height + 1, :], alpha=2.0)
    return out.mul_(1.0 / 12.0).sub_(u, alpha=1.0 / 3.0)


def _variable_stencil(coef: Tensor, u: Tensor) -> Tensor:
    """``sum_k coef[:, k] * u(p + offset_k)`` (zero outside), coef (N, 9, h, w), u (N, C, h, w)."""
    height, width = u.shape[-2:]
    padded = F.pad(u, (1, 1, 1, 1))
    out = coef[:, 4:5] * u
    for k, (dy, dx) in enumerate(_OFFSETS):
        if k != 4:
            out.addcmul_(coef[:, k:k + 1], _shift(padded, dy, dx, height, width))
    return out


def _restrict(r: Tensor) -> Tensor:
    """``P^T r``: the sum over each 2 x 2 block (zero-padded to even size), by strided adds."""
    height, width = r.shape[-2:]
    if height % 2 or width % 2:
        r = F.pad(r, (0, width % 2, 0, height % 2))
    out = r[..., 0::2, 0::2] + r[..., 1::2, 0::2]
    return out.add_(r[..., 0::2, 1::2]).add_(r[..., 1::2, 1::2])


def _prolong(e: Tensor, height: int, width: int) -> Tensor:
    """``P e`` without the mask: each coarse value copied to its 2 x 2 block, cropped.

    Nearest-neighbour upsampling by exactly 2 (source index ``i // 2``): faster than a copy of
    an expanded ``(.., h2, 2, w2, 2)`` view, whose innermost dimension has two elements.
    """
    h2, w2 = e.shape[-2:]
    return F.interpolate(e, size=(2 * h2, 2 * w2), mode="nearest")[..., :height, :width]


def _galerkin(coef: Tensor, free: Tensor) -> Tuple[Tensor, Tensor]:
    """The coarse operator ``P^T A P`` of 2 x 2 aggregation on the free pixels, and its mask.

    ``coef`` (N, 9, h, w) couples a pixel with its 8 neighbours (zero unless both are free) and
    holds the diagonal in entry 4 (1 on pixels that are not free). A fine pixel at ``(2Y + a,
    2X + b)`` coupled to the neighbour at offset ``(dy, dx)`` adds its coefficient to the coarse
    coupling of cell ``(Y, X)`` with cell ``(Y + (a + dy) // 2, X + (b + dx) // 2)``.
    """
    height, width = coef.shape[-2:]
    if height % 2 or width % 2:
        coef = F.pad(coef, (0, width % 2, 0, height % 2))
        free = F.pad(free, (0, width % 2, 0, height % 2))
    masked = coef.clone()
    masked[:, 4:5] *= free  # the identity rows of fixed pixels are not part of the system
    batch, _, h2, w2 = masked.shape
    coarse = masked.new_zeros(batch, 9, h2 // 2, w2 // 2)
    for a in (0, 1):
        for b in (0, 1):
            for k, (dy, dx) in enumerate(_OFFSETS):
                target = ((a + dy) // 2 + 1) * 3 + (b + dx) // 2 + 1
                coarse[:, target] += masked[:, k, a::2, b::2]
    coarse_free = F.max_pool2d(free, 2)
    coarse[:, 4:5] += 1 - coarse_free  # identity on cells without a free pixel
    return coarse, coarse_free


def _dense_inverse(coef: Tensor) -> Tensor:
    """The inverse of the operator of a small grid as dense ``(N, h w, h w)`` matrices.

    ``coef`` (N, 9, h, w) holds each cell's coupling to its 8 neighbours and its diagonal
    (symmetric positive definite; cells without unknowns have an identity row). Inverted in
    float64 by a Cholesky factorisation, returned in ``coef``'s dtype. An operator that rounding
    made indefinite (a large hole with very few known pixels, coefficients in float32) gets the
    pseudo-inverse of its eigendecomposition instead: any symmetric positive semi-definite
    stand-in keeps the preconditioned CG correct, only slower.
    """
    matrix = _dense_matrix(coef)
    factor, info = torch.linalg.cholesky_ex(matrix)
    inverse = torch.cholesky_inverse(factor)
    failed = info.nonzero().flatten()
    if len(failed):  # rounding made a nearly singular operator indefinite: a pseudo-inverse
        values, vectors = torch.linalg.eigh(matrix[failed])
        floor = values.abs().amax(-1, keepdim=True) * 1e-12
        inverse_values = torch.where(values > floor, 1.0 / values.clamp_min(1e-300), torch.zeros_like(values))
        inverse[failed] = (vectors * inverse_values.unsqueeze(-2)) @ vectors.transpose(-1, -2)
    return inverse.to(coef.dtype)


def _dense_matrix(coef: Tensor) -> Tensor:
    """The operator of :func:`_variable_stencil` as dense float64 ``(N, h w, h w)`` matrices
    (row-major cells): ``matrix @ u.flatten()`` equals ``_variable_stencil(coef, u)``."""
    batch, _, height, width = coef.shape
    cells = height * width
    rows = torch.arange(cells, device=coef.device).view(height, width)
    matrix = coef.new_zeros(batch, cells, cells, dtype=torch.float64)
    for k, (dy, dx) in enumerate(_OFFSETS):
        ys = slice(max(0, -dy), height - max(0, dy))
        xs = slice(max(0, -dx), width - max(0, dx))
        source = rows[ys, xs].flatten()
        target = rows[max(0, dy):height + min(0, dy), max(0, dx):width + min(0, dx)].flatten()
        matrix[:, source, target] = coef[:, k, ys, xs].flatten(1).to(torch.float64)
    return matrix


class _Workspace:
    """Preallocated fine-grid buffers of one solve, shared by its shrinking batches.

    Every fine-grid vector of the solve lives in a zero-bordered ``(N, C, H + 2, W + 2)`` layout,
    so the stencil reads its neighbours from shifted views and the results are written in place:
    large temporaries would be allocated (and, on a CPU, page-faulted in) at every iteration. A
    batch of ``n`` active images uses the first ``n`` rows of each buffer.
    """

    def __init__(self, batch: int, channels: int, height: int, width: int, dtype: torch.dtype,
                 device: torch.device) -> None:
        padded = (batch, channels, height + 2, width + 2)
        self.rows = torch.empty(batch, channels, height + 2, width, dtype=dtype, device=device)
        self.scratch = torch.zeros(padded, dtype=dtype, device=device)
        self.vectors = [torch.zeros(padded, dtype=dtype, device=device) for _ in range(5)]


def _interior(padded: Tensor) -> Tensor:
    return padded[..., 1:-1, 1:-1]


def _restrict_padded(padded: Tensor, height: int, width: int) -> Tensor:
    """``P^T r`` of a zero-bordered fine vector: the sum over each 2 x 2 block of the interior.

    An odd size takes its last block's missing row or column from the zero border.
    """
    h2, w2 = (height + 1) // 2, (width + 1) // 2
    r = padded[..., 1:1 + 2 * h2, 1:1 + 2 * w2]
    out = r[..., 0::2, 0::2] + r[..., 1::2, 0::2]
    return out.add_(r[..., 0::2, 1::2]).add_(r[..., 1::2, 1::2])


class _Multigrid:
    """A symmetric V-cycle (Jacobi smoothing, Galerkin coarse operators of 2 x 2 aggregation,
    down to one cell) for the imputation systems of a batch of masks, used to precondition CG.

    ``free`` (N, 1, H, W) marks the unknowns of each mask; the systems of its ``C`` channels share
    the operator (the coefficient fields broadcast over channels). The fine-grid methods take and
    return vectors in the zero-bordered layout of :class:`_Workspace`.
    """

    def __init__(self, free: Tensor, workspace: _Workspace) -> None:
        height, width = free.shape[-2:]
        dtype, device = free.dtype, free.device
        weight_sum = _neighbour_sum(torch.ones(1, 1, height, width, dtype=dtype, device=device),
                                    torch.zeros(1, 1, height + 2, width + 2, dtype=dtype, device=device))
        self.workspace = workspace
        self.height, self.width = height, width
        # A u = s u - W u = (s + 1/3) u - (K u) / 12 on the unknowns, K = [1 2 1]^T [1 2 1]
        self.centre = free * (weight_sum + 1.0 / 3.0)
        self.neighbour = free * (-1.0 / 12.0)
        self.free = free
        self.inverse_diagonal_padded = F.pad(free / weight_sum, (1, 1, 1, 1))
        padded_free = F.pad(free, (1, 1, 1, 1))
        fields = []
        for dy, dx in _OFFSETS:
            if (dy, dx) == (0, 0):
                fields.append(free * weight_sum + (1 - free))
            else:
                weight = float(ROAD_WEIGHTS[1 + dy, 1 + dx])
                fields.append(-weight * free * _shift(padded_free, dy, dx, height, width))
        coef = torch.cat(fields, dim=1)
        self.levels: List[Tuple[Tensor, Tensor, Tensor]] = []  # (coef, free, damping / diagonal)
        mask = free
        self.direct_inverse: Optional[Tensor] = None
        while max(coef.shape[-2:]) > 1 and (not self.levels or coef.shape[-2] * coef.shape[-1] > DIRECT_CELLS):
            coef, mask = _galerkin(coef, mask)
            self.levels.append((coef, mask, COARSE_DAMPING * mask / coef[:, 4:5]))
        if self.levels and coef.shape[-2] * coef.shape[-1] > 1:
            self.direct_inverse = _dense_inverse(coef)

    def select(self, keep: Tensor) -> "_Multigrid":
        """The hierarchy of the masks ``keep`` (a 1-D index), for a shrinking batch."""
        out = _Multigrid.__new__(_Multigrid)
        out.workspace, out.height, out.width = self.workspace, self.height, self.width
        out.centre, out.neighbour = self.centre[keep], self.neighbour[keep]
        out.free = self.free[keep]
        out.inverse_diagonal_padded = self.inverse_diagonal_padded[keep]
        out.levels = [(c[keep], m[keep], d[keep]) for c, m, d in self.levels]
        out.direct_inverse = None if self.direct_inverse is None else self.direct_inverse[keep]
        return out

    def operator(self, u: Tensor, out: Tensor) -> Tensor:
        """``out = A u`` on the finest grid, both zero-bordered (``u`` zero outside the unknowns).

        Six passes over the buffers, nothing allocated: the separable ``K u`` by shifted adds
        into the workspace's row buffer and ``out``'s interior, then the diagonal.
        """
        self._stencil_sum(u, out).mul_(self.neighbour).addcmul_(self.centre, _interior(u))
        return out

    def residual(self, r: Tensor, u: Tensor, out: Tensor) -> Tensor:
        """``out = r - A u``, all zero-bordered; six passes, as :meth:`operator`."""
        inner = self._stencil_sum(u, out)
        torch.addcmul(_interior(r), inner, self.neighbour, value=-1.0, out=inner)
        inner.addcmul_(self.centre, _interior(u), value=-1.0)
        return out

    def _stencil_sum(self, u: Tensor, out: Tensor) -> Tensor:
        """``K u`` with ``K = [1 2 1]^T [1 2 1]`` (zero outside), written into ``out``'s interior
        (returned) through the workspace's row buffer: four passes."""
        height, width = self.height, self.width
        rows = self.workspace.rows[:u.shape[0]]
        torch.add(u[..., 0:width], u[..., 2:width + 2], out=rows)
        rows.add_(u[..., 1:width + 1], alpha=2.0)
        inner = torch.add(rows[..., 0:height, :], rows[..., 2:height + 2, :], out=_interior(out))
        return inner.add_(rows[..., 1:height + 1, :], alpha=2.0)

    def _coarse_cycle(self, level: int, r: Tensor) -> Tensor:
        coef, free, scaled_inverse = self.levels[level]
        if level == len(self.levels) - 1:  # the coarsest grid: solved exactly
            if self.direct_inverse is None:  # one cell per mask: the diagonal
                return scaled_inverse * r / COARSE_DAMPING
            return (self.direct_inverse @ r.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(r.shape)
        x = scaled_inverse * r
        height, width = r.shape[-2:]
        correction = self._coarse_cycle(level + 1, _restrict(r - _variable_stencil(coef, x)))
        x = x.addcmul_(free, _prolong(correction, height, width), value=OVER_CORRECTION)
        return x.addcmul_(scaled_inverse, r - _variable_stencil(coef, x))

    def __call__(self, r: Tensor, out: Tensor) -> Tensor:
        """``out`` = an approximation of ``A^-1 r``, both zero-bordered (r zero outside the
        unknowns)."""
        x = torch.mul(self.inverse_diagonal_padded, r, out=out)
        if FINE_DAMPING != 1.0:
            x.mul_(FINE_DAMPING)
        if self.levels:
            scratch = self.workspace.scratch[:r.shape[0]]
            residual = self.residual(r, x, scratch)
            correction = self._coarse_cycle(0, _restrict_padded(residual, self.height, self.width))
            _interior(x).addcmul_(self.free, _prolong(correction, self.height, self.width),
                                  value=OVER_CORRECTION)
            residual = self.residual(r, x, scratch)
            x.addcmul_(self.inverse_diagonal_padded, residual, value=FINE_DAMPING)
        return x


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Per (image, channel) dot product over the pixels, (N, C, 1, 1)."""
    return torch.linalg.vecdot(a.flatten(2), b.flatten(2))[..., None, None]


def _working_dtype(images: Tensor, tol: float) -> torch.dtype:
    """float64 for tolerances float32 cannot reach (below 1e-5) or float64 images, else float32."""
    return torch.float64 if tol < 1e-5 or images.dtype == torch.float64 else torch.float32


def solve_linear_imputation(
    images: Tensor, holes: Tensor, tol: float = 1e-7, max_iter: Optional[int] = None,
    initial: Optional[Tensor] = None, preconditioner: str = "multigrid",
) -> Tensor:
    """The exact (noise-free) solution of ROAD's imputation equations, batched.

    For every removed pixel ``i`` (per channel): ``s_i x_i - sum_{j removed} w_ij x_j =
    sum_{j known} w_ij x_j``, with ``w`` the :data:`ROAD_WEIGHTS` of the in-image neighbours
    and ``s_i`` their sum (1 inside the image, less at the border). Every image is its own
    system (its channels share the matrix) and stops when its own residual meets ``tol``, so an
    image's result does not depend on the rest of the batch.

    Args:
        images (Tensor): ``(B, C, H, W)``; values in the holes are ignored.
        holes (Tensor): bool ``(B, 1, H, W)``, True = removed.
        tol (float): relative residual ``|r| / |b|`` (per image and channel) at which a system
            counts as solved. The arithmetic is float64 below 1e-5 (or for float64 images),
            float32 otherwise.
        max_iter (int, optional): conjugate-gradient iterations at most; default
            ``20 * max(H, W) + 100``.
        initial (Tensor, optional): starting guess ``(B, C, H, W)``; default a pull-push fill.
        preconditioner (str): ``"multigrid"`` (a symmetric V-cycle: few iterations whatever the
            hole's size) or ``"jacobi"`` (the diagonal). Default ``"multigrid"``.

    Returns:
        Tensor: ``(B, C, H, W)`` in the working dtype (float32 or float64), the known pixels
        unchanged and the holes imputed. An image without a known pixel has no unique
        solution: its holes are 0 (:class:`NoisyLinearInpainter` gives it its ``fallback``).

    Examples::

        >>> x = torch.arange(25.).view(1, 1, 5, 5) % 5      # a ramp along the width
        >>> holes = torch.zeros(1, 1, 5, 5, dtype=torch.bool); holes[..., 1:4, 1:4] = True
        >>> out = solve_linear_imputation(x, holes)
        >>> bool(torch.allclose(out, x.double(), atol=1e-8))  # a linear ramp is reproduced
        True
    """
    check_choice("preconditioner", preconditioner, ("multigrid", "jacobi"))
    batch, channels, height, width = images.shape
    if max_iter is None:
        max_iter = 20 * max(height, width) + 100
    dtype = _working_dtype(images, tol)
    if batch == 0:
        return images.to(dtype)
    solvable = (~holes).flatten(1).any(1)
    if not bool(solvable.all()):  # no known pixel: no unique solution, the holes stay 0
        out = images.to(dtype).masked_fill(holes, 0.0)
        if bool(solvable.any()):
            out[solvable] = solve_linear_imputation(
                images[solvable], holes[solvable], tol, max_iter,
                None if initial is None else initial[solvable], preconditioner)
        return out
    x = images.to(dtype)
    free = holes.to(dtype)
    known_values = x.masked_fill(holes, 0.0)
    workspace = _Workspace(batch, channels, height, width, dtype, images.device)
    mg = _Multigrid(free, workspace)
    u, residual, direction, z, a_dir = workspace.vectors
    rhs = free * _neighbour_sum(known_values, known_values.new_zeros(batch, channels, height + 2, width + 2))
    threshold = (tol ** 2) * _dot(rhs, rhs)  # (B, C, 1, 1)
    if initial is None:
        initial = _pull_push_fill(x, holes)
    torch.mul(free, initial.to(dtype), out=_interior(u))
    _interior(a_dir).copy_(rhs)
    mg.residual(a_dir, u, residual)
    del rhs
    solution = torch.empty_like(x)

    def precondition(mg: _Multigrid, r: Tensor, out: Tensor) -> Tensor:
        if preconditioner == "multigrid":
            return mg(r, out)
        return torch.mul(mg.inverse_diagonal_padded, r, out=out)

    active = torch.arange(batch, device=images.device)
    direction = precondition(mg, residual, direction)
    rz = _dot(residual, direction)
    # a check is a host sync: every iteration on a CPU, every few on a GPU
    check_every = 1 if images.device.type == "cpu" else (2 if preconditioner == "multigrid" else 8)
    unconverged = 0
    for iteration in range(max_iter + 1):
        if iteration % check_every == 0 or iteration == max_iter:
            done = (_dot(residual, residual) <= threshold[active]).flatten(1).all(1)
            if iteration == max_iter:
                unconverged = int((~done).sum())
                done = torch.ones_like(done)
            if bool(done.any()):
                solution[active[done]] = _interior(u[done])
                if bool(done.all()):
                    break
                keep = (~done).nonzero().squeeze(1)
                active, mg, rz = active[keep], mg.select(keep), rz[keep]
                n = len(keep)
                for buffer in (u, residual, direction):
                    buffer[:n] = buffer[keep]  # the index copies first, so the rows may overlap
                u, residual, direction, z, a_dir = u[:n], residual[:n], direction[:n], z[:n], a_dir[:n]
        mg.operator(direction, a_dir)
        curvature = _dot(direction, a_dir)
        step = torch.where(curvature > 0, rz / curvature.clamp_min(1e-300), torch.zeros_like(rz))
        u.addcmul_(step, direction)
        residual.addcmul_(step, a_dir, value=-1.0)
        precondition(mg, residual, z)
        rz_new = _dot(residual, z)
        beta = torch.where(rz > 0, rz_new / rz.clamp_min(1e-300), torch.zeros_like(rz))
        direction, z = z.addcmul_(beta, direction), direction  # z's buffer becomes the direction
        rz = rz_new
    if unconverged:
        warn_external(
            f"linear imputation of {unconverged} image(s) stopped after max_iter={max_iter} iterations "
            f"before reaching the relative residual tol={tol}; raise max_iter or tol",
            RuntimeWarning,
        )
    return known_values + free * solution


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
        tol (float, optional): relative residual of the solver (see
            :func:`solve_linear_imputation`). Default: 1e-5 when ``noise > 0`` (solved in
            float32; on 224 x 224 photos the largest error of any imputed pixel was 3.5e-4 of the
            image range, 30x below the paper's noise), 1e-7 when ``noise == 0`` (float64; errors
            about 1e-6).
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

    def __init__(self, noise: float = 0.01, seed: int = 0, tol: Optional[float] = None,
                 max_iter: Optional[int] = None, fallback: FallbackType = 0.0) -> None:
        super().__init__(fallback)
        check_positive("noise", noise, allow_zero=True)
        check_number("seed", seed, integer=True)
        if tol is None:
            tol = 1e-5 if noise > 0 else 1e-7
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
            draws.append(torch.randn(images.shape[1:], generator=generator, dtype=torch.float32))
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
