"""ROAD: RemOve And Debias (Rong et al., "A Consistent and Efficient Evaluation Strategy for
Attribution Methods", ICML 2022).

Known (the paper and the authors' code): remove the ``p`` % most (MoRF) or least (LeRF) relevant
pixels of an image by its attribution map, for ``p`` = 10, 20, ..., 90; fill them by *noisy
linear imputation* (:class:`captum_ext.inpaint.linear.NoisyLinearInpainter`: each removed pixel
the weighted mean of its 8 neighbours, weights 1/6 and 1/12 renormalised at the border, plus
Gaussian noise of std 0.01), which removes the information that the *shape* of the removed
region leaks with a constant fill; and evaluate the model on the imputed images without
retraining. MoRF: a faithful map makes the score fall fast (lower is better); LeRF: it stays
high (higher is better).

Chosen here: the per-image score is the target's probability (``softmax=True``; the logit
otherwise) on the imputed image, besides whether the image is still classified as the target
(the paper's accuracy curves are the mean of :attr:`RoadResult.correct` over images); the
per-image summary is the mean over the percentages; :func:`road_combined` is
``mean_p (LeRF_p - MoRF_p) / 2`` per image (as pytorch-grad-cam's ``ROADCombined``; higher is
better). Pixels are ranked by the channel sum of the map (``reduce``) with ties broken by one
seeded permutation shared by all images; ``round(p / 100 * H * W)`` pixels are removed.

Seeding: the noise of image ``k`` at percentage ``j`` is drawn from
``derive_seed(seed, image_indices[k], j)`` (or ``derive_seed(seed, k, j)`` with ``k`` its
position in the batch when ``image_indices`` is not given), so with ``image_indices`` an image's
result never depends on the batch it is in or its order.
"""

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import torch
from captum.log import log_usage
from torch import Tensor

from captum_ext._checks import (
    check_choice,
    check_finite,
    check_image_batch,
    check_int_at_least,
    check_positive,
    check_target,
)
from captum_ext._compat import TargetType
from captum_ext.inpaint.linear import NoisyLinearInpainter
from captum_ext.inpaint.registry import resolve_inpainter
from captum_ext.metrics._common import model_guard
from captum_ext.metrics.perturbation import (
    InpainterLike,
    _perturbed_scores,
    _pixel_scores,
    _resolve_target,
    _row_fill,
    pixel_ranks,
)

#: The paper's percentages of removed pixels.
ROAD_PERCENTAGES = (10, 20, 30, 40, 50, 60, 70, 80, 90)

__all__ = ["ROAD_PERCENTAGES", "RoadResult", "road", "road_combined"]


@dataclass(frozen=True)
class RoadResult:
    """ROAD scores of a batch of images.

    Attributes:
        percentages (Tensor): (P,) float64, percent of the pixels removed.
        scores (Tensor): (B, P) float64, the target's probability (or logit) on the imputed
            image; NaN rows for images whose map holds a NaN or an inf.
        correct (Tensor): (B, P) bool, whether the imputed image is still classified as the
            target (the paper's accuracy is its mean over images).
        order (str): ``"morf"`` or ``"lerf"``.

    Examples::

        >>> p = torch.tensor([10.0, 20.0], dtype=torch.float64)
        >>> r = RoadResult(p, torch.tensor([[0.9, 0.4]], dtype=torch.float64), torch.tensor([[True, False]]), "morf")
        >>> r.scores.shape, r.correct.double().mean().item()
        (torch.Size([1, 2]), 0.5)
    """

    percentages: Tensor
    scores: Tensor
    correct: Tensor
    order: str

    @property
    def mean(self) -> Tensor:
        """(B,) mean score over the percentages (MoRF: lower is better; LeRF: higher)."""
        return self.scores.mean(dim=1)

    @property
    def accuracy(self) -> Tensor:
        """(P,) fraction of the images still classified as the target, per percentage."""
        return self.correct.to(torch.float64).mean(dim=0)


