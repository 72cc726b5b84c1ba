"""NeFLAG: attributions from the negative flux of the gradient field on a sphere around the input.

Li, Pan, Li, Qiang, Zhu, "Negative Flux Aggregation to Estimate Feature Attributions", IJCAI 2023
(arXiv 2301.06989). The paper gives the idea (divergence theorem, negative-flux points on an
eps-sphere centred on the input, no baseline), ``n``, ``eps`` and an unexplained ``m``; the
aggregation formulas and the ways of finding negative-flux points below are choices of this
project (see ``docs/neflag.md``).
"""

import contextlib
import math
from dataclasses import dataclass, fields
from typing import Callable, Iterator, List, Literal, Optional, Tuple, Union, overload

import torch
from captum.attr import GradientAttribution
from captum.log import log_usage
from torch import Tensor, nn

from captum_ext._checks import (
    check_finite,
    check_int_at_least,
    check_number,
    check_positive,
    check_target,
    select_additional_args,
    select_target,
)
from captum_ext._compat import (
    TargetType,
    TensorOrTupleOfTensorsGeneric,
    _format_additional_forward_args,
    _format_output,
    _format_tensor_into_tuples,
    _is_tuple,
)
from captum_ext._utils import derive_seed, preserved_model_state, warn_external

Tensors = Tuple[Tensor, ...]
GeneratorLike = Union[None, int, torch.Generator]

SAMPLINGS = ("antithetic", "flip", "descent")
AGGREGATIONS = ("decomposition", "vector")
DEFAULT_N = 20
DEFAULT_M = {"antithetic": 1, "flip": 1, "descent": 2}


@dataclass(frozen=True)
class NeFLAGDiagnostics:
    """Per-sample diagnostics of one :meth:`NeFLAG.attribute` call (``return_diagnostics=True``).

    Args:
        n_kept (Tensor): (B,) number of negative-flux points aggregated per sample.
        mean_flux (Tensor): (B,) mean flux density ``phi = g(z) . u`` over the kept points
            (negative); NaN for a sample that kept no point.
        n_gradients (Tensor): (B,) gradient evaluations spent on each sample.
        sphere_flux (Tensor): (B,) mean flux density over *all* evaluated points, kept or not.
            With ``"antithetic"`` sampling and directions uniform on the sphere (or an
            orthonormal basis given as ``directions``) it estimates the mean flux over the
            whole sphere, ``eps * div g(x) / d`` for small ``eps`` (divergence theorem).

    Examples::

        >>> _, diagnostics = NeFLAG(torch.nn.Linear(4, 2)).attribute(
        ...     torch.rand(3, 4), target=0, n=4, generator=0, return_diagnostics=True)
        >>> diagnostics.n_gradients.tolist()
        [8, 8, 8]
    """

    n_kept: Tensor
    mean_flux: Tensor
    n_gradients: Tensor
    sphere_flux: Tensor

    def __iter__(self) -> Iterator[Tensor]:
        """Unpack as the former NamedTuple did (``n_kept, mean_flux, ... = diagnostics``)."""
        return iter(tuple(getattr(self, f.name) for f in fields(self)))


class _Sums:
    """Running per-sample sums of the kept points' contributions, counts and fluxes."""

    def __init__(self, inputs: Tensors) -> None:
        batch = inputs[0].shape[0]
        device, dtype = inputs[0].device, inputs[0].dtype
        self.attr = [torch.zeros_like(x) for x in inputs]
        self.kept = torch.zeros(batch, dtype=torch.long, device=device)
        self.flux = torch.zeros(batch, dtype=dtype, device=device)
        self.grads = torch.zeros(batch, dtype=torch.long, device=device)
        self.all_flux = torch.zeros(batch, dtype=dtype, device=device)

    def count_gradients(self, rows: Tensor, phi: Tensor) -> None:
        self.grads.index_add_(0, rows, torch.ones_like(rows))
        self.all_flux.index_add_(0, rows, phi)

    def add(self, rows: Tensor, contrib: Tensors, phi: Tensor, keep: Tensor) -> None:
        """Add the contributions of the points ``keep`` selects; ``rows`` maps points to samples."""
        for total, c in zip(self.attr, contrib):
            total.index_add_(0, rows, torch.where(_bcast(keep, c), c, torch.zeros_like(c)))
        self.kept.index_add_(0, rows, keep.long())
        self.flux.index_add_(0, rows, torch.where(keep, phi, torch.zeros_like(phi)))


