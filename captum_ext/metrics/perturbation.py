"""Perturbation metrics: deletion and insertion curves (RISE), insertion minus deletion, MoRF / LeRF.

Every function ranks the pixels of each image by its attribution map (channels reduced to one
score per pixel), removes (or inserts) pixels in that order, fills the removed pixels with an
*inpainter* and records the model's score of the target class. All perturbed images of all
images are evaluated in batched forwards of at most ``max_examples_per_batch`` rows; nothing
loops over pixels, steps or images in Python except the chunking.

What fills the removed pixels is the ``inpainter=`` argument (Rong et al., ROAD, ICML 2022: the
order of methods can flip with it), resolved by :func:`captum_ext.inpaint.registry.resolve_inpainter`
and called through :func:`captum_ext.inpaint.apply_inpainter`:

- a number or a tensor broadcastable to the images: a constant fill (the default, ``0.0``, is
  RISE's deletion and the pathway paper's "0 in normalised space");
- a registered name (``"harmonic"``, ``"linear"`` (ROAD's noisy linear imputation), ``"blur"``,
  ``"noise"``, ``"constant"``, ...);
- an ``Inpainter`` or any callable ``inpaint(images, holes) -> images`` with images
  ``(n, C, H, W)`` and holes ``(n, 1, H, W)`` (1 = removed). The images it receives hold 0 in
  the hole (it must not rely on the removed content); only its values in the hole are used; an
  image that is all hole gets the inpainter's fallback (0 for a plain callable).

The old names ``filler=`` and ``batch_size=`` keep working for one release with a
``DeprecationWarning``.

Known (Petsiuk et al., RISE, BMVC 2018): a fixed number of pixels per step (224 for 224 x 224
images, i.e. one image width), the target probability after each step, the area under the
curve by the trapezoid rule, normalised to [0, 1]. Deletion: lower is better; insertion: higher.
Known (pathway paper): MoRF / LeRF remove the 1..10 % most / least important pixels, rank by
the channel maximum, fill with 0 and report ``|p_c(x) - p_c(x')| / p_c(x)``.

Chosen here: pixels are ranked by the channel sum (``reduce="sum"``) for the curves and by the
channel maximum for MoRF / LeRF; ties are broken by one fixed seeded permutation of the pixel
grid (the same for every image, so a batch gives what one image at a time gives); a partial last
step is placed at its true fraction on the x-axis; insertion starts from the inpainter applied
to the whole image (for a constant, the constant image). The curves also take a schedule of
``fractions`` of the image instead of ``pixels_per_step``: :data:`SMALL_OBJECT_FRACTIONS` is finer
at the start (0.5 %, 1 %, 2 %, 5 %, 10 %, then steps of 10 %), so that methods that differ on a
small object are told apart; the AUC is over the fraction of pixels removed.

Policies (``docs/conventions.md``): maps ``(B, C, H, W)`` or ``(B, H, W)``; an image whose map
holds a NaN or an inf gets NaN scores and a NaN AUC (the other images are unaffected); targets
follow Captum's rules; a batch of 0 images returns empty results without running the model;
the model is left as it was (training flags, ``requires_grad``, hooks and, when it is in
training mode, parameter and buffer values).
"""

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import torch
from captum.log import log_usage
from torch import Tensor

from captum_ext._checks import (
    as_map_batch,
    check_choice,
    check_finite,
    check_image_batch,
    check_int_at_least,
    check_number,
    check_target,
    check_tensor,
)
from captum_ext._compat import TargetType
from captum_ext._utils import deprecated_kwarg, warn_external
from captum_ext.inpaint import ConstantInpainter
from captum_ext.inpaint.base import _apply_inpainter
from captum_ext.inpaint.registry import resolve_inpainter
from captum_ext.metrics._common import (
    check_class_index,
    model_guard,
    nonfinite_images,
    target_vector,
)

Filler = Callable[[Tensor, Tensor], Tensor]
InpainterLike = Union[str, int, float, Tensor, Filler]
FillerLike = InpainterLike  # deprecated name
TargetLike = TargetType
#: ``fill(images, holes, image_index, step_index) -> images``: how the perturbed rows are filled.
RowFill = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]

#: A deletion / insertion schedule for small objects: fractions of the image, finer at the start.
SMALL_OBJECT_FRACTIONS: Tuple[float, ...] = (
    0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0
)

__all__ = [
    "ConstantFill",
    "PerturbationCurve",
    "SMALL_OBJECT_FRACTIONS",
    "deletion_curve",
    "insertion_curve",
    "insertion_minus_deletion",
    "normalized_auc",
    "normalised_auc",
    "pixel_perturbation",
    "pixel_ranks",
    "resolve_filler",
]

