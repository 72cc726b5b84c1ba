"""Metrics for attribution maps: ground-truth localisation (the stamp distance and companions)."""

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
