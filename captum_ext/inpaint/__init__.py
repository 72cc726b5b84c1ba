"""Inpainters: fill a hole in a batch of images (no downloaded weights needed).

An inpainter is any callable ``inpaint(images, holes) -> images`` with images ``(B, C, H, W)``
and holes ``(B, 1, H, W)``, 1 = missing; it must not rely on the content of the hole (it is
zeroed before every call) and only its values inside the hole are used.
:func:`resolve_inpainter` resolves the ``inpainter=`` argument (a name, a number, a tensor, an
:class:`Inpainter` or a callable); :func:`apply_inpainter` runs any inpainter safely
(validation, zeroed hole, composite, all-hole fallback).
"""

from captum_ext.inpaint.base import Inpainter, apply_inpainter, check_holes, composite
from captum_ext.inpaint.harmonic import harmonic_fill, pull_push_fill
from captum_ext.inpaint.inpainters import (
    BiharmonicInpainter,
    BlurInpainter,
    ConstantInpainter,
    HarmonicInpainter,
    MeanInpainter,
    NoiseInpainter,
    OpenCVInpainter,
    PullPushInpainter,
)
from captum_ext.inpaint.learned import LearnedInpainter
from captum_ext.inpaint.linear import NoisyLinearInpainter
from captum_ext.inpaint.registry import get_inpainter, inpainter_names, resolve_inpainter

__all__ = [
    "BiharmonicInpainter",
    "BlurInpainter",
    "ConstantInpainter",
    "HarmonicInpainter",
    "Inpainter",
    "LearnedInpainter",
    "NoisyLinearInpainter",
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
    "resolve_inpainter",
]