_REDUCTIONS = ("sum", "max", "mean")


class ConstantFill(ConstantInpainter):
    """Deprecated alias of :class:`captum_ext.inpaint.ConstantInpainter` (one release).

    Examples::

        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     fill = ConstantFill(2.0)
        >>> holes = torch.ones(1, 1, 2, 2)
        >>> fill(torch.zeros(1, 1, 2, 2), holes).flatten().tolist()
        [2.0, 2.0, 2.0, 2.0]
    """

    def __init__(self, value: Union[int, float, Tensor]) -> None:
        warn_external(
            "`ConstantFill` is deprecated and will be removed in the next release; use "
            "`captum_ext.inpaint.ConstantInpainter`",
            DeprecationWarning,
        )
        super().__init__(value)


def resolve_filler(filler: InpainterLike) -> Filler:
    """Deprecated alias of :func:`captum_ext.inpaint.registry.resolve_inpainter` (one release).

    Examples::

        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     resolve_filler(0.5)
        ConstantInpainter(0.5)
    """
    warn_external(
        "`resolve_filler` is deprecated and will be removed in the next release; use "
        "`captum_ext.inpaint.resolve_inpainter`",
        DeprecationWarning,
    )
    return resolve_inpainter(filler, name="filler")


class _Rows:
    """A :data:`RowFill` with what :func:`_perturbed_scores` may exploit about it.

    ``constant``: the value of a constant fill (the rows are then composited in one pass,
    straight from the clean images, without building the unperturbed copies first);
    ``per_image``: the fill is called once per image's rows, and chunks of rows never split an
    image's rows differently from a call on that image alone (an iterative solver then sees
    the same rows whatever batch the image is in).
    """

    def __init__(self, fill: RowFill, constant: Optional[Any] = None, per_image: bool = False) -> None:
        self.fill, self.constant, self.per_image = fill, constant, per_image

    def __call__(self, images: Tensor, holes: Tensor, image: Tensor, step: Tensor) -> Tensor:
        return self.fill(images, holes, image, step)


def _row_fill(inpainter: Filler, image_indices: Optional[Sequence[int]] = None) -> RowFill:
    """The fill of perturbed rows: ROAD's noisy inpainter gets per-(image, step) seeds.

    The key of row (image ``b``, step ``s``) is ``(image_indices[b], s)``, or ``(b, s)``
    without ``image_indices``. The noisy inpainter is called once per image (its rows of the
    chunk), so an image's imputation does not depend on the other images of the batch.
    Other inpainters run through ``apply_inpainter`` without its scan of the known pixels
    (every caller checked ``inputs`` for NaN and inf already).
    """
    from captum_ext.inpaint.linear import NoisyLinearInpainter

    if isinstance(inpainter, NoisyLinearInpainter):

        def noisy(images: Tensor, holes: Tensor, image: Tensor, step: Tensor) -> Tensor:
            positions = image.tolist()
            ids = positions if image_indices is None else [int(image_indices[i]) for i in positions]
            keys = list(zip(ids, step.tolist()))
            out = []
            for lo, hi in _runs(positions):
                out.append(inpainter(images[lo:hi], holes[lo:hi], image_indices=keys[lo:hi]))
            return out[0] if len(out) == 1 else torch.cat(out)

        return _Rows(noisy, per_image=True)
    constant = inpainter.value if type(inpainter) in (ConstantInpainter, ConstantFill) else None  # type: ignore[attr-defined]
    return _Rows(lambda images, holes, image, step: _apply_inpainter(inpainter, images, holes, None, check_known=False),
                 constant=constant)


def _runs(values: Sequence[int]) -> List[Tuple[int, int]]:
    """``[(lo, hi), ...]``: the maximal runs of equal consecutive entries of ``values``."""
    runs: List[Tuple[int, int]] = []
    lo = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[lo]:
            runs.append((lo, i))
            lo = i
    return runs


