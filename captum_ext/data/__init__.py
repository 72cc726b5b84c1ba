"""Data: stamped images built from scikit-image's photos, and the small stamp classifier."""

from captum_ext.data.classifier import (
    DEFAULT_RECIPE,
    StampNet,
    cache_dir,
    load_stamp_classifier,
    stamp_recall,
    train_stamp_classifier,
)
from captum_ext.data.photos import PHOTO_NAMES, load_photo, load_photos
from captum_ext.data.stamped import GLYPH_NAMES, StampedBatch, StampedImages, glyph_mask, make_stamped_batch

__all__ = [
    "DEFAULT_RECIPE",
    "GLYPH_NAMES",
    "PHOTO_NAMES",
    "StampNet",
    "StampedBatch",
    "StampedImages",
    "cache_dir",
    "glyph_mask",
    "load_photo",
    "load_photos",
    "load_stamp_classifier",
    "make_stamped_batch",
    "stamp_recall",
    "train_stamp_classifier",
]
