"""Metrics for attribution maps: ground-truth localisation (the stamp distance and companions),
perturbation curves (deletion, insertion, MoRF / LeRF), sanity checks and ROAR."""

from captum_ext.metrics.localisation import (
    flatten_maps,
    mean_and_interval,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    roc_auc,
    stamp_distance,
)

__all__ = [
    "flatten_maps",
    "mean_and_interval",
    "pointing_game",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "roc_auc",
    "stamp_distance",
]

# evaluation (issue 7): perturbation curves, sanity checks, ROAR
from captum_ext.metrics.perturbation import (  # noqa: E402
    ConstantFill,
    PerturbationCurve,
    deletion_curve,
    insertion_curve,
    insertion_minus_deletion,
    normalised_auc,
    pixel_perturbation,
    pixel_ranks,
    resolve_filler,
)
from captum_ext.metrics.road import ROAD_PERCENTAGES, RoadResult, road, road_combined  # noqa: E402
from captum_ext.metrics.roar import RoarResult, roar  # noqa: E402
from captum_ext.metrics.sanity import (  # noqa: E402
    SanityResult,
    cascading_randomisation,
    hog_features,
    map_similarities,
    normalise_abs_map,
    pearson,
    randomisation_layers,
    spearman,
    ssim,
)

__all__ += [
    "ConstantFill",
    "PerturbationCurve",
    "ROAD_PERCENTAGES",
    "RoadResult",
    "RoarResult",
    "SanityResult",
    "cascading_randomisation",
    "deletion_curve",
    "hog_features",
    "insertion_curve",
    "insertion_minus_deletion",
    "map_similarities",
    "normalise_abs_map",
    "normalised_auc",
    "pearson",
    "pixel_perturbation",
    "pixel_ranks",
    "randomisation_layers",
    "resolve_filler",
    "road",
    "road_combined",
    "roar",
    "spearman",
    "ssim",
]