def _pixel_scores(attributions: Tensor, inputs: Tensor, abs: bool, reduce: str) -> Tuple[Tensor, Tensor]:
    """One float64 score per pixel (B, H * W), zero for the images of the second output.

    The second output (B,) bool marks the images whose map holds a NaN or an inf.
    """
    check_choice("reduce", reduce, _REDUCTIONS)
    a = as_map_batch("attributions", attributions)
    batch, channels, height, width = inputs.shape
    if a.shape[0] != batch or a.shape[2:] != inputs.shape[2:] or a.shape[1] not in (1, channels):
        raise ValueError(
            f"`attributions` of shape {tuple(attributions.shape)} do not match inputs of shape "
            f"{tuple(inputs.shape)}: expected (B, C, H, W), (B, 1, H, W) or (B, H, W)"
        )
    if not (a.is_floating_point() or a.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"`attributions` must be a real-valued tensor, got {a.dtype}")
    a = a.detach().to(device=inputs.device, dtype=torch.float64)
    bad = nonfinite_images(a)
    a = a.masked_fill(bad.view(-1, 1, 1, 1), 0.0)
    a = a.abs() if abs else a
    reduced = {"sum": lambda t: t.sum(1), "max": lambda t: t.amax(1), "mean": lambda t: t.mean(1)}[reduce](a)
    return reduced.flatten(1), bad


@functools.lru_cache(maxsize=16)
def _tie_permutation(n: int, tie_seed: int) -> Tensor:
    """The seeded permutation of ``n`` pixel indices that breaks ties (CPU; never written to)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(tie_seed))


def pixel_ranks(scores: Tensor, descending: bool = True, tie_seed: int = 0) -> Tensor:
    """The position of every pixel in the removal order, per image.

    Ties are broken by one seeded random permutation of the pixel indices, shared by all images
    (so results do not depend on the batch an image is in).

    Args:
        scores (Tensor): (B, N) pixel scores.
        descending (bool): highest score first (MoRF, deletion, insertion). Default True.
        tie_seed (int): seed of the tie-breaking permutation. Default 0.

    Returns:
        Tensor: (B, N) long; ``rank[b, p] = k`` means pixel ``p`` is the ``k``-th to go.

    Examples::

        >>> pixel_ranks(torch.tensor([[0.1, 0.9, 0.5]])).tolist()
        [[2, 0, 1]]
    """
    check_tensor("scores", scores, dims=(2,), finite=True)
    check_number("tie_seed", tie_seed, integer=True)
    return _ranks(scores, descending, int(tie_seed))


def _ranks(scores: Tensor, descending: bool, tie_seed: int) -> Tensor:
    """:func:`pixel_ranks` without its checks (for scores made finite by :func:`_pixel_scores`)."""
    batch, n = scores.shape
    perm = _tie_permutation(n, tie_seed).to(scores.device)
    order = perm[torch.sort(scores[:, perm], dim=1, descending=descending, stable=True).indices]
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(n, device=scores.device).expand(batch, n))
    return ranks


def _model_scores(
    forward_func: Callable, images: Tensor, target: Tensor, softmax: bool, args: Tuple
) -> Tuple[Tensor, Tensor]:
    """The target's score per row (float64) and whether the target is the arg-max (bool)."""
    output = forward_func(images, *args)
    if not isinstance(output, Tensor) or output.dim() != 2 or output.shape[0] != images.shape[0]:
        got = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise ValueError(f"`forward_func` must return (batch, classes) scores, got {got}")
    check_class_index(target, output.shape[1])
    output = output.detach().to(torch.float64)
    hits = output.argmax(dim=1) == target
    if softmax:
        output = output.softmax(dim=1)
    return output.gather(1, target[:, None]).squeeze(1), hits


def _args(args: Any, index: Tensor, batch: int) -> Tuple[Any, ...]:
    from captum_ext._checks import select_additional_args

    if args is None:
        return ()
    selected = select_additional_args(args if isinstance(args, tuple) else (args,), index, batch)
    return tuple(selected)


@torch.no_grad()
def _resolve_target(
    forward_func: Callable, inputs: Tensor, target: TargetType, max_rows: int, args: Any
) -> Tensor:
    """(B,) long class per image; ``None``: the model's prediction on ``inputs``."""
    batch = inputs.shape[0]
    vector = target_vector(target, batch, inputs.device)
    if vector is not None:
        return vector
    preds = []
    for lo in range(0, batch, max_rows):
        index = torch.arange(lo, min(lo + max_rows, batch), device=inputs.device)
        output = forward_func(inputs[index], *_args(args, index, batch))
        if not isinstance(output, Tensor) or output.dim() != 2:
            got = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
            raise ValueError(f"`forward_func` must return (batch, classes) scores, got {got}")
        preds.append(output.argmax(dim=1))
    return torch.cat(preds).to(inputs.device)