def _percent_counts(percentages: Any, num_pixels: int, device: torch.device) -> Tensor:
    if isinstance(percentages, Tensor):
        percentages = percentages.tolist()
    if isinstance(percentages, (int, float)) and not isinstance(percentages, bool):
        percentages = [percentages]
    if isinstance(percentages, (str, bytes)) or not isinstance(percentages, Sequence) or not percentages:
        raise ValueError("`percentages` must be a non-empty sequence of numbers in [0, 100]")
    for p in percentages:
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            raise TypeError(f"`percentages` must hold numbers, got {type(p).__name__}")
        if not 0 <= p <= 100:  # also refuses NaN
            raise ValueError(f"`percentages` must lie in [0, 100], got {p}")
    return torch.tensor([int(math.floor(p / 100 * num_pixels + 0.5)) for p in percentages], device=device)


def _road_inpainter(inpainter: InpainterLike, noise: float, seed: int) -> Callable:
    if isinstance(inpainter, str) and inpainter.lower() == "linear":
        return NoisyLinearInpainter(noise=noise, seed=seed)
    return resolve_inpainter(inpainter)


@log_usage()
def road(
    forward_func: Callable,
    inputs: Tensor,
    attributions: Tensor,
    target: TargetType = None,
    percentages: Sequence[float] = ROAD_PERCENTAGES,
    order: str = "morf",
    inpainter: InpainterLike = "linear",
    noise: float = 0.01,
    seed: int = 0,
    max_examples_per_batch: int = 64,
    softmax: bool = True,
    abs: bool = False,
    reduce: str = "sum",
    additional_forward_args: Any = None,
    image_indices: Optional[Union[Sequence[int], Tensor]] = None,
    tie_seed: int = 0,
) -> RoadResult:
    """ROAD (Rong et al., ICML 2022): remove the most or least relevant pixels, impute, score.

    Args:
        forward_func (callable): the model; ``forward_func(images, *additional_forward_args)``
            returns (n, classes) scores.
        inputs (Tensor): images (B, C, H, W).
        attributions (Tensor): maps (B, C, H, W), (B, 1, H, W) or (B, H, W).
        target (int, list or Tensor, optional): class per image (Captum's rules); default:
            the model's prediction on ``inputs``.
        percentages (sequence of float): percent of the pixels removed, each in [0, 100].
            Default: 10, 20, ..., 90 (the paper).
        order (str): ``"morf"`` (most relevant first) or ``"lerf"``. Default ``"morf"``.
        inpainter (str, number, Tensor, Inpainter or callable): the fill; ``"linear"`` (the
            default) is ROAD's noisy linear imputation with ``noise`` and ``seed``; anything
            else goes through :func:`captum_ext.inpaint.registry.resolve_inpainter` (``noise``
            and ``seed`` are then unused).
        noise (float): std of the imputation noise, in the units of ``inputs``. Default 0.01.
        seed (int): seed of the noise (see the module docstring). Default 0.
        max_examples_per_batch (int): imputed images per forward. Default 64.
        softmax (bool): score probabilities (True) or raw outputs. Default True.
        abs (bool): rank pixels by ``|attribution|``. Default False.
        reduce (str): channel reduction of the map, ``"sum"``, ``"max"`` or ``"mean"``.
        additional_forward_args (any, optional): extra arguments of ``forward_func``; tensors
            with a first dimension have one row per image.
        image_indices (sequence of int or Tensor, optional): per image, its index in the data
            set; seeds its noise so that results do not depend on batch composition.
        tie_seed (int): seed of the tie-breaking permutation of the ranking. Default 0.

    Returns:
        RoadResult: ``percentages`` (P,), ``scores`` (B, P), ``correct`` (B, P), ``mean`` (B,).

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
        >>> x, a = torch.rand(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
        >>> morf = road(net, x, a, target=0, percentages=[25, 50])
        >>> morf.scores.shape, morf.mean.shape
        (torch.Size([3, 2]), torch.Size([3]))
        >>> lerf = road(net, x, a, target=0, percentages=[25, 50], order="lerf")
        >>> road_combined(morf, lerf).shape
        torch.Size([3])
    """
    check_choice("order", order, ("morf", "lerf"))
    check_positive("noise", noise, allow_zero=True)
    check_int_at_least("max_examples_per_batch", max_examples_per_batch, 1)
    check_image_batch("inputs", inputs)
    check_finite("inputs", inputs)
    fill = _road_inpainter(inpainter, noise, seed)
    pixel_scores, bad = _pixel_scores(attributions, inputs, abs, reduce)
    counts = _percent_counts(percentages, pixel_scores.shape[1], inputs.device)
    percent = torch.tensor([float(p) for p in torch.as_tensor(percentages).reshape(-1).tolist()],
                           dtype=torch.float64)
    batch = inputs.shape[0]
    indices: Optional[Sequence[int]] = None
    if image_indices is not None:
        indices = image_indices.tolist() if isinstance(image_indices, Tensor) else list(image_indices)
        if len(indices) != batch or not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
            raise ValueError(f"`image_indices` must hold one int per image ({batch})")
    if batch == 0:
        check_target(target, 0)
        empty = torch.zeros(0, counts.numel(), dtype=torch.float64, device=inputs.device)
        return RoadResult(percent, empty, empty.bool(), order)
    with model_guard(forward_func):
        target_t = _resolve_target(forward_func, inputs, target, max_examples_per_batch, additional_forward_args)
        ranks = pixel_ranks(pixel_scores, descending=order == "morf", tie_seed=tie_seed)
        scores, correct = _perturbed_scores(
            forward_func, inputs, ranks, counts, False, _row_fill(fill, indices), target_t, softmax,
            max_examples_per_batch, additional_forward_args, with_hits=True,
        )
    return RoadResult(percent, scores.masked_fill(bad[:, None], math.nan), correct & ~bad[:, None], order)


