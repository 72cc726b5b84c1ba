r"""Solvers of the Markov reward process ``V = R + gamma P V`` on a :class:`GraphOperator`.

The fixed point is ``V* = (I - gamma P)^-1 R``. Two solvers, both batched over images and
channels (every channel of every image is its own right-hand side):

- :func:`value_iteration`: ``V_{t+1} = R + gamma P V_t``, ``V_0 = R``; it stops when
  ``max|V_{t+1} - V_t| <= tol (1 - gamma) / gamma * max|R|``, which bounds the error of
  ``V_{t+1}`` by ``tol * max|R|``.
- :func:`conjugate_gradient`: preconditioned CG (Jacobi, or the aggregation-multigrid V-cycle of
  :mod:`~captum_ext.propagate.multigrid`) on the symmetric positive-definite system
  ``(D - gamma W) V = D R`` (same solution); it stops when the residual of ``(I - gamma P) V = R``
  is at most ``tol (1 - gamma) max|R|``, which bounds the error by ``tol * max|R|`` since
  ``||(I - gamma P)^-1||_inf <= 1 / (1 - gamma)``. Jacobi preconditioning is applied as the
  symmetric scaling ``S A S``, ``S = (D / gamma)^-1/2`` (the same iterates in exact arithmetic,
  fewer passes per iteration); the multigrid V-cycle preconditions that scaled system.

Every image stops on its own (per-image stopping): an image that meets its rule is frozen while
the others continue, so no result depends on the rest of the batch (batched equals
one-at-a-time to float rounding). Images coupled by a user affinity form one system and stop
together.

Both report the same diagnostics (:class:`SolveInfo`) and the same guarantee in exact
arithmetic: each image's ``max|V - V*| <= error_bound * max|R|``. In float32 with gamma near 1,
``V`` (up to ``max|R| / (1 - gamma)``) is accurate only to rounding, about ``1e-5 max|V|``;
``(1 - gamma) V`` still meets ``tol * max|R|``.

Rewards are divided by their per-image ``max|R|`` before solving (the problem is linear) so that
very small attributions (e.g. raw gradients) lose no float precision, and values below
``1e-20`` (relative) are flushed to 0 so that the propagation front creates no denormal floats.
"""

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from captum_ext._checks import check_choice
from captum_ext._utils import check_fraction, check_int_at_least, check_positive, warn_external
from captum_ext.propagate.graph import check_all_finite
from captum_ext.propagate.multigrid import (
    MultigridPreconditioner,
    scaled_system_stencil,
    stencil_apply,
)
from captum_ext.propagate.operators import GraphOperator, StencilOperator, stencil_product

SOLVERS = ("cg", "value_iteration")
PRECONDITIONERS = ("multigrid", "jacobi")
_FLUSH_BELOW = 1e-20
_FLUSH_EVERY = 4  # iterations; values shrink by far less than 1e-12 in 4 steps in practice
_CHECK_EVERY = 4  # value iteration tests its stopping rule every few steps (and at max_iter)


@dataclass(frozen=True)
class SolveInfo:
    """Diagnostics of a solve (per image: every image stops on its own, see the module notes).

    Attributes:
        solver (str): ``"cg"``, ``"value_iteration"`` or ``"identity"`` (``gamma = 0``).
        iterations (int): iterations run on the batch (the most any image needed); each one
            application of the operator.
        residual (Tensor): (B,) per image, ``max|R - (I - gamma P) V| / max|R|`` (for value
            iteration an upper bound, ``gamma max|V_{t+1} - V_t| / max|R|``).
        error_bound (Tensor): (B,) per image, a bound on ``max|V - V*| / max|R|``:
            ``residual / (1 - gamma)``. Guaranteed in exact arithmetic; in float32 with gamma
            near 1 the rounding of ``V`` alone (about ``eps max|V|``) leaves a residual that
            makes this bound pessimistic (e.g. 1e-3 where the true error is 1e-5).
        converged (bool): the stopping rule was met by every image before ``max_iter``.
        image_iterations (Tensor): (B,) int64, the iterations after which each image stopped.
        image_converged (Tensor): (B,) bool, whether each image met the stopping rule.
        preconditioner (str): CG's preconditioner (``"multigrid"`` or ``"jacobi"``); ``"none"``
            for the other solvers.

    Examples::

        >>> op = StencilOperator.from_guide(torch.rand(2, 3, 8, 8))
        >>> values, info = solve_mrp(op, torch.rand(2, 1, 8, 8), gamma=0.9)
        >>> info.solver, info.converged, info.image_iterations.shape
        ('cg', True, torch.Size([2]))
    """

    solver: str
    iterations: int
    residual: Tensor
    error_bound: Tensor
    converged: bool
    image_iterations: Tensor
    image_converged: Tensor
    preconditioner: str = "none"