def _row_chunks(batch: int, steps: int, max_rows: int, per_image: bool) -> List[Tuple[int, int]]:
    """Row ranges ``[lo, hi)`` of the forwards over the ``batch * steps`` rows (image-major).

    ``per_image``: no chunk splits an image's rows except where they exceed ``max_rows``, and
    then at the same offsets as for the image alone (whole images per chunk otherwise).
    """
    total = batch * steps
    if not per_image:
        return [(lo, min(lo + max_rows, total)) for lo in range(0, total, max_rows)]
    if steps <= max_rows:
        per = (max_rows // steps) * steps
        return [(lo, min(lo + per, total)) for lo in range(0, total, per)]
    return [(b * steps + lo, b * steps + min(lo + max_rows, steps)) for b in range(batch)
            for lo in range(0, steps, max_rows)]


def _constant_value(value: Any, inputs: Tensor) -> Optional[Tensor]:
    """A constant fill as a tensor broadcastable to one image ``(1, C, H, W)``; None otherwise
    (e.g. one value per example), which takes the general path."""
    value = torch.as_tensor(value, dtype=inputs.dtype, device=inputs.device)
    one = (1,) + tuple(inputs.shape[1:])
    try:
        if torch.broadcast_shapes(value.shape, one) != torch.Size(one):
            return None
    except RuntimeError:
        return None
    return value


@torch.no_grad()
def _perturbed_scores(
    forward_func: Callable,
    inputs: Tensor,
    ranks: Tensor,
    counts: Tensor,
    insert: bool,
    fill: RowFill,
    target: Tensor,
    softmax: bool,
    max_rows: int,
    args: Any,
    with_hits: bool = False,
) -> Any:
    """Scores (B, S): image ``b`` with its first ``counts[s]`` ranked pixels removed (or inserted).

    With ``with_hits`` also (B, S) bool: whether the target is still the arg-max.

    Row ``(b, s)`` is ``b * S + s``; each chunk of rows is built image by image (the masks
    ``ranks[b] < counts[s]`` by broadcasting, without copying the ranks; a constant fill
    composited straight from the clean image), filled and scored in one forward.
    """
    batch, channels, height, width = inputs.shape
    steps = counts.numel()
    num_pixels = height * width
    counts_col = counts.view(-1, 1).to(ranks.dtype)
    value = getattr(fill, "constant", None)
    constant = None if value is None else _constant_value(value, inputs)
    scores = torch.empty(batch * steps, dtype=torch.float64, device=inputs.device)
    hits = torch.empty(batch * steps, dtype=torch.bool, device=inputs.device)
    compare = torch.ge if insert else torch.lt  # holes: the pixels not inserted / the ones removed
    for lo, hi in _row_chunks(batch, steps, max_rows, bool(getattr(fill, "per_image", False))):
        holes = torch.empty(hi - lo, num_pixels, dtype=torch.bool, device=inputs.device)
        images = None if constant is None else torch.empty(hi - lo, channels, height, width, dtype=inputs.dtype,
                                                            device=inputs.device)
        for b in range(lo // steps, (hi - 1) // steps + 1):  # the images of the chunk
            s_lo, s_hi = max(lo - b * steps, 0), min(hi - b * steps, steps)
            r_lo, r_hi = b * steps + s_lo - lo, b * steps + s_hi - lo
            compare(ranks[b:b + 1], counts_col[s_lo:s_hi], out=holes[r_lo:r_hi])
            if images is not None and constant is not None:
                torch.where(holes[r_lo:r_hi].view(-1, 1, height, width), constant, inputs[b:b + 1],
                            out=images[r_lo:r_hi])
        rows = torch.arange(lo, hi, device=inputs.device)
        b_rows = torch.div(rows, steps, rounding_mode="floor")
        if images is None:
            images = fill(inputs[b_rows], holes.view(-1, 1, height, width), b_rows, rows - b_rows * steps)
        scores[lo:hi], hits[lo:hi] = _model_scores(forward_func, images, target[b_rows], softmax,
                                                   _args(args, b_rows, batch))
    if with_hits:
        return scores.view(batch, steps), hits.view(batch, steps)
    return scores.view(batch, steps)


def normalized_auc(scores: Tensor, fractions: Optional[Tensor] = None) -> Tensor:
    """Area under curves by the trapezoid rule, divided by the width of the x-range.

    Args:
        scores (Tensor): (B, S) curve values, S >= 2.
        fractions (Tensor, optional): (S,) strictly increasing x-coordinates; default evenly
            spaced on [0, 1] (RISE).

    Returns:
        Tensor: (B,) float64; a curve of probabilities gives a value in [0, 1], a constant
        curve ``c`` gives ``c``; a curve with a NaN gives NaN.

    Examples::

        >>> normalized_auc(torch.tensor([[1.0, 0.0]])).item()
        0.5
        >>> round(normalized_auc(torch.tensor([[1.0, 1.0, 0.0]]), torch.tensor([0.0, 0.9, 1.0])).item(), 6)
        0.95
    """
    if not isinstance(scores, Tensor) or scores.dim() != 2 or scores.shape[1] < 2:
        got = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"`scores` must be (B, S) with S >= 2 steps, got {got}")
    y = scores.to(torch.float64)
    if fractions is None:
        x = torch.linspace(0.0, 1.0, y.shape[1], dtype=torch.float64, device=y.device)
    else:
        x = torch.as_tensor(fractions, dtype=torch.float64, device=y.device)
        if x.shape != (y.shape[1],):
            raise ValueError(f"`fractions` must have shape ({y.shape[1]},), got {tuple(x.shape)}")
        if not bool((x[1:] > x[:-1]).all()):
            raise ValueError("`fractions` must be strictly increasing")
    return torch.trapezoid(y, x, dim=1) / (x[-1] - x[0])


def normalised_auc(scores: Tensor, fractions: Optional[Tensor] = None) -> Tensor:
    """Deprecated British spelling of :func:`normalized_auc` (one release).

    Examples::

        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     normalised_auc(torch.tensor([[1.0, 0.0]])).item()
        0.5
    """
    warn_external(
        "`normalised_auc` is deprecated and will be removed in the next release; use "
        "`normalized_auc`",
        DeprecationWarning,
    )
    return normalized_auc(scores, fractions)


@dataclass
class PerturbationCurve:
    """A deletion or insertion curve for a batch of images.

    Attributes:
        fractions (Tensor): (S,) float64, fraction of pixels removed (deletion) or inserted
            (insertion) at each step.
        scores (Tensor): (B, S) float64, the target's score (probability by default) per step;
            NaN rows for images whose map holds a NaN or an inf.

    Examples::

        >>> curve = PerturbationCurve(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64),
        ...                           torch.tensor([[1.0, 0.5, 0.0]], dtype=torch.float64))
        >>> curve.auc.tolist()
        [0.5]
    """

    fractions: Tensor
    scores: Tensor

    @property
    def auc(self) -> Tensor:
        """(B,) normalized area under each image's curve over the fraction of pixels (trapezoid)."""
        return normalized_auc(self.scores, self.fractions)


def _step_counts(num_pixels: int, pixels_per_step: Optional[int], width: int, device: torch.device) -> Tensor:
    step = width if pixels_per_step is None else pixels_per_step
    check_int_at_least("pixels_per_step", step, 1)
    if step > num_pixels:
        raise ValueError(f"`pixels_per_step` must be <= the number of pixels per image ({num_pixels}), got {step}")
    steps = math.ceil(num_pixels / step)
    return (torch.arange(steps + 1, device=device) * step).clamp_(max=num_pixels)


def _fraction_counts(fractions: Any, num_pixels: int, device: torch.device) -> Tensor:
    """Pixel counts ``round(f * num_pixels)`` of a schedule of fractions, validated."""
    if isinstance(fractions, Tensor):
        fractions = fractions.tolist()
    if isinstance(fractions, (int, float)) and not isinstance(fractions, bool):
        fractions = [fractions]
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, Sequence):
        raise TypeError(f"`fractions` must be a sequence of numbers, got {type(fractions).__name__}")
    if len(fractions) == 0:
        raise ValueError("`fractions` must not be empty")
    counts = []
    for f in fractions:
        if isinstance(f, bool) or not isinstance(f, (int, float)):
            raise TypeError(f"`fractions` must hold numbers, got {type(f).__name__}")
        if not 0 <= f <= 1:  # also refuses NaN
            raise ValueError(f"`fractions` must lie in [0, 1], got {f}")
        counts.append(int(math.floor(f * num_pixels + 0.5)))
    return torch.tensor(counts, device=device)