def _bcast(per_row: Tensor, like: Tensor) -> Tensor:
    """View a (P,) tensor so that it broadcasts against a (P, ...) tensor."""
    return per_row.reshape(per_row.shape + (1,) * (like.dim() - 1))


def _dot(a: Tensors, b: Tensors) -> Tensor:
    """Per-row dot product over all entries of all inputs: (P, ...) x (P, ...) -> (P,)."""
    return sum((x * y).flatten(1).sum(1) for x, y in zip(a, b))  # type: ignore[return-value]


def _normalize(u: Tensors) -> Tensors:
    """Scale each row to unit L2 norm jointly over all inputs; zero rows stay zero."""
    norm = _dot(u, u).sqrt()
    scale = torch.where(norm > 0, 1.0 / norm, torch.zeros_like(norm))
    return tuple(t * _bcast(scale, t) for t in u)


def _base_seed(generator: GeneratorLike) -> int:
    """The one seed of a call: every random direction of the call is derived from it.

    An int ``s`` means ``torch.Generator().manual_seed(s)``; a generator gives one draw (so
    successive calls with the same generator object get different directions); ``None`` draws
    from torch's global generator.
    """
    if isinstance(generator, bool) or not (
        generator is None or isinstance(generator, (int, torch.Generator))
    ):
        raise TypeError(
            "`generator` must be None, an int seed or a torch.Generator, "
            f"got {type(generator).__name__}"
        )
    if isinstance(generator, int):
        generator = torch.Generator().manual_seed(generator)
    device = "cpu" if generator is None else generator.device
    draw = torch.randint(0, 2**62, (1,), generator=generator, device=device)
    return int(draw.item())


class _Directions:
    """Unit directions per (direction index, sample), random or given by the user.

    Random directions are *common random numbers*: direction ``j`` is the same for every
    example of the call, drawn from a CPU generator seeded with ``derive_seed(seed, j)`` (and
    the fresh directions of ``"flip"`` round ``r`` from ``derive_seed(seed, "flip", r, j)``).
    So an example's directions, and hence its map, depend only on the seed and on nothing
    else in the batch (its size, its other examples, the example's position) nor on
    ``internal_batch_size``.
    """

    def __init__(self, inputs: Tensors, given: Optional[Tensors], seed: int) -> None:
        self.inputs, self.given, self.seed = inputs, given, seed
        self.batch = inputs[0].shape[0]

    def _draw(self, *key: Union[int, str]) -> Tensors:
        """One direction shared by all examples: a tuple of (1, ...) tensors, unit joint norm."""
        gen = torch.Generator().manual_seed(derive_seed(self.seed, *key))
        parts = []
        for x in self.inputs:
            dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
            draw = torch.randn((1,) + tuple(x.shape[1:]), dtype=dtype, generator=gen)
            parts.append(draw.to(device=x.device, dtype=x.dtype))
        return _normalize(tuple(parts))

    def _per_point(self, keys: List[Tuple[Union[int, str], ...]], index: Tensor) -> Tensors:
        """Directions ``keys[index[p]]`` for every point ``p``."""
        draws = [self._draw(*key) for key in keys]
        stacked = tuple(torch.cat([d[j] for d in draws]) for j in range(len(self.inputs)))
        return tuple(t[index.to(t.device)] for t in stacked)

    def fresh(self, round_: int, dirs: Tensor) -> Tensors:
        """Fresh random directions of ``"flip"`` round ``round_`` for points of directions ``dirs``."""
        unique, index = torch.unique(dirs, return_inverse=True)
        keys: List[Tuple[Union[int, str], ...]] = [("flip", round_, int(j)) for j in unique]
        return self._per_point(keys, index)

    def block(self, start: int, stop: int) -> Tensors:
        """Directions ``start..stop-1`` for every sample, flattened direction-major: (q*B, ...)."""
        q = stop - start
        if self.given is None:
            index = torch.arange(q).repeat_interleave(self.batch)
            return self._per_point([(j,) for j in range(start, stop)], index)
        out = []
        for d, x in zip(self.given, self.inputs):
            if d.dim() == x.dim():  # (n, ...): shared by all samples
                d = d[start:stop].unsqueeze(1).expand((q,) + tuple(x.shape))
            else:  # (B, n, ...)
                d = d[:, start:stop].transpose(0, 1)
            out.append(d.to(device=x.device, dtype=x.dtype).reshape((-1,) + x.shape[1:]))
        return _normalize(tuple(out))


