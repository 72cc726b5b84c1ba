"""The ground-truth localization columns of the benchmark."""

from functools import partial

from captum_ext.benchmark.registry import MetricContext, MetricSpec, register_metric
from captum_ext.metrics import localization


def _localization(fn, context: MetricContext):
    return fn(context.attributions, context.masks, abs=bool(context.options.get("abs", True)))


register_metric(MetricSpec("stamp_distance", partial(_localization, localization.stamp_distance),
                           lower_is_better=True, interval=True))
register_metric(MetricSpec("pointing_game", partial(_localization, localization.pointing_game)))
register_metric(MetricSpec("relevance_mass", partial(_localization, localization.relevance_mass_accuracy)))
register_metric(MetricSpec("relevance_rank", partial(_localization, localization.relevance_rank_accuracy)))
register_metric(MetricSpec("roc_auc", partial(_localization, localization.roc_auc)))