def _curve_counts(
    num_pixels: int, width: int, pixels_per_step: Optional[int], fractions: Optional[Sequence[float]],
    device: torch.device,
) -> Tensor:
    if fractions is None:
        return _step_counts(num_pixels, pixels_per_step, width, device)
    if pixels_per_step is not None:
        raise ValueError("pass either `pixels_per_step` or `fractions`, not both")
    counts = _fraction_counts(fractions, num_pixels, device)
    if counts.numel() < 2 or not bool((counts[1:] > counts[:-1]).all()):
        raise ValueError(
            f"`fractions` must be increasing with at least 2 entries and give different pixel counts "
            f"on an image of {num_pixels} pixels, got counts {counts.tolist()}"
        )
    return counts


def _inpainter_and_rows(inpainter: Any, max_examples_per_batch: Any, kwargs: dict) -> Tuple[Filler, int]:
    """Apply the deprecations (``filler`` -> ``inpainter``, ``batch_size`` -> ``max_examples_per_batch``)."""
    inpainter = deprecated_kwarg(kwargs, "filler", "inpainter", inpainter, 0.0)
    max_rows = deprecated_kwarg(kwargs, "batch_size", "max_examples_per_batch", max_examples_per_batch, 64)
    if kwargs:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(kwargs))}")
    check_int_at_least("max_examples_per_batch", max_rows, 1)
    return resolve_inpainter(inpainter), max_rows