def _check_solver_args(gamma: float, tol: float, max_iter: int) -> None:
    check_fraction("gamma", gamma)
    check_positive("tol", tol, allow_zero=True)
    check_int_at_least("max_iter", max_iter, 1)


def _reduce_dims(op: GraphOperator) -> Tuple[int, ...]:
    """Dims of a (B, M, H, W) map that form one independent system (per image when possible)."""
    return (2, 3) if op.block_diagonal else (0, 2, 3)


def _abs_max(x: Tensor) -> Tensor:
    """(B, 1, 1, 1) max|x| per image, as ``max(amax(x), -amin(x))``: two plain reductions, no
    temporary (``vector_norm(ord=inf)`` over several dims takes a slow path on CPUs, ~15x)."""
    dims = tuple(range(1, x.dim()))
    return torch.maximum(x.amax(dim=dims, keepdim=True), x.amin(dim=dims, keepdim=True).neg_())


def _per_image_max(x: Tensor, op: GraphOperator) -> Tensor:
    """(B, 1, 1, 1) max|x| per image (over the whole batch when images are coupled)."""
    amax = _abs_max(x)
    return amax if op.block_diagonal else amax.amax().expand_as(amax)


def _normalise(reward: Tensor, op: GraphOperator) -> Tuple[Tensor, Tensor]:
    scale = _per_image_max(reward, op)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return reward / scale, scale


def _flush_(x: Tensor) -> Tensor:
    """Set ``|x| <= 1e-20`` to 0 in place (NaN and inf kept): ``hardshrink`` is one fused pass,
    ~8x faster than ``masked_fill_(x.abs() < t)`` (which writes two temporaries)."""
    return torch.ops.aten.hardshrink.out(x, _FLUSH_BELOW, out=x)


def _finish(
    solver: str, values: Tensor, scale: Tensor, iterations: int, residual: Tensor, gamma: float,
    tol: float, max_iter: int, warn: bool, image_iterations: Tensor, image_converged: Tensor,
    preconditioner: str = "none",
) -> Tuple[Tensor, SolveInfo]:
    residual = residual.flatten()
    bound = residual / (1.0 - gamma)
    converged = bool(image_converged.all())
    if warn and not converged:
        failed = (~image_converged).nonzero().flatten().tolist()
        reason = (
            "the stopping rule `tol=0` cannot be met in floating point"
            if tol == 0
            else f"reaching tol={tol}"
        )
        warn_external(
            f"{solver} stopped at max_iter={max_iter} or at the float precision limit before "
            f"{reason} for images {failed} (worst error bound {bound.max().item():.3g} of "
            f"max|R|); raise `max_iter` or `tol`",
            RuntimeWarning,
        )
    info = SolveInfo(solver, iterations, residual, bound, converged, image_iterations,
                     image_converged, preconditioner)
    return values * scale, info


def _residual(op: GraphOperator, values: Tensor, reward: Tensor, gamma: float,
              scratch: Tensor) -> Tensor:
    """``R - (I - gamma P) V = R - V + W V / (D / gamma)``, written into ``scratch``."""
    product = op.apply(values, out=scratch)
    return torch.addcdiv(reward - values, product, op.degree / gamma, out=scratch)


def _identity(reward: Tensor) -> Tuple[Tensor, SolveInfo]:
    """``gamma = 0``: ``V* = R`` exactly."""
    batch = reward.shape[0]
    zeros = reward.new_zeros(batch)
    counts = torch.zeros(batch, dtype=torch.long, device=reward.device)
    done = torch.ones(batch, dtype=torch.bool, device=reward.device)
    return reward.clone(), SolveInfo("identity", 0, zeros, zeros.clone(), True, counts, done)


