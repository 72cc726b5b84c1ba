"""Perturbation metrics: deletion and insertion curves (RISE), insertion minus deletion, MoRF / LeRF.

Every function ranks the pixels of each image by its attribution map (channels reduced to one
score per pixel), removes (or inserts) pixels in that order, fills the removed pixels with a
*filler* and records the model's score of the target class. All perturbed images of all images
are evaluated in batched forwards of at most ``batch_size`` images; nothing loops over pixels,
steps or images in Python except the chunking.

The filler is a parameter (Rong et al., ROAD, ICML 2022: the order of methods can flip with it):

- a number or a tensor broadcastable to the images: a constant fill (the default, ``0.0``, is
  RISE's deletion and the pathway paper's "0 in normalised space");
- a name resolved by :func:`captum_ext.inpaint.get_inpainter` (``"harmonic"``, ``"blur"``,
  ``"noise"``, ``"constant"``, ...), imported only when a name is given;
- any callable ``fill(images, holes) -> images`` with images ``(n, C, H, W)`` and holes
  ``(n, 1, H, W)`` (1 = removed, in the images' dtype). The callable receives the *original*
  images (so a RISE-style blurred canvas can be built); only its values at the holes are used.

Known (Petsiuk et al., RISE, BMVC 2018): a fixed number of pixels per step (224 for 224 x 224
images, i.e. one image width), the target probability after each step, the area under the
curve by the trapezoid rule, normalised to [0, 1]. Deletion: lower is better; insertion: higher.
Known (pathway paper): MoRF / LeRF remove the 1..10 % most / least important pixels, rank by
the channel maximum, fill with 0 and report ``|p_c(x) - p_c(x')| / p_c(x)``.

Chosen here: pixels are ranked by the channel sum (``reduce="sum"``) for the curves and by the
channel maximum for MoRF / LeRF; ties are broken by one fixed seeded permutation of the pixel
grid (the same for every image, so a batch gives what one image at a time gives); a partial last
step is placed at its true fraction on the x-axis; insertion starts from the filler applied to
the whole image (for a constant, the constant image; RISE starts from a blurred copy, which a
callable filler can reproduce).
"""

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import torch
from captum.log import log_usage
from torch import Tensor

from captum_ext._utils import check_image_batch, check_int_at_least

Filler = Callable[[Tensor, Tensor], Tensor]
FillerLike = Union[str, int, float, Tensor, Filler]
TargetLike = Union[None, int, Sequence[int], Tensor]

__all__ = [
    "ConstantFill",
    "PerturbationCurve",
    "deletion_curve",
    "insertion_curve",
    "insertion_minus_deletion",
    "normalised_auc",
    "pixel_perturbation",
    "pixel_ranks",
    "resolve_filler",
]

_REDUCTIONS = ("sum", "max", "mean")


class ConstantFill:
    """Fill removed pixels with a constant (a number, or a tensor broadcastable to the images).

    Args:
        value (float or Tensor): the fill value, e.g. ``0.0`` or a per-channel ``(C, 1, 1)``.

    Examples::

        >>> fill = ConstantFill(2.0)
        >>> fill(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)).flatten().tolist()
        [2.0, 2.0, 2.0, 2.0]
    """

    def __init__(self, value: Union[int, float, Tensor]) -> None:
        self.value = value

    def __call__(self, images: Tensor, holes: Tensor) -> Tensor:
        value = torch.as_tensor(self.value, dtype=images.dtype, device=images.device)
        return torch.broadcast_to(value, images.shape)

    def __repr__(self) -> str:
        return f"ConstantFill({self.value!r})"


def resolve_filler(filler: FillerLike) -> Filler:
    """Turn a filler specification into a callable ``fill(images, holes) -> images``.

    Args:
        filler (str, number, Tensor or callable): a number or tensor (constant fill), an
            inpainter name for :func:`captum_ext.inpaint.get_inpainter`, or a callable.

    Returns:
        callable: ``fill(images, holes) -> images``.

    Raises:
        TypeError: for anything else (e.g. ``None`` or a bool).
        ImportError: for a name when :mod:`captum_ext.inpaint` is not available.

    Examples::

        >>> resolve_filler(0.5)
        ConstantFill(0.5)
        >>> f = lambda images, holes: images
        >>> resolve_filler(f) is f
        True
    """
    if isinstance(filler, str):
        try:
            from captum_ext.inpaint import get_inpainter
        except ImportError as error:  # pragma: no cover - depends on which branches are merged
            raise ImportError(
                f"`filler` {filler!r} is an inpainter name, which needs captum_ext.inpaint."
                "get_inpainter; pass a number or a callable fill(images, holes) instead"
            ) from error
        return get_inpainter(filler)
    if isinstance(filler, bool):
        raise TypeError("`filler` must be a number, a tensor, an inpainter name or a callable, got bool")
    if isinstance(filler, (int, float, Tensor)):
        return ConstantFill(filler)
    if callable(filler):
        return filler
    raise TypeError(
        f"`filler` must be a number, a tensor, an inpainter name or a callable, got {type(filler).__name__}"
    )