def _curve(
    insert: bool,
    forward_func: Callable,
    inputs: Tensor,
    attributions: Tensor,
    target: TargetType,
    inpainter: Filler,
    pixels_per_step: Optional[int],
    fractions: Optional[Sequence[float]],
    max_rows: int,
    softmax: bool,
    abs: bool,
    reduce: str,
    additional_forward_args: Any,
    tie_seed: int,
) -> PerturbationCurve:
    check_image_batch("inputs", inputs)
    check_finite("inputs", inputs)
    scores, bad = _pixel_scores(attributions, inputs, abs, reduce)
    num_pixels = scores.shape[1]
    counts = _curve_counts(num_pixels, inputs.shape[-1], pixels_per_step, fractions, inputs.device)
    x = counts.to(torch.float64) / num_pixels
    if inputs.shape[0] == 0:
        check_target(target, 0)
        return PerturbationCurve(x, torch.zeros(0, counts.numel(), dtype=torch.float64, device=inputs.device))
    with model_guard(forward_func):
        target_t = _resolve_target(forward_func, inputs, target, max_rows, additional_forward_args)
        check_number("tie_seed", tie_seed, integer=True)
        ranks = _ranks(scores, True, int(tie_seed))
        values = _perturbed_scores(
            forward_func, inputs, ranks, counts, insert, _row_fill(inpainter), target_t, softmax, max_rows,
            additional_forward_args,
        )
    return PerturbationCurve(x, values.masked_fill(bad[:, None], math.nan))


_CURVE_ARGS = """
    Args:
        forward_func (callable): the model; ``forward_func(images, *additional_forward_args)``
            returns (n, classes) scores.
        inputs (Tensor): images (B, C, H, W).
        attributions (Tensor): maps (B, C, H, W), (B, 1, H, W) or (B, H, W); channels are
            reduced to one score per pixel (all channels of a pixel go together).
        target (int, list or Tensor, optional): class per image (Captum's rules); default: the
            model's prediction on ``inputs``.
        inpainter (number, Tensor, str, Inpainter or callable): what replaces removed pixels
            (see the module docstring). Default: ``0.0``. (Old name ``filler``, deprecated.)
        pixels_per_step (int, optional): pixels per step; default: the image width (RISE: 224
            for 224 x 224 images). The last step may be partial.
        max_examples_per_batch (int): perturbed images per forward. Default 64. (Old name
            ``batch_size``, deprecated.)
        softmax (bool): apply a softmax to the outputs (False for a model that already returns
            probabilities, or to score logits). Default True.
        abs (bool): rank by ``|attribution|``. Default False.
        reduce (str): ``"sum"``, ``"max"`` or ``"mean"`` over channels. Default ``"sum"``.
        additional_forward_args (any, optional): extra arguments of ``forward_func``; tensors
            with a first dimension have one row per image and follow it.
        tie_seed (int): seed of the tie-breaking permutation. Default 0.
        fractions (sequence of float, optional): instead of ``pixels_per_step``, the fractions
            of the pixels removed (inserted) at each step, increasing in [0, 1], e.g.
            :data:`SMALL_OBJECT_FRACTIONS`; each is rounded to a pixel count, which must differ
            from step to step. The AUC is over these fractions (normalized by their range).
"""


@log_usage()
def deletion_curve(
    forward_func: Callable,
    inputs: Tensor,
    attributions: Tensor,
    target: TargetType = None,
    inpainter: InpainterLike = 0.0,
    pixels_per_step: Optional[int] = None,
    max_examples_per_batch: int = 64,
    softmax: bool = True,
    abs: bool = False,
    reduce: str = "sum",
    additional_forward_args: Any = None,
    tie_seed: int = 0,
    fractions: Optional[Sequence[float]] = None,
    **kwargs: Any,
) -> PerturbationCurve:
    fill, max_rows = _inpainter_and_rows(inpainter, max_examples_per_batch, kwargs)
    return _curve(False, forward_func, inputs, attributions, target, fill, pixels_per_step, fractions, max_rows,
                  softmax, abs, reduce, additional_forward_args, tie_seed)


