"""The perturbation columns of the benchmark: deletion, insertion, insertion minus deletion.

Also MoRF and LeRF (not computed by default: ``--metrics morf lerf``), each the mean over
removing 1, 2, ..., 10 % of the pixels of ``|p_c(x) - p_c(x')| / p_c(x)``.

Options read from ``MetricContext.options`` (the CLI sets ``inpainter``; the old key ``filler``
is still read):

- ``inpainter``: a number, an inpainter name or a callable (see
  :mod:`captum_ext.metrics.perturbation`); default :func:`default_inpainter`, harmonic
  inpainting;
- ``perturbation_steps``: steps of the deletion / insertion curves; default 16 (256 pixels per
  step on 64 x 64 images; RISE's one row per step would be 64 steps, 4x the cost);
- ``perturbation_batch_size``: perturbed images per forward (``max_examples_per_batch``);
  default 256;
- ``abs``: rank pixels by ``|attribution|`` (the benchmark's default, True).
"""

import math
from typing import Any, Dict

from torch import Tensor

from captum_ext.benchmark.registry import MetricContext, MetricSpec, register_metric
from captum_ext.inpaint.registry import resolve_inpainter
from captum_ext.metrics.perturbation import (
    InpainterLike,
    deletion_curve,
    insertion_curve,
    pixel_perturbation,
)

#: Steps of the benchmark's deletion and insertion curves.
DEFAULT_STEPS = 16
#: Perturbed images per forward.
DEFAULT_BATCH_SIZE = 256


def default_inpainter() -> InpainterLike:
    """The benchmark's default fill of removed pixels: ``"harmonic"`` inpainting."""
    return "harmonic"


#: Deprecated name of :func:`default_inpainter`.
default_filler = default_inpainter


def _settings(context: MetricContext) -> Dict[str, Any]:
    options: Dict[str, Any] = dict(context.options)
    inpainter = options.get("inpainter", options.get("filler"))
    num_pixels = context.inputs.shape[-1] * context.inputs.shape[-2]
    steps = int(options.get("perturbation_steps", DEFAULT_STEPS))
    return dict(
        forward_func=context.model,
        inputs=context.inputs,
        attributions=context.attributions,
        target=context.target,
        inpainter=resolve_inpainter(default_inpainter() if inpainter is None else inpainter),
        max_examples_per_batch=int(options.get("perturbation_batch_size", DEFAULT_BATCH_SIZE)),
        abs=bool(options.get("abs", True)),
        pixels_per_step=max(1, math.ceil(num_pixels / steps)),
    )


def _aucs(context: MetricContext) -> Dict[str, Tensor]:
    """Deletion and insertion AUCs, computed once per context (three columns share them)."""
    cache = context.__dict__.setdefault("_perturbation_cache", {})
    if "deletion" not in cache:
        settings = _settings(context)
        cache["deletion"] = deletion_curve(**settings).auc
        cache["insertion"] = insertion_curve(**settings).auc
    return cache


def deletion(context: MetricContext) -> Tensor:
    return _aucs(context)["deletion"]


def insertion(context: MetricContext) -> Tensor:
    return _aucs(context)["insertion"]


def insertion_minus_deletion(context: MetricContext) -> Tensor:
    aucs = _aucs(context)
    return aucs["insertion"] - aucs["deletion"]


def _pixel_perturbation(order: str, context: MetricContext) -> Tensor:
    settings = _settings(context)
    settings.pop("pixels_per_step")
    return pixel_perturbation(order=order, reduce="max", **settings).mean(dim=1)


def morf(context: MetricContext) -> Tensor:
    return _pixel_perturbation("morf", context)


def lerf(context: MetricContext) -> Tensor:
    return _pixel_perturbation("lerf", context)


register_metric(MetricSpec("deletion", deletion, lower_is_better=True))
register_metric(MetricSpec("insertion", insertion))
register_metric(MetricSpec("insertion_minus_deletion", insertion_minus_deletion))
register_metric(MetricSpec("morf", morf, default=False))
register_metric(MetricSpec("lerf", lerf, lower_is_better=True, default=False))

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_STEPS", "default_filler", "default_inpainter", "deletion", "insertion",
           "insertion_minus_deletion", "lerf", "morf"]
