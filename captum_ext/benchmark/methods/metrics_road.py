"""The ROAD columns of the benchmark (not computed by default: ``--metrics road_morf road_lerf
road_combined``): the mean over the paper's percentages of the target's probability after
removing the most (MoRF, lower is better) or least (LeRF, higher is better) relevant pixels by
noisy linear imputation, and their combined score ``mean (LeRF - MoRF) / 2`` (higher is better).

Options read from ``MetricContext.options``: ``road_noise`` (default 0.01), ``seed`` (default 0),
``perturbation_batch_size`` (imputed images per forward, default 256), ``abs`` (rank by
``|attribution|``, the benchmark's default True).
"""

from typing import Any, Dict

from torch import Tensor

from captum_ext.benchmark.registry import MetricContext, MetricSpec, register_metric
from captum_ext.metrics.road import RoadResult, road, road_combined

__all__ = ["road_combined_column", "road_lerf", "road_morf"]


def _road(context: MetricContext, order: str) -> RoadResult:
    cache = context.__dict__.setdefault("_road_cache", {})
    if order not in cache:
        options: Dict[str, Any] = dict(context.options)
        cache[order] = road(
            context.model, context.inputs, context.attributions, target=context.target, order=order,
            noise=float(options.get("road_noise", 0.01)), seed=int(options.get("seed", 0)),
            max_examples_per_batch=int(options.get("perturbation_batch_size", 256)),
            abs=bool(options.get("abs", True)),
        )
    return cache[order]


def road_morf(context: MetricContext) -> Tensor:
    return _road(context, "morf").mean


def road_lerf(context: MetricContext) -> Tensor:
    return _road(context, "lerf").mean


def road_combined_column(context: MetricContext) -> Tensor:
    return road_combined(_road(context, "morf"), _road(context, "lerf"))


register_metric(MetricSpec("road_morf", road_morf, lower_is_better=True, default=False))
register_metric(MetricSpec("road_lerf", road_lerf, default=False))
register_metric(MetricSpec("road_combined", road_combined_column, default=False))