def value_iteration(
    op: GraphOperator,
    reward: Tensor,
    gamma: float = 0.9,
    tol: float = 1e-4,
    max_iter: int = 1000,
    warn: bool = True,
) -> Tuple[Tensor, SolveInfo]:
    r"""Value iteration ``V_{t+1} = R + gamma P V_t`` from ``V_0 = R``, each image on its own.

    The rule ``max|V_{t+1} - V_t| <= tol (1 - gamma) / gamma * max|R|`` (so that
    ``max|V - V*| <= tol max|R|``) is checked for each image every few steps and at
    ``max_iter``; an image that meets it keeps that ``V``, whatever the rest of the batch does,
    so batching never changes a result. After ``max_iter`` steps the remaining images return
    their last ``V`` (with a ``RuntimeWarning`` when ``warn``). With ``tol = 0`` it runs exactly
    ``max_iter`` steps and returns ``V_t``.

    Args:
        op (GraphOperator): the graph (B images of H x W).
        reward (Tensor): (B, M, H, W) reward ``R``.
        gamma (float): discount in [0, 1). Default 0.9.
        tol (float): error tolerance relative to each image's ``max|R|``. Default 1e-4.
        max_iter (int): cap on the number of steps. Default 1000.
        warn (bool): warn when ``max_iter`` is hit before ``tol``. Default True.

    Returns:
        ``(V, info)``: values (B, M, H, W) and a :class:`SolveInfo`.

    Examples::

        >>> from captum_ext.propagate import StencilOperator
        >>> op = StencilOperator.from_guide(torch.rand(1, 3, 6, 6))
        >>> V, info = value_iteration(op, torch.full((1, 1, 6, 6), 2.0), gamma=0.5)
        >>> torch.allclose(V, torch.full_like(V, 4.0), atol=1e-3), info.converged
        (True, True)
    """
    _check_solver_args(gamma, tol, max_iter)
    op.check_values(reward, "reward")
    check_all_finite("reward", reward)
    if gamma == 0:
        return _identity(reward)
    R, scale = _normalise(reward, op)
    threshold = tol * (1.0 - gamma) / gamma
    batch = R.shape[0]
    active = torch.ones(batch, dtype=torch.bool, device=R.device)
    image_iterations = torch.zeros(batch, dtype=torch.long, device=R.device)
    steps = torch.full((batch,), float("inf"), dtype=R.dtype, device=R.device)
    step_rhs = R
    values, new, scratch = R.clone(), torch.empty_like(R), torch.empty_like(R)
    result = R.clone()
    iterations = 0
    while iterations < max_iter and bool(active.any()):
        iterations += 1
        op.step(values, step_rhs, gamma, out=new, scratch=scratch)
        if iterations % _FLUSH_EVERY == 0:
            _flush_(new)
        if iterations % _CHECK_EVERY == 0 or iterations == max_iter:
            step = _per_image_max(torch.sub(new, values, out=scratch), op).flatten()
            steps = torch.where(active, step, steps)
            stopped = active & (step <= threshold) if threshold > 0 else active & (step == 0)
            if iterations == max_iter:
                stopped = active
            if bool(stopped.any()):
                result[stopped] = new[stopped]
                image_iterations[stopped] = iterations
                active = active & ~stopped
        values, new = new, values
    image_converged = steps <= threshold
    return _finish("value_iteration", result, scale, iterations, gamma * steps, gamma, tol,
                   max_iter, warn, image_iterations, image_converged)


