"""The ground-truth localisation columns of the benchmark."""

from functools import partial

from captum_ext.benchmark.registry import MetricContext, MetricSpec, register_metric
from captum_ext.metrics import localisation


def _localisation(fn, context: MetricContext):
    return fn(context.attributions, context.masks, abs=bool(context.options.get("abs", True)))


register_metric(MetricSpec("stamp_distance", partial(_localisation, localisation.stamp_distance),
                           lower_is_better=True, interval=True))
register_metric(MetricSpec("pointing_game", partial(_localisation, localisation.pointing_game)))
register_metric(MetricSpec("relevance_mass", partial(_localisation, localisation.relevance_mass_accuracy)))
register_metric(MetricSpec("relevance_rank", partial(_localisation, localisation.relevance_rank_accuracy)))
register_metric(MetricSpec("roc_auc", partial(_localisation, localisation.roc_auc)))