class NeFLAG(GradientAttribution):
    r"""Negative flux aggregation (NeFLAG), a baseline-free gradient attribution.

    For the target score ``f`` with gradient field ``g``, NeFLAG looks at points
    ``z = x + eps * u`` on the sphere of radius ``eps`` centred on the input ``x`` (``u`` a unit
    direction, L2 over all entries of all inputs of one sample jointly). The flux density there
    is ``phi(z) = g(z) . u``; a point has *negative flux* when ``phi < 0`` (the gradient points
    back into the ball, so ``f(x) > f(z)`` to first order). NeFLAG aggregates the negative-flux
    points it finds:

    - ``aggregation="decomposition"``: ``A = mean over kept points of (x - z) * g(z)``
      (element-wise): each feature's share of the negative flux. A feature ``f`` ignores gets
      exactly 0, and ``sum(A) = eps * mean |phi|``. The map is unchanged when ``f`` becomes
      ``-f`` for an affine ``f``.
    - ``aggregation="vector"``: ``A = mean over kept points of phi(z) * u`` (the flux vectors);
      for an affine ``f`` with axis directions this is ``w / k``.

    Negative-flux points are found by one of three ``sampling`` strategies:

    - ``"antithetic"``: evaluate ``x + eps*u`` and ``x - eps*u`` for ``n`` directions and keep
      the more negative member of each pair (none when both are >= 0). ``2n`` gradients.
    - ``"flip"``: evaluate ``x + eps*u``; replace positive-flux points by their antipodes and
      evaluate those; points still non-negative get a fresh random direction, up to ``m`` rounds.
      About ``1.5n`` gradients for ``m = 1``.
    - ``"descent"``: from each of ``n`` random starts take ``m - 1`` projected steps on the
      sphere, ``u <- normalize(u - step_size * g / ||g||)``, and keep the most negative point of
      the path. ``n*m`` gradients.

    The paper (arXiv 2301.06989) gives the sphere, ``n = 20`` and ``eps = 0.1``; the formulas
    above, the three strategies and the meaning given to ``m`` are this package's choices. The
    defaults (``"descent"``, ``"vector"``) were picked on the stamp benchmark's stamp distance;
    with signed maps ``"decomposition"`` scores better (docs/neflag.md has the comparison).

    **What a seed means.** A call takes one seed from ``generator`` and derives every random
    direction from it: direction ``j`` is the same for all examples of the call (common random
    numbers). An example's map therefore depends only on the example, its target and
    per-example arguments, and the seed: never on the batch it is explained in (size, other
    examples, position) nor on ``internal_batch_size``. One example at a time with
    ``generator=s`` gives exactly the rows of the batched call with ``generator=s``, up to
    float rounding.
    """

    def __init__(self, forward_func: Callable[..., Tensor]) -> None:
        r"""
        Args:
            forward_func (Callable): the model, or any function of the inputs returning scores.
        """
        GradientAttribution.__init__(self, forward_func)

    @overload
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        target: TargetType = ...,
        additional_forward_args: Optional[object] = ...,
        n: Optional[int] = ...,
        eps: float = ...,
        sampling: str = ...,
        aggregation: str = ...,
        m: Optional[int] = ...,
        directions: Union[None, Tensor, Tensors] = ...,
        generator: GeneratorLike = ...,
        clamp: Optional[Tuple[float, float]] = ...,
        step_size: float = ...,
        internal_batch_size: Optional[int] = ...,
        return_diagnostics: Literal[False] = ...,
    ) -> TensorOrTupleOfTensorsGeneric: ...

    @overload
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        target: TargetType = ...,
        additional_forward_args: Optional[object] = ...,
        n: Optional[int] = ...,
        eps: float = ...,
        sampling: str = ...,
        aggregation: str = ...,
        m: Optional[int] = ...,
        directions: Union[None, Tensor, Tensors] = ...,
        generator: GeneratorLike = ...,
        clamp: Optional[Tuple[float, float]] = ...,
        step_size: float = ...,
        internal_batch_size: Optional[int] = ...,
        *,
        return_diagnostics: Literal[True],
    ) -> Tuple[TensorOrTupleOfTensorsGeneric, NeFLAGDiagnostics]: ...

    @log_usage()
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        target: TargetType = None,
        additional_forward_args: Optional[object] = None,
        n: Optional[int] = None,
        eps: float = 0.1,
        sampling: str = "descent",
        aggregation: str = "vector",
        m: Optional[int] = None,
        directions: Union[None, Tensor, Tensors] = None,
        generator: GeneratorLike = None,
        clamp: Optional[Tuple[float, float]] = None,
        step_size: float = 1.0,
        internal_batch_size: Optional[int] = None,
        return_diagnostics: bool = False,
    ) -> Union[
        TensorOrTupleOfTensorsGeneric, Tuple[TensorOrTupleOfTensorsGeneric, NeFLAGDiagnostics]
    ]:
        r"""Attribute the target score to every input feature by negative flux aggregation.

        Args:
            inputs (Tensor or tuple[Tensor, ...]): input batch (B, ...); a tuple for models with
                several inputs, in which case each sphere spans all inputs of a sample jointly.
            target (int, tuple, Tensor or list, optional): output index per sample, as in Captum.
            additional_forward_args (Any, optional): extra arguments of ``forward_func``;
                tensors are taken as batch-aligned, as in Captum.
            n (int, optional): number of directions per sample (pairs for ``"antithetic"``,
                starts for ``"descent"``). Default: 20, or the number of ``directions`` given.
            eps (float, optional): sphere radius. Default: 0.1 (the paper's).
            sampling (str, optional): ``"antithetic"``, ``"flip"`` or ``"descent"``.
                Default: ``"descent"`` (best on the stamp benchmark, see docs/neflag.md).
            aggregation (str, optional): ``"decomposition"`` or ``"vector"``. Default:
                ``"vector"`` (best stamp distance on |map| with descent sampling). With
                ``"antithetic"`` or ``"flip"`` use ``"decomposition"``: their vector maps are at
                chance level on images (random directions' flux vectors cancel slowly).
            m (int, optional): ``"flip"``: maximum rounds (default 1); ``"descent"``: gradient
                evaluations per start (default 2); must be 1 (or None) for ``"antithetic"``.
            directions (Tensor or tuple[Tensor, ...], optional): user directions instead of
                random ones, in the structure of ``inputs``: each of shape (n, ...) shared by
                all samples or (B, n, ...) per sample. They are normalised jointly per sample.
            generator (int or torch.Generator, optional): the source of the random
                directions. The call takes one 62-bit seed from it (an int ``s`` acts as
                ``torch.Generator().manual_seed(s)``; None uses torch's global generator) and
                derives direction ``j`` from that seed and ``j`` alone, the same direction for
                every example of the call (common random numbers). So an example's map depends
                on the seed and on nothing else in the batch: one example at a time with the
                same seed gives the batched result, on every device and for every
                ``internal_batch_size``. A generator object is advanced by one draw per call,
                so repeated calls with it differ; pass an int for a fixed set of directions.
                Default: torch's global generator.
            clamp (tuple[float, float], optional): clamp sphere points to ``[lo, hi]`` (this
                moves them off the sphere; flux then uses the actual displacement
                ``(z - x) / eps`` as normal). Default: None.
            step_size (float, optional): ``"descent"`` step along ``-g / ||g||``. Default: 1.0.
            internal_batch_size (int, optional): most points per forward/backward pass; memory
                is bounded by it. Default: None (all points of a batch in one pass).
            return_diagnostics (bool, optional): also return :class:`NeFLAGDiagnostics`.

        Returns:
            *Tensor* or *tuple[Tensor, ...]* of the structure and shapes of ``inputs``, and the
            :class:`NeFLAGDiagnostics` if ``return_diagnostics``. A sample that keeps no
            negative-flux point gets a zero map and a warning.

        Examples::

            >>> import torch
            >>> from captum_ext.attr import NeFLAG
            >>> net = torch.nn.Linear(4, 3)
            >>> x = torch.randn(2, 4)
            >>> attr = NeFLAG(net).attribute(x, target=0, n=8, generator=0)
            >>> attr.shape
            torch.Size([2, 4])
            >>> axes = torch.eye(4)  # one direction per feature, shared by the batch
            >>> attr, diag = NeFLAG(net).attribute(
            ...     x, target=0, directions=axes, eps=0.1, sampling="antithetic",
            ...     aggregation="decomposition", return_diagnostics=True)
            >>> w = net.weight[0].detach()
            >>> torch.allclose(attr, 0.1 * w.abs().expand(2, 4) / 4, atol=1e-6)
            True
            >>> diag.n_kept.tolist()
            [4, 4]
        """
        is_tuple = _is_tuple(inputs)
        xs = _format_tensor_into_tuples(inputs)
        args = _format_additional_forward_args(additional_forward_args)
        given = None if directions is None else _format_tensor_into_tuples(directions)
        n, m = _check_arguments(xs, n, eps, sampling, aggregation, m, given, clamp, step_size,
                                internal_batch_size)
        xs = tuple(x.detach() for x in xs)
        batch = xs[0].shape[0]
        check_target(target, batch)
        select_additional_args(args, slice(None), batch)  # raises on a misaligned tensor
        seed = _base_seed(generator)

        sums = _Sums(xs)
        if batch > 0:
            model = self.forward_func if isinstance(self.forward_func, nn.Module) else None
            with preserved_model_state(model) if model is not None else contextlib.nullcontext():
                run = _Run(self, xs, target, args, eps, aggregation, clamp, internal_batch_size,
                           sums)
                run.sample(sampling, _Directions(xs, given, seed), n, m, step_size)

        attributions = _finish(sums)
        out = _format_output(is_tuple, attributions)
        if not return_diagnostics:
            return out
        mean_flux = sums.flux / sums.kept.clamp(min=1).to(sums.flux.dtype)
        mean_flux = torch.where(sums.kept > 0, mean_flux, torch.full_like(mean_flux, math.nan))
        sphere_flux = sums.all_flux / sums.grads.clamp(min=1).to(sums.all_flux.dtype)
        return out, NeFLAGDiagnostics(sums.kept, mean_flux, sums.grads, sphere_flux)

    def has_convergence_delta(self) -> bool:
        return False

    @property
    def multiplies_by_inputs(self) -> bool:
        return False