def conjugate_gradient(
    op: GraphOperator,
    reward: Tensor,
    gamma: float = 0.9,
    tol: float = 1e-4,
    max_iter: int = 1000,
    warn: bool = True,
    preconditioner: str = "jacobi",
) -> Tuple[Tensor, SolveInfo]:
    r"""Preconditioned conjugate gradient on ``(D - gamma W) V = D R``, each image on its own.

    The system is symmetric positive definite when ``W`` is symmetric (always for window graphs)
    and ``gamma < 1``. Each channel of each image is solved as its own system (its own step
    sizes), all in one batched tensor loop. Starts from ``V_0 = R / (1 - gamma)`` (exact for a
    constant reward). An image stops (is frozen: its step sizes become 0) as soon as its
    residual of ``(I - gamma P) V = R`` is at most ``tol (1 - gamma) max|R|``, whatever the rest
    of the batch does, so batching never changes a result beyond float rounding. An image whose
    step size stops being finite and positive (the float precision limit, e.g. with
    ``tol = 0``) is frozen too, at its last finite iterate (a curvature below the smallest
    normal float counts as not positive). The reported residual is recomputed from the
    returned ``V``.

    Args:
        op (GraphOperator): the graph; ``op.is_symmetric()`` must hold.
        reward (Tensor): (B, M, H, W) reward ``R``.
        gamma (float): discount in [0, 1). Default 0.9.
        tol (float): error tolerance relative to each image's ``max|R|``. Default 1e-4.
        max_iter (int): cap on the number of iterations. Default 1000.
        warn (bool): warn when an image stops before meeting ``tol``. Default True.

    Returns:
        ``(V, info)``: values (B, M, H, W) and a :class:`SolveInfo`.

    Examples::

        >>> from captum_ext.propagate import StencilOperator
        >>> op = StencilOperator.from_guide(torch.rand(2, 3, 8, 8))
        >>> R = torch.randn(2, 3, 8, 8)
        >>> V1, _ = conjugate_gradient(op, R, tol=1e-6)
        >>> V2, _ = value_iteration(op, R, tol=1e-6)
        >>> torch.allclose(V1, V2, atol=1e-4)
        True
    """
    _check_solver_args(gamma, tol, max_iter)
    op.check_values(reward, "reward")
    check_all_finite("reward", reward)
    if not op.is_symmetric():
        raise ValueError("solver='cg' needs a symmetric affinity; use solver='value_iteration'")
    if gamma == 0:
        return _identity(reward)
    R, scale = _normalise(reward, op)
    # The system A' V = b', A' = D / gamma - W, b' = D R / gamma, has the solution of
    # (D - gamma W) V = D R. CG runs on its symmetric Jacobi scaling: with s = (D / gamma)^-1/2,
    # A~ = S A' S (unit diagonal but for the self-loop), V = s y, b~ = s b' = R / s. This is
    # Jacobi-preconditioned CG in exact arithmetic, but needs no preconditioning pass and its
    # r.z is a plain sum of squares. The residual r~ = s (b' - A' V), so the stopping rule's
    # residual of (I - gamma P) V = R is r~ s.
    inverse_sqrt = (op.degree / gamma).rsqrt()  # s, (B, 1, H, W)
    dims = _reduce_dims(op)
    threshold = tol * (1.0 - gamma)
    scratch, scaled_residual = torch.empty_like(R), torch.empty_like(R)
    batch = R.shape[0]
    s_max = _per_image_max(inverse_sqrt, op).flatten()  # s > 0
    s_min = inverse_sqrt.amin(dim=(1, 2, 3)).flatten()
    s_min = s_min if op.block_diagonal else s_min.amin().expand_as(s_min)

    # a window graph: -A~ as one stencil (the diagonal folded into the centre weight), K passes
    negated_stencil: Optional[Tensor] = None
    radius = 0
    if isinstance(op, StencilOperator):
        negated_stencil = scaled_system_stencil(op.weights, op.degree, gamma, negated=True)
        radius = op.radius

    def negated_system(v: Tensor) -> Tensor:  # -A~ v = s W (s v) - v
        if negated_stencil is not None:
            return stencil_apply(negated_stencil, v, radius, out=scratch)
        op.apply(torch.mul(v, inverse_sqrt, out=scratch), out=scaled_residual)
        return torch.addcmul(v, scaled_residual, inverse_sqrt, value=-1.0, out=scratch).neg_()

    def dot(a: Tensor, b: Tensor) -> Tensor:  # per system, (B, M, 1, 1)
        # vecdot: one fused multiply-sum; a batched (1, N) @ (N, 1) matmul is ~7x slower on CPUs
        products = torch.linalg.vecdot(a.flatten(2), b.flatten(2))[..., None, None]
        return products if len(dims) == 2 else products.sum(dim=0, keepdim=True)

    def square_norm(a: Tensor) -> Tensor:  # dot(a, a), one read pass
        norms = torch.linalg.vector_norm(a.flatten(2), dim=-1)[..., None, None].square_()
        return norms if len(dims) == 2 else norms.sum(dim=0, keepdim=True)

    def per_image(flags: Tensor) -> Tensor:  # (B or 1, M, 1, 1) -> (B,): any channel
        flags = flags.flatten(1).any(dim=1)
        return flags if len(dims) == 2 else flags.expand(batch)

    check_choice("preconditioner", preconditioner, PRECONDITIONERS)
    multigrid: Optional[MultigridPreconditioner] = None
    if preconditioner == "multigrid" and isinstance(op, StencilOperator):
        assert negated_stencil is not None
        multigrid = MultigridPreconditioner(-negated_stencil, radius)
    used = "multigrid" if multigrid is not None else "jacobi"

    def residual_max(r: Tensor) -> Tensor:  # (B,) max|R - (I - gamma P) V| = max|r~ s|
        # bounded by max|r~| max s and min s; the product pass runs only when they straddle
        bound = _per_image_max(r, op).flatten()
        upper, lower = bound * s_max, bound * s_min
        unsure = (upper > threshold) & (lower <= threshold)
        if not bool(unsure.any()):
            return upper
        exact = _per_image_max(torch.mul(r, inverse_sqrt, out=scaled_residual), op).flatten()
        return torch.where(unsure, exact, upper)

    values = R / ((1.0 - gamma) * inverse_sqrt)  # y_0 = V_0 / s, V_0 = R / (1 - gamma)
    residual = torch.add(negated_system(values), R / inverse_sqrt)  # b~ - A~ y
    z = residual if multigrid is None else multigrid(residual)
    direction = z.clone()
    # the loop's product -A~ p: same buffers every iteration, so its passes are planned once
    negated_direction: Callable[[], Tensor] = lambda: negated_system(direction)  # noqa: E731
    if negated_stencil is not None:
        negated_direction = stencil_product(negated_stencil, direction, radius, out=scratch)
    rz = square_norm(residual) if multigrid is None else dot(residual, z)
    active = residual_max(residual) > threshold
    image_iterations = torch.zeros(batch, dtype=torch.long, device=R.device)
    tiny = torch.finfo(R.dtype).tiny
    iterations = 0
    while iterations < max_iter and bool(active.any()):
        iterations += 1
        image_iterations += active
        negated_image = negated_direction()
        curvature = -dot(direction, negated_image)
        # a curvature below the smallest normal float is the precision limit (tol = 0), not a
        # step: dividing by it would throw the iterate away
        alpha = rz / torch.where(curvature > tiny, curvature, torch.ones_like(curvature))
        broken = ~torch.isfinite(alpha) | (curvature <= tiny)
        # frozen images (converged, or at the float precision limit) take zero steps
        gate = (active & ~per_image(broken & (rz != 0))).view(-1, 1, 1, 1)
        alpha = torch.where(gate & ~broken, alpha, 0.0)
        values.addcmul_(alpha, direction)
        residual.addcmul_(alpha, negated_image)
        if multigrid is None:
            z, rz_new = residual, square_norm(residual)
        else:
            z = multigrid(residual)
            rz_new = dot(residual, z)
        beta = torch.where(gate & (rz != 0), rz_new / torch.where(rz != 0, rz, 1.0), 0.0)
        beta = torch.where(torch.isfinite(beta), beta, 0.0)
        rz = rz_new
        torch.addcmul(z, beta, direction, out=direction)
        if iterations % _FLUSH_EVERY == 0:
            _flush_(direction)
        last_max = residual_max(residual)
        active = gate.flatten() & (last_max > threshold)
    image_converged = residual_max(residual) <= threshold
    values.mul_(inverse_sqrt)  # V = s y
    true_residual = _per_image_max(_residual(op, values, R, gamma, scratch), op)
    return _finish("cg", values, scale, iterations, true_residual, gamma, tol, max_iter, warn,
                   image_iterations, image_converged, used)


def solve_mrp(
    op: GraphOperator,
    reward: Tensor,
    gamma: float = 0.9,
    solver: str = "cg",
    tol: float = 1e-4,
    max_iter: int = 1000,
    warn: bool = True,
    preconditioner: str = "jacobi",
) -> Tuple[Tensor, SolveInfo]:
    """Solve ``V = R + gamma P V`` with ``solver`` (``"cg"`` or ``"value_iteration"``).

    See :func:`conjugate_gradient` and :func:`value_iteration` for the arguments.

    Examples::

        >>> from captum_ext.propagate import StencilOperator
        >>> op = StencilOperator.from_guide(torch.rand(1, 1, 4, 4))
        >>> V, info = solve_mrp(op, torch.zeros(1, 1, 4, 4), solver="value_iteration")
        >>> V.abs().max().item(), info.solver
        (0.0, 'value_iteration')
    """
    if solver == "cg":
        return conjugate_gradient(op, reward, gamma, tol, max_iter, warn, preconditioner)
    if solver == "value_iteration":
        return value_iteration(op, reward, gamma, tol, max_iter, warn)
    raise ValueError(f"`solver` must be one of {SOLVERS}, got {solver!r}")