def _apply_filler(fill: Filler, images: Tensor, holes: Tensor) -> Tensor:
    """``where(holes, fill(images, holes), images)``; ``holes`` is bool (n, 1, H, W)."""
    filled = fill(images, holes.to(images.dtype))
    if not isinstance(filled, Tensor) or filled.shape != images.shape:
        got = tuple(filled.shape) if isinstance(filled, Tensor) else type(filled).__name__
        raise ValueError(f"`filler` must return a tensor of the images' shape {tuple(images.shape)}, got {got}")
    return torch.where(holes, filled.to(images.dtype), images)


def _pixel_scores(attributions: Tensor, inputs: Tensor, abs: bool, reduce: str) -> Tensor:
    """One float64 score per pixel, (B, H * W)."""
    if not isinstance(attributions, Tensor):
        raise TypeError(f"`attributions` must be a torch.Tensor, got {type(attributions).__name__}")
    if reduce not in _REDUCTIONS:
        raise ValueError(f"`reduce` must be one of {_REDUCTIONS}, got {reduce!r}")
    a = attributions.unsqueeze(1) if attributions.dim() == 3 else attributions
    batch, channels, height, width = inputs.shape
    if a.dim() != 4 or a.shape[0] != batch or a.shape[2:] != inputs.shape[2:] or a.shape[1] not in (1, channels):
        raise ValueError(
            f"`attributions` of shape {tuple(attributions.shape)} do not match inputs of shape "
            f"{tuple(inputs.shape)}: expected (B, C, H, W), (B, 1, H, W) or (B, H, W)"
        )
    a = a.detach().to(device=inputs.device, dtype=torch.float64)
    if not bool(torch.isfinite(a).all()):
        raise ValueError("`attributions` contain NaN or infinite values")
    a = a.abs() if abs else a
    reduced = {"sum": lambda t: t.sum(1), "max": lambda t: t.amax(1), "mean": lambda t: t.mean(1)}[reduce](a)
    return reduced.flatten(1)


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
    batch, n = scores.shape
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(tie_seed))).to(scores.device)
    order = perm[torch.sort(scores[:, perm], dim=1, descending=descending, stable=True).indices]
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(n, device=scores.device).expand(batch, n))
    return ranks


def _check_forward_inputs(inputs: Tensor, batch_size: int) -> None:
    check_image_batch("inputs", inputs)
    check_int_at_least("batch_size", batch_size, 1)


def _rows(args: Any, index: Tensor, batch: int) -> Tuple[Any, ...]:
    """Additional forward args for the selected rows: batch-sized tensors are indexed."""
    if args is None:
        return ()
    args = args if isinstance(args, tuple) else (args,)
    return tuple(a[index] if isinstance(a, Tensor) and a.dim() > 0 and a.shape[0] == batch else a for a in args)


def _model_scores(forward_func: Callable, images: Tensor, target: Tensor, softmax: bool, args: Tuple) -> Tensor:
    output = forward_func(images, *args)
    if not isinstance(output, Tensor) or output.dim() != 2 or output.shape[0] != images.shape[0]:
        got = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise ValueError(f"`forward_func` must return (batch, classes) scores, got {got}")
    output = output.detach().to(torch.float64)
    if softmax:
        output = output.softmax(dim=1)
    return output.gather(1, target[:, None]).squeeze(1)