def _finish(sums: _Sums) -> Tensors:
    """Mean over kept points per sample; zero (and a warning) where nothing was kept."""
    empty = (sums.kept == 0).nonzero().flatten()
    if empty.numel() > 0:
        warn_external(
            f"NeFLAG: sample(s) {empty.tolist()} kept no negative-flux point; their attributions "
            "are 0. Use more directions (`n`), another `sampling` or a larger `eps`."
        )
    denom = sums.kept.clamp(min=1)
    return tuple(a / _bcast(denom.to(a.dtype), a) for a in sums.attr)


class _Run:
    """One attribute() call: evaluates gradients at sphere points in bounded chunks."""

    def __init__(self, method: NeFLAG, xs: Tensors, target: TargetType, args: Optional[Tuple],
                 eps: float, aggregation: str, clamp: Optional[Tuple[float, float]],
                 internal_batch_size: Optional[int], sums: _Sums) -> None:
        self.method, self.xs, self.target, self.args = method, xs, target, args
        self.eps, self.aggregation, self.clamp = eps, aggregation, clamp
        self.batch = xs[0].shape[0]
        self.max_rows = internal_batch_size
        self.sums = sums

    def sample(self, sampling: str, source: "_Directions", n: int, m: int, step: float) -> None:
        """Run ``sampling`` over the ``n`` directions, a block of directions at a time.

        A block holds as many directions as fit ``internal_batch_size`` points (at least one
        direction; :meth:`evaluate` then splits the block's points further if needed).
        """
        strategy = {"antithetic": self.antithetic, "flip": self.flip, "descent": self.descent}
        per_direction = (2 if sampling == "antithetic" else 1) * self.batch
        block = n if self.max_rows is None else max(1, self.max_rows // per_direction)
        for start in range(0, n, block):
            strategy[sampling](source, start, min(n, start + block), m, step)

    # --- evaluation -------------------------------------------------------------------------

    def evaluate(self, rows: Tensor, disp: Tensors) -> Tuple[Tensors, Tensors, Tensor]:
        """Gradients at ``x[rows] + disp``, in passes of at most ``internal_batch_size`` points.

        Returns the displacement actually used (differs from ``disp`` only under ``clamp``),
        the gradients and the flux density ``phi = g . disp / eps``, all per point.
        """
        if self.clamp is not None:
            lo, hi = self.clamp
            disp = tuple((x[rows] + d).clamp(lo, hi) - x[rows] for x, d in zip(self.xs, disp))
        size = max(1, rows.numel() if self.max_rows is None else self.max_rows)
        grads: List[Tensors] = []
        for begin in range(0, rows.numel(), size):
            part = slice(begin, begin + size)
            grads.append(self._gradients(rows[part], tuple(d[part] for d in disp)))
        g = tuple(torch.cat(parts) for parts in zip(*grads))
        phi = _dot(g, disp) / self.eps
        self.sums.count_gradients(rows, phi)
        return disp, g, phi

    def _gradients(self, rows: Tensor, disp: Tensors) -> Tensors:
        points = tuple((x[rows] + d).requires_grad_() for x, d in zip(self.xs, disp))
        grads = self.method.gradient_func(
            self.method.forward_func, points, select_target(self.target, rows),
            select_additional_args(self.args, rows, self.batch),
        )
        return tuple(g.detach() for g in grads)

    def keep(self, rows: Tensor, disp: Tensors, g: Tensors, phi: Tensor, keep: Tensor) -> None:
        """Aggregate the points selected by ``keep``."""
        if self.aggregation == "decomposition":
            contrib = tuple(-d * gi for d, gi in zip(disp, g))
        else:
            contrib = tuple(d * _bcast(phi / self.eps, d) for d in disp)
        self.sums.add(rows, contrib, phi, keep)

    def rows_for(self, count: int) -> Tensor:
        """Sample index of each point of a direction-major block of ``count`` directions."""
        return torch.arange(self.batch, device=self.xs[0].device).repeat(count)

    # --- strategies -------------------------------------------------------------------------

    def antithetic(self, source: _Directions, start: int, stop: int, m: int, step: float) -> None:
        u = source.block(start, stop)
        half = u[0].shape[0]
        rows = self.rows_for(2 * (stop - start))
        disp = tuple(torch.cat([self.eps * t, -self.eps * t]) for t in u)
        disp, g, phi = self.evaluate(rows, disp)
        pair = phi.view(2, half)
        best = pair.argmin(0)
        keep = torch.nn.functional.one_hot(best, 2).T.bool() & (pair.min(0).values < 0)
        self.keep(rows, disp, g, phi, keep.reshape(-1))

    def flip(self, source: _Directions, start: int, stop: int, m: int, step: float) -> None:
        rows = self.rows_for(stop - start)
        dirs = torch.arange(start, stop, device=rows.device).repeat_interleave(self.batch)
        disp = tuple(self.eps * t for t in source.block(start, stop))
        for round_ in range(m):
            if round_ > 0:
                disp = tuple(self.eps * t for t in source.fresh(round_, dirs))
            disp, g, phi = self.evaluate(rows, disp)
            self.keep(rows, disp, g, phi, phi < 0)
            rows, (dirs, *rest) = _subset(phi >= 0, rows, (dirs,) + tuple(-d for d in disp))
            disp = tuple(rest)
            if rows.numel() == 0:
                return
            disp, g, phi = self.evaluate(rows, disp)
            self.keep(rows, disp, g, phi, phi < 0)
            rows, (dirs, *rest) = _subset(phi >= 0, rows, (dirs,) + disp)
            disp = tuple(rest)
            if rows.numel() == 0:
                return

    def descent(self, source: _Directions, start: int, stop: int, m: int, step: float) -> None:
        rows = self.rows_for(stop - start)
        u = source.block(start, stop)
        best: Optional[Tuple[Tensors, Tensors, Tensor]] = None
        g: Tensors = ()
        for i in range(m):
            if i > 0:
                g_unit = _normalize(g)
                u = _normalize(tuple(t - step * gu for t, gu in zip(u, g_unit)))
            disp, g, phi = self.evaluate(rows, tuple(self.eps * t for t in u))
            best = (disp, g, phi) if best is None else _better(best, (disp, g, phi))
        disp, g, phi = best  # type: ignore[misc]
        self.keep(rows, disp, g, phi, phi < 0)


def _subset(mask: Tensor, rows: Tensor, tensors: Tensors) -> Tuple[Tensor, Tensors]:
    return rows[mask], tuple(t[mask] for t in tensors)


def _better(
    old: Tuple[Tensors, Tensors, Tensor], new: Tuple[Tensors, Tensors, Tensor]
) -> Tuple[Tensors, Tensors, Tensor]:
    """Per point, the evaluation with the more negative flux."""
    take = new[2] < old[2]
    pick = lambda a, b: tuple(torch.where(_bcast(take, x), x, y) for x, y in zip(b, a))  # noqa
    return pick(old[0], new[0]), pick(old[1], new[1]), torch.where(take, new[2], old[2])


def _check_arguments(
    xs: Tensors, n: Optional[int], eps: float, sampling: str, aggregation: str, m: Optional[int],
    given: Optional[Tensors], clamp: Optional[Tuple[float, float]], step_size: float,
    internal_batch_size: Optional[int],
) -> Tuple[int, int]:
    """Validate the arguments; return the resolved ``n`` and ``m``."""
    for i, x in enumerate(xs):
        name = "inputs" if len(xs) == 1 else f"inputs[{i}]"
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"`{name}` must be a floating-point tensor")
        if x.dim() == 0 or x.shape[0] != xs[0].shape[0]:
            raise ValueError(f"`{name}` must have a batch dimension of {xs[0].shape[0]}, got "
                             f"shape {tuple(x.shape)}")
        check_finite(name, x)
    check_positive("eps", eps)
    if sampling not in SAMPLINGS:
        raise ValueError(f"`sampling` must be one of {SAMPLINGS}, got {sampling!r}")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"`aggregation` must be one of {AGGREGATIONS}, got {aggregation!r}")
    if m is None:
        m = DEFAULT_M[sampling]
    check_int_at_least("m", m, 1)
    if sampling == "antithetic" and m != 1:
        raise ValueError("`m` has no meaning for sampling='antithetic'; leave it None (or 1)")
    check_positive("step_size", step_size)
    if internal_batch_size is not None:
        check_int_at_least("internal_batch_size", internal_batch_size, 1)
    if clamp is not None:
        if not (isinstance(clamp, (tuple, list)) and len(clamp) == 2):
            raise ValueError(f"`clamp` must be a pair (lo, hi) with lo < hi, got {clamp!r}")
        check_number("clamp[0]", clamp[0], allow_inf=True)
        check_number("clamp[1]", clamp[1], allow_inf=True)
        if not clamp[0] < clamp[1]:
            raise ValueError(f"`clamp` must be a pair (lo, hi) with lo < hi, got {clamp!r}")
    if given is None:
        n = DEFAULT_N if n is None else n
        check_int_at_least("n", n, 1)
        return n, m
    count = _check_directions(xs, given)
    if n is not None:
        check_int_at_least("n", n, 1)
        if n != count:
            raise ValueError(f"`n`={n} disagrees with the {count} `directions` given")
    return count, m