@log_usage()
def insertion_curve(
    forward_func: Callable,
    inputs: Tensor,
    attributions: Tensor,
    target: TargetType = None,
    inpainter: InpainterLike = 0.0,
    pixels_per_step: Optional[int] = None,
    max_examples_per_batch: int = 64,
    softmax: bool = True,
    abs: bool = False,
    reduce: str = "sum",
    additional_forward_args: Any = None,
    tie_seed: int = 0,
    fractions: Optional[Sequence[float]] = None,
    **kwargs: Any,
) -> PerturbationCurve:
    fill, max_rows = _inpainter_and_rows(inpainter, max_examples_per_batch, kwargs)
    return _curve(True, forward_func, inputs, attributions, target, fill, pixels_per_step, fractions, max_rows,
                  softmax, abs, reduce, additional_forward_args, tie_seed)


deletion_curve.__doc__ = (
    """Deletion curve (RISE): remove the most important pixels first, record the target's score.

    Step ``s`` removes the ``s * pixels_per_step`` top-ranked pixels (all channels), or the
    ``fractions[s]`` top-ranked fraction, and fills them with ``inpainter``; with the default
    schedule step 0 is the clean image and the last step removes every pixel. A faithful map
    makes the score fall fast: a lower ``auc`` is better.
"""
    + _CURVE_ARGS
    + """
    Returns:
        PerturbationCurve: ``fractions`` (S,), ``scores`` (B, S) and ``auc`` (B,).

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1, bias=False))
        >>> _ = net[1].weight.data.copy_(torch.tensor([[4.0, 3.0, 2.0, 1.0]]))
        >>> x = torch.ones(1, 1, 2, 2)
        >>> curve = deletion_curve(net, x, net[1].weight.view(1, 1, 2, 2), target=0, softmax=False,
        ...                        pixels_per_step=1)
        >>> curve.scores.tolist(), curve.fractions.tolist()
        ([[10.0, 6.0, 3.0, 1.0, 0.0]], [0.0, 0.25, 0.5, 0.75, 1.0])
        >>> deletion_curve(net, x, net[1].weight.view(1, 1, 2, 2), target=0, softmax=False,
        ...                fractions=[0.0, 0.5, 1.0]).scores.tolist()
        [[10.0, 3.0, 0.0]]
"""
)

insertion_curve.__doc__ = (
    """Insertion curve (RISE): start from the filled image, put the most important pixels back first.

    At step ``s`` the ``s * pixels_per_step`` (or ``fractions[s]``) top-ranked pixels hold their
    original values and every other pixel is filled by ``inpainter`` (an inpainter fills them
    from the inserted ones). A faithful map makes the score rise fast: a higher ``auc`` is
    better.
"""
    + _CURVE_ARGS
    + """
    Returns:
        PerturbationCurve: ``fractions`` (S,), ``scores`` (B, S) and ``auc`` (B,).

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1, bias=False))
        >>> _ = net[1].weight.data.copy_(torch.tensor([[4.0, 3.0, 2.0, 1.0]]))
        >>> x = torch.ones(1, 1, 2, 2)
        >>> curve = insertion_curve(net, x, net[1].weight.view(1, 1, 2, 2), target=0, softmax=False,
        ...                         pixels_per_step=1)
        >>> curve.scores.tolist(), curve.auc.item()
        ([[0.0, 4.0, 7.0, 9.0, 10.0]], 6.25)
"""
)


@log_usage()
def insertion_minus_deletion(
    forward_func: Callable,
    inputs: Tensor,
    attributions: Tensor,
    target: TargetType = None,
    inpainter: InpainterLike = 0.0,
    pixels_per_step: Optional[int] = None,
    max_examples_per_batch: int = 64,
    softmax: bool = True,
    abs: bool = False,
    reduce: str = "sum",
    additional_forward_args: Any = None,
    tie_seed: int = 0,
    fractions: Optional[Sequence[float]] = None,
    **kwargs: Any,
) -> Tensor:
    """Insertion AUC minus deletion AUC per image (as NeFLAG reports it): higher is better.

    Both curves use the same ranking, inpainter and steps; see :func:`deletion_curve` for the
    arguments.

    Returns:
        Tensor: (B,) float64, in [-1, 1] for probabilities.

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1, bias=False))
        >>> _ = net[1].weight.data.copy_(torch.tensor([[4.0, 3.0, 2.0, 1.0]]))
        >>> x = torch.ones(1, 1, 2, 2)
        >>> insertion_minus_deletion(net, x, net[1].weight.view(1, 1, 2, 2), target=0,
        ...                          softmax=False, pixels_per_step=1).item()
        2.5
    """
    fill, max_rows = _inpainter_and_rows(inpainter, max_examples_per_batch, kwargs)
    common = (forward_func, inputs, attributions, target, fill, pixels_per_step, fractions, max_rows, softmax,
              abs, reduce, additional_forward_args, tie_seed)
    return _curve(True, *common).auc - _curve(False, *common).auc