def road_combined(morf: RoadResult, lerf: RoadResult) -> Tensor:
    """The combined ROAD score per image: ``mean_p (LeRF_p - MoRF_p) / 2``; higher is better.

    A faithful map makes the MoRF score fall and keeps the LeRF score high, so the difference
    rewards both (pytorch-grad-cam's ``ROADCombined``; the paper reports the two curves).

    Args:
        morf (RoadResult): :func:`road` with ``order="morf"``.
        lerf (RoadResult): :func:`road` with ``order="lerf"`` on the same images and percentages.

    Returns:
        Tensor: (B,) float64, in [-0.5, 0.5] for probabilities.

    Examples::

        >>> p = torch.tensor([10.0, 20.0], dtype=torch.float64)
        >>> m = RoadResult(p, torch.tensor([[0.2, 0.0]]), torch.ones(1, 2, dtype=torch.bool), "morf")
        >>> l = RoadResult(p, torch.tensor([[0.8, 0.6]]), torch.ones(1, 2, dtype=torch.bool), "lerf")
        >>> round(road_combined(m, l).item(), 6)
        0.3
    """
    if not isinstance(morf, RoadResult) or not isinstance(lerf, RoadResult):
        raise TypeError("`morf` and `lerf` must be RoadResult values returned by road()")
    if morf.order != "morf" or lerf.order != "lerf":
        raise ValueError(f"`morf` must be a MoRF and `lerf` a LeRF result, got {morf.order!r} and {lerf.order!r}")
    if morf.scores.shape != lerf.scores.shape or not torch.equal(morf.percentages, lerf.percentages):
        raise ValueError("`morf` and `lerf` must cover the same images and percentages")
    return ((lerf.scores - morf.scores) / 2).mean(dim=1)
