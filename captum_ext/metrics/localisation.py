"""Deprecated module name: use :mod:`captum_ext.metrics.localization` (one release)."""

import warnings

from captum_ext.metrics.localization import (  # noqa: F401
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

warnings.warn(
    "`captum_ext.metrics.localisation` is deprecated and will be removed in the next release; "
    "import from `captum_ext.metrics.localization`",
    DeprecationWarning,
    stacklevel=2,
)
