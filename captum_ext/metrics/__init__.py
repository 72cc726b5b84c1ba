"""Metrics for attribution maps: ground-truth localization (the stamp distance and companions),
perturbation curves (deletion, insertion, MoRF / LeRF, ROAD), map similarity, sanity checks and
ROAR.

British spellings of earlier releases (``cascading_randomisation``, ``randomisation_layers``,
``normalise_abs_map``, ``normalised_auc``, the module ``localisation``) and the old fill names
(``ConstantFill``, ``resolve_filler``) still import, with a ``DeprecationWarning`` when used.
"""

from captum_ext.metrics.localization import (
    flatten_maps,
    mean_and_interval,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    roc_auc,
    stamp_distance,
)
from captum_ext.metrics.perturbation import (
    SMALL_OBJECT_FRACTIONS,
    ConstantFill,
    PerturbationCurve,
    deletion_curve,
    insertion_curve,
    insertion_minus_deletion,
    normalised_auc,
    normalized_auc,
    pixel_perturbation,
    pixel_ranks,
    resolve_filler,
)
from captum_ext.metrics.road import ROAD_PERCENTAGES, RoadResult, road, road_combined
from captum_ext.metrics.roar import RoarResult, roar
from captum_ext.metrics.sanity import (
    SanityResult,
    cascading_randomisation,
    cascading_randomization,
    randomisation_layers,
    randomization_layers,
)
from captum_ext.metrics.similarity import (
    average_ranks,
    hog_features,
    map_similarities,
    normalise_abs_map,
    normalize_abs_map,
    pearson,
    spearman,
    ssim,
)

__all__ = [
    "ConstantFill",
    "PerturbationCurve",
    "ROAD_PERCENTAGES",
    "RoadResult",
    "RoarResult",
    "SMALL_OBJECT_FRACTIONS",
    "SanityResult",
    "average_ranks",
    "cascading_randomisation",
    "cascading_randomization",
    "deletion_curve",
    "flatten_maps",
    "hog_features",
    "insertion_curve",
    "insertion_minus_deletion",
    "map_similarities",
    "mean_and_interval",
    "normalise_abs_map",
    "normalised_auc",
    "normalize_abs_map",
    "normalized_auc",
    "pearson",
    "pixel_perturbation",
    "pixel_ranks",
    "pointing_game",
    "randomisation_layers",
    "randomization_layers",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "resolve_filler",
    "road",
    "road_combined",
    "roar",
    "roc_auc",
    "spearman",
    "ssim",
    "stamp_distance",
]