@torch.no_grad()
def _resolve_target(
    forward_func: Callable, inputs: Tensor, target: TargetLike, batch_size: int, args: Any
) -> Tensor:
    batch = inputs.shape[0]
    if target is None:
        preds = []
        for lo in range(0, batch, batch_size):
            index = torch.arange(lo, min(lo + batch_size, batch), device=inputs.device)
            preds.append(forward_func(inputs[index], *_rows(args, index, batch)).argmax(dim=1))
        return torch.cat(preds).to(inputs.device)
    if isinstance(target, bool):
        raise TypeError("`target` must be an int, a sequence of ints or a tensor, got bool")
    if isinstance(target, int):
        return torch.full((batch,), target, dtype=torch.long, device=inputs.device)
    t = torch.as_tensor(target, device=inputs.device)
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise TypeError(f"`target` must hold integers, got {t.dtype}")
    if t.dim() == 0:
        return t.long().expand(batch).clone()
    if t.shape != (batch,):
        raise ValueError(f"`target` must be an int or have shape ({batch},), got {tuple(t.shape)}")
    return t.long()


@torch.no_grad()
def _perturbed_scores(
    forward_func: Callable,
    inputs: Tensor,
    ranks: Tensor,
    counts: Tensor,
    insert: bool,
    fill: Filler,
    target: Tensor,
    softmax: bool,
    batch_size: int,
    args: Any,
) -> Tensor:
    """Scores (B, S): image ``b`` with its first ``counts[s]`` ranked pixels removed (or inserted)."""
    batch, _, height, width = inputs.shape
    steps = counts.numel()
    pair_image = torch.arange(batch, device=inputs.device).repeat_interleave(steps)
    pair_step = torch.arange(steps, device=inputs.device).repeat(batch)
    scores = torch.empty(batch * steps, dtype=torch.float64, device=inputs.device)
    for lo in range(0, batch * steps, batch_size):
        b, s = pair_image[lo:lo + batch_size], pair_step[lo:lo + batch_size]
        first_k = ranks[b] < counts[s][:, None]  # (n, N): the first counts[s] pixels of the order
        holes = (~first_k if insert else first_k).view(-1, 1, height, width)
        images = _apply_filler(fill, inputs[b], holes)
        scores[lo:lo + b.numel()] = _model_scores(forward_func, images, target[b], softmax, _rows(args, b, batch))
    return scores.view(batch, steps)


def normalised_auc(scores: Tensor, fractions: Optional[Tensor] = None) -> Tensor:
    """Area under curves by the trapezoid rule, divided by the width of the x-range.

    Args:
        scores (Tensor): (B, S) curve values, S >= 2.
        fractions (Tensor, optional): (S,) increasing x-coordinates; default evenly spaced on
            [0, 1] (RISE).

    Returns:
        Tensor: (B,) float64; a curve of probabilities gives a value in [0, 1], a constant
        curve ``c`` gives ``c``.

    Examples::

        >>> normalised_auc(torch.tensor([[1.0, 0.0]])).item()
        0.5
        >>> round(normalised_auc(torch.tensor([[1.0, 1.0, 0.0]]), torch.tensor([0.0, 0.9, 1.0])).item(), 6)
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


@dataclass
class PerturbationCurve:
    """A deletion or insertion curve for a batch of images.

    Attributes:
        fractions (Tensor): (S,) float64, fraction of pixels removed (deletion) or inserted
            (insertion) at each step, from 0 to 1.
        scores (Tensor): (B, S) float64, the target's score (probability by default) per step.
    """

    fractions: Tensor
    scores: Tensor

    @property
    def auc(self) -> Tensor:
        """(B,) normalised area under each image's curve (trapezoid rule)."""
        return normalised_auc(self.scores, self.fractions)


def _step_counts(num_pixels: int, pixels_per_step: Optional[int], width: int, device: torch.device) -> Tensor:
    step = width if pixels_per_step is None else pixels_per_step
    check_int_at_least("pixels_per_step", step, 1)
    if step > num_pixels:
        raise ValueError(f"`pixels_per_step` must be <= the number of pixels per image ({num_pixels}), got {step}")
    steps = math.ceil(num_pixels / step)
    return (torch.arange(steps + 1, device=device) * step).clamp_(max=num_pixels)


def _curve(
    insert: bool,
    forward_func: Callable,
    inputs: Tensor,
    attributions: Tensor,
    target: TargetLike,
    filler: FillerLike,
    pixels_per_step: Optional[int],
    batch_size: int,
    softmax: bool,
    abs: bool,
    reduce: str,
    additional_forward_args: Any,
    tie_seed: int,
) -> PerturbationCurve:
    _check_forward_inputs(inputs, batch_size)
    fill = resolve_filler(filler)
    scores = _pixel_scores(attributions, inputs, abs, reduce)
    counts = _step_counts(scores.shape[1], pixels_per_step, inputs.shape[-1], inputs.device)
    target_t = _resolve_target(forward_func, inputs, target, batch_size, additional_forward_args)
    ranks = pixel_ranks(scores, descending=True, tie_seed=tie_seed)
    values = _perturbed_scores(
        forward_func, inputs, ranks, counts, insert, fill, target_t, softmax, batch_size, additional_forward_args
    )
    return PerturbationCurve(counts.to(torch.float64) / scores.shape[1], values)