def _check_directions(xs: Tensors, given: Tensors) -> int:
    """Check user directions against the inputs; return their number per sample."""
    if len(given) != len(xs):
        raise ValueError(f"`directions` must have one tensor per input ({len(xs)}), got "
                         f"{len(given)}")
    counts: set = set()
    norms: Union[int, Tensor] = 0
    for i, (d, x) in enumerate(zip(given, xs)):
        if not isinstance(d, Tensor) or not d.is_floating_point():
            raise TypeError(f"`directions[{i}]` must be a floating-point tensor")
        shared = d.dim() == x.dim() and d.shape[1:] == x.shape[1:]
        per_sample = d.dim() == x.dim() + 1 and d.shape[0] == x.shape[0] and \
            d.shape[2:] == x.shape[1:]
        if not (shared or per_sample):
            raise ValueError(
                f"`directions[{i}]` must have shape (n, {', '.join(map(str, x.shape[1:]))}) or "
                f"(B, n, ...) matching input {i} of shape {tuple(x.shape)}, got {tuple(d.shape)}")
        check_finite(f"directions[{i}]", d)
        counts.add(d.shape[0] if shared else d.shape[1])
        sq = d.detach().pow(2).flatten(2 if per_sample else 1).sum(-1)
        norms = norms + (sq if per_sample else sq.unsqueeze(0))
    if len(counts) != 1:
        raise ValueError(f"`directions` give different numbers of directions per input: {counts}")
    count = counts.pop()
    if count < 1:
        raise ValueError("`directions` must hold at least one direction")
    if bool((torch.as_tensor(norms) == 0).any()):
        raise ValueError("`directions` contains a zero direction")
    return count
