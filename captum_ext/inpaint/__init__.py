"""Inpainters: fill a hole in a batch of images (no downloaded weights needed).

An inpainter is any callable ``inpaint(images, holes) -> images`` with images ``(B, C, H, W)``
and holes ``(B, 1, H, W)``, 1 = missing. :func:`get_inpainter` resolves names; call
:func:`apply_inpainter` to run any inpainter safely (validation, zeroed hole, composite,
all-hole fallback).
"""

from captum_ext.inpaint.base import apply_inpainter, check_holes, composite
from captum_ext.inpaint.harmonic import harmonic_fill, pull_push_fill
from captum_ext.inpaint.inpainters import (
    BiharmonicInpainter,
    BlurInpainter,
    ConstantInpainter,
    HarmonicInpainter,
    Inpainter,
    MeanInpainter,
    NoiseInpainter,
    OpenCVInpainter,
    PullPushInpainter,
)
from captum_ext.inpaint.learned import LearnedInpainter
from captum_ext.inpaint.registry import get_inpainter, inpainter_names

__all__ = [
    "BiharmonicInpainter",
    "BlurInpainter",
    "ConstantInpainter",
    "HarmonicInpainter",
    "Inpainter",
    "LearnedInpainter",
    "MeanInpainter",
    "NoiseInpainter",
    "OpenCVInpainter",
    "PullPushInpainter",
    "apply_inpainter",
    "check_holes",
    "composite",
    "get_inpainter",
    "harmonic_fill",
    "inpainter_names",
    "pull_push_fill",
]