_CURVE_ARGS = """
    Args:
        forward_func (callable): the model; ``forward_func(images, *additional_forward_args)``
            returns (n, classes) scores.
        inputs (Tensor): images (B, C, H, W).
        attributions (Tensor): maps (B, C, H, W), (B, 1, H, W) or (B, H, W); channels are
            reduced to one score per pixel (all channels of a pixel go together).
        target (int, sequence or Tensor, optional): class per image; default: the model's
            prediction on ``inputs``.
        filler (number, Tensor, str or callable): what replaces removed pixels (see the module
            docstring). Default: ``0.0``.
        pixels_per_step (int, optional): pixels per step; default: the image width (RISE: 224
            for 224 x 224 images). The last step may be partial.
        batch_size (int): perturbed images per forward. Default 64.
        softmax (bool): apply a softmax to the outputs (False for a model that already returns
            probabilities, or to score logits). Default True.
        abs (bool): rank by ``|attribution|``. Default False.
        reduce (str): ``"sum"``, ``"max"`` or ``"mean"`` over channels. Default ``"sum"``.
        additional_forward_args (any, optional): extra arguments of ``forward_func``; tensors
            with the batch size as first dimension follow their image.
        tie_seed (int): seed of the tie-breaking permutation. Default 0.
"""


@log_usage()
def deletion_curve(
    forward_func: Callable,
    inputs: Tensor,
    attributions: Tensor,
    target: TargetLike = None,
    filler: FillerLike = 0.0,
    pixels_per_step: Optional[int] = None,
    batch_size: int = 64,
    softmax: bool = True,
    abs: bool = False,
    reduce: str = "sum",
    additional_forward_args: Any = None,
    tie_seed: int = 0,
) -> PerturbationCurve:
    return _curve(False, forward_func, inputs, attributions, target, filler, pixels_per_step, batch_size,
                  softmax, abs, reduce, additional_forward_args, tie_seed)


@log_usage()
def insertion_curve(
    forward_func: Callable,
    inputs: Tensor,
    attributions: Tensor,
    target: TargetLike = None,
    filler: FillerLike = 0.0,
    pixels_per_step: Optional[int] = None,
    batch_size: int = 64,
    softmax: bool = True,
    abs: bool = False,
    reduce: str = "sum",
    additional_forward_args: Any = None,
    tie_seed: int = 0,
) -> PerturbationCurve:
    return _curve(True, forward_func, inputs, attributions, target, filler, pixels_per_step, batch_size,
                  softmax, abs, reduce, additional_forward_args, tie_seed)


deletion_curve.__doc__ = (
    """Deletion curve (RISE): remove the most important pixels first, record the target's score.

    Step ``s`` removes the ``s * pixels_per_step`` top-ranked pixels (all channels) and fills
    them with ``filler``; step 0 is the clean image and the last step removes every pixel.
    A faithful map makes the score fall fast: a lower ``auc`` is better.
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
"""
)