@log_usage()
def pixel_perturbation(
    forward_func: Callable,
    inputs: Tensor,
    attributions: Tensor,
    target: TargetType = None,
    fractions: Sequence[float] = tuple(k / 100 for k in range(1, 11)),
    order: str = "morf",
    inpainter: InpainterLike = 0.0,
    max_examples_per_batch: int = 64,
    softmax: bool = True,
    abs: bool = False,
    reduce: str = "max",
    additional_forward_args: Any = None,
    tie_seed: int = 0,
    **kwargs: Any,
) -> Tensor:
    """MoRF / LeRF pixel perturbation: ``|p_c(x) - p_c(x')| / p_c(x)`` after removing a fraction.

    ``x'`` is ``x`` with the ``round(f * H * W)`` most (``"morf"``) or least (``"lerf"``)
    important pixels filled by ``inpainter``. MoRF: higher is better (the map found what
    matters); LeRF: lower is better (what it calls unimportant is). Multiply by 100 for the
    paper's percent.

    Args:
        forward_func (callable): the model, returning (n, classes) scores.
        inputs (Tensor): images (B, C, H, W).
        attributions (Tensor): maps (B, C, H, W), (B, 1, H, W) or (B, H, W).
        target (int, list or Tensor, optional): class per image; default: the prediction.
        fractions (sequence of float): fractions of pixels to remove, each in [0, 1].
            Default 0.01, 0.02, ..., 0.10 (the pathway paper).
        order (str): ``"morf"`` (most relevant first) or ``"lerf"``. Default ``"morf"``.
        inpainter (number, Tensor, str, Inpainter or callable): what replaces removed pixels.
            Default ``0.0``. (Old name ``filler``, deprecated.)
        max_examples_per_batch (int): perturbed images per forward. Default 64. (Old name
            ``batch_size``, deprecated.)
        softmax (bool): apply a softmax to the outputs. Default True.
        abs (bool): rank by ``|attribution|``. Default False.
        reduce (str): ``"max"`` (the pathway paper's channel max), ``"sum"`` or ``"mean"``.
        additional_forward_args (any, optional): extra arguments of ``forward_func``.
        tie_seed (int): seed of the tie-breaking permutation. Default 0.

    Returns:
        Tensor: (B, len(fractions)) float64; NaN where ``p_c(x) = 0`` and for images whose
        map holds a NaN or an inf.

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1, bias=False))
        >>> _ = net[1].weight.data.copy_(torch.tensor([[4.0, 3.0, 2.0, 1.0]]))
        >>> x, a = torch.ones(1, 1, 2, 2), net[1].weight.view(1, 1, 2, 2)
        >>> pixel_perturbation(net, x, a, target=0, fractions=[0.25, 0.5], softmax=False).tolist()
        [[0.4, 0.7]]
        >>> pixel_perturbation(net, x, a, target=0, fractions=[0.25], order="lerf", softmax=False).tolist()
        [[0.1]]
    """
    fill, max_rows = _inpainter_and_rows(inpainter, max_examples_per_batch, kwargs)
    check_choice("order", order, ("morf", "lerf"))
    check_image_batch("inputs", inputs)
    check_finite("inputs", inputs)
    scores, bad = _pixel_scores(attributions, inputs, abs, reduce)
    counts = _fraction_counts(fractions, scores.shape[1], inputs.device)
    if inputs.shape[0] == 0:
        check_target(target, 0)
        return torch.zeros(0, counts.numel(), dtype=torch.float64, device=inputs.device)
    counts = torch.cat([counts.new_zeros(1), counts])  # step 0: the clean image
    with model_guard(forward_func):
        target_t = _resolve_target(forward_func, inputs, target, max_rows, additional_forward_args)
        check_number("tie_seed", tie_seed, integer=True)
        ranks = _ranks(scores, order == "morf", int(tie_seed))
        values = _perturbed_scores(
            forward_func, inputs, ranks, counts, False, _row_fill(fill), target_t, softmax, max_rows,
            additional_forward_args,
        )
    clean = values[:, :1]
    change = (clean - values[:, 1:]).abs() / clean
    return change.masked_fill((clean == 0) | bad[:, None], math.nan)