insertion_curve.__doc__ = (
    """Insertion curve (RISE): start from the filled image, put the most important pixels back first.

    At step ``s`` the ``s * pixels_per_step`` top-ranked pixels hold their original values and
    every other pixel is filled by ``filler`` (an inpainter fills them from the inserted ones).
    A faithful map makes the score rise fast: a higher ``auc`` is better.
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
    target: TargetLike = None,
    filler: FillerLike = 0.0,
    pixels_per_step: Optional[int] = None,
    batch_size: int = 64,
    softmax: bool = True,
    abs: bool = False,
    reduce: str = "sum",
    additional_forward_args: Any = None,
    tie_seed: int = 0,
) -> Tensor:
    """Insertion AUC minus deletion AUC per image (as NeFLAG reports it): higher is better.

    Both curves use the same ranking, filler and steps; see :func:`deletion_curve` for the
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
    common = (forward_func, inputs, attributions, target, filler, pixels_per_step, batch_size, softmax, abs,
              reduce, additional_forward_args, tie_seed)
    return _curve(True, *common).auc - _curve(False, *common).auc


def _fraction_counts(fractions: Sequence[float], num_pixels: int, device: torch.device) -> Tensor:
    if isinstance(fractions, Tensor):
        fractions = fractions.tolist()
    if isinstance(fractions, (int, float)):
        fractions = [fractions]
    if len(fractions) == 0:
        raise ValueError("`fractions` must not be empty")
    counts = []
    for f in fractions:
        if isinstance(f, bool) or not isinstance(f, (int, float)):
            raise TypeError(f"`fractions` must hold numbers, got {type(f).__name__}")
        if not 0 <= f <= 1:
            raise ValueError(f"`fractions` must lie in [0, 1], got {f}")
        counts.append(int(math.floor(f * num_pixels + 0.5)))
    return torch.tensor(counts, device=device)


@log_usage()
def pixel_perturbation(
    forward_func: Callable,
    inputs: Tensor,
    attributions: Tensor,
    target: TargetLike = None,
    fractions: Sequence[float] = tuple(k / 100 for k in range(1, 11)),
    order: str = "morf",
    filler: FillerLike = 0.0,
    batch_size: int = 64,
    softmax: bool = True,
    abs: bool = False,
    reduce: str = "max",
    additional_forward_args: Any = None,
    tie_seed: int = 0,
) -> Tensor:
    """MoRF / LeRF pixel perturbation: ``|p_c(x) - p_c(x')| / p_c(x)`` after removing a fraction.

    ``x'`` is ``x`` with the ``round(f * H * W)`` most (``"morf"``) or least (``"lerf"``)
    important pixels filled by ``filler``. MoRF: higher is better (the map found what matters);
    LeRF: lower is better (what it calls unimportant is). Multiply by 100 for the paper's percent.

    Args:
        forward_func (callable): the model, returning (n, classes) scores.
        inputs (Tensor): images (B, C, H, W).
        attributions (Tensor): maps (B, C, H, W), (B, 1, H, W) or (B, H, W).
        target (int, sequence or Tensor, optional): class per image; default: the prediction.
        fractions (sequence of float): fractions of pixels to remove, each in [0, 1].
            Default 0.01, 0.02, ..., 0.10 (the pathway paper).
        order (str): ``"morf"`` (most relevant first) or ``"lerf"``. Default ``"morf"``.
        filler (number, Tensor, str or callable): what replaces removed pixels. Default ``0.0``.
        batch_size (int): perturbed images per forward. Default 64.
        softmax (bool): apply a softmax to the outputs. Default True.
        abs (bool): rank by ``|attribution|``. Default False.
        reduce (str): ``"max"`` (the pathway paper's channel max), ``"sum"`` or ``"mean"``.
        additional_forward_args (any, optional): extra arguments of ``forward_func``.
        tie_seed (int): seed of the tie-breaking permutation. Default 0.

    Returns:
        Tensor: (B, len(fractions)) float64; NaN where ``p_c(x) = 0``.

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1, bias=False))
        >>> _ = net[1].weight.data.copy_(torch.tensor([[4.0, 3.0, 2.0, 1.0]]))
        >>> x, a = torch.ones(1, 1, 2, 2), net[1].weight.view(1, 1, 2, 2)
        >>> pixel_perturbation(net, x, a, target=0, fractions=[0.25, 0.5], softmax=False).tolist()
        [[0.4, 0.7]]
        >>> pixel_perturbation(net, x, a, target=0, fractions=[0.25], order="lerf", softmax=False).tolist()
        [[0.1]]
    """
    if order not in ("morf", "lerf"):
        raise ValueError(f"`order` must be 'morf' or 'lerf', got {order!r}")
    _check_forward_inputs(inputs, batch_size)
    fill = resolve_filler(filler)
    scores = _pixel_scores(attributions, inputs, abs, reduce)
    counts = _fraction_counts(fractions, scores.shape[1], inputs.device)
    counts = torch.cat([counts.new_zeros(1), counts])  # step 0: the clean image
    target_t = _resolve_target(forward_func, inputs, target, batch_size, additional_forward_args)
    ranks = pixel_ranks(scores, descending=order == "morf", tie_seed=tie_seed)
    values = _perturbed_scores(
        forward_func, inputs, ranks, counts, False, fill, target_t, softmax, batch_size, additional_forward_args
    )
    clean = values[:, :1]
    change = (clean - values[:, 1:]).abs() / clean
    return change.masked_fill(clean == 0, math.nan)
