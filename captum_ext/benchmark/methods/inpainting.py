"""Inpainting rows of the stamp benchmark, each next to its non-inpainting counterpart.

- ``Occlusion(inpaint)``: :class:`InpaintingOcclusion` (harmonic fill) with the same window,
  stride and batching as the lead's ``Occlusion`` row (black baseline).
- ``Lime`` vs ``Lime(inpaint)``: SLIC superpixels (Agarwal and Nguyen: 50 segments,
  compactness 30, sigma 3 at 224 px; sigma 1 here at 64 px), 200 samples, LIME's binary
  cosine kernel (width 0.25) and a ridge surrogate (alpha 1) for both; black baseline vs
  harmonic fill.
- ``MP(blur)`` vs ``MP(inpaint)``: Meaningful Perturbation, 150 Adam steps (the paper: 300),
  8 x 8 mask for 64 x 64 images, blur vs harmonic fill.

Only ``Occlusion(inpaint)`` runs by default; the MP rows took 8-38 s per image on the loaded
2-core machine (see docs/inpainting.md) and are opt-in (``--methods``), as are the Lime rows
(about 1 s per image on StampNet in 2026-12, with the current harmonic fill).
"""

from captum.attr import Lime
from torch import Tensor, nn

from captum_ext._compat import SkLearnRidge
from captum_ext.attr.feature_masks import slic_feature_mask
from captum_ext.attr.inpainting import InpaintingLime, InpaintingOcclusion, binary_cosine_similarity
from captum_ext.attr.meaningful_perturbation import MeaningfulPerturbation
from captum_ext.benchmark.methods.captum_builtin import OCCLUSION_STRIDE, OCCLUSION_WINDOW
from captum_ext.benchmark.registry import Explainer, MethodSpec, register_method

LIME_SAMPLES = 200
LIME_SEGMENTS = 50  # SLIC segments; compactness 30 as in the paper, sigma 1 at 64 px
LIME_COMPACTNESS = 30.0
LIME_SIGMA = 1.0
MP_ITERATIONS = 150


def occlusion_inpaint(model: nn.Module) -> Explainer:
    method = InpaintingOcclusion(model, inpainter="harmonic")
    return lambda x, t: method.attribute(
        x, target=t, sliding_window_shapes=OCCLUSION_WINDOW, strides=OCCLUSION_STRIDE,
        baselines=0.0, perturbations_per_eval=64,
    )


def _lime(model: nn.Module, inpaint: bool) -> Explainer:
    ridge, kernel = SkLearnRidge(alpha=1.0), binary_cosine_similarity(0.25)
    method = (InpaintingLime(model, ridge, kernel, inpainter="harmonic") if inpaint
              else Lime(model, ridge, kernel))

    def explain(x: Tensor, t: Tensor) -> Tensor:
        masks = slic_feature_mask(x, LIME_SEGMENTS, LIME_COMPACTNESS, LIME_SIGMA)
        return method.attribute(x, target=t, feature_mask=masks, baselines=0.0,
                                n_samples=LIME_SAMPLES, perturbations_per_eval=50)

    return explain


def _mp(model: nn.Module, fill: str) -> Explainer:
    method = MeaningfulPerturbation(model, inpainter=fill)
    return lambda x, t: method.attribute(x, target=t, n_iter=MP_ITERATIONS, seed=0)


register_method(MethodSpec(
    "Occlusion(inpaint)", occlusion_inpaint,
    "Occlusion, 8x8 window, stride 4, harmonic inpainting instead of black", group="inpainting"))
register_method(MethodSpec(
    "Lime", lambda m: _lime(m, False),
    f"Captum Lime, SLIC superpixels, {LIME_SAMPLES} samples, black", group="inpainting",
    default=False))
register_method(MethodSpec(
    "Lime(inpaint)", lambda m: _lime(m, True),
    f"Lime, SLIC superpixels, {LIME_SAMPLES} samples, harmonic inpainting", group="inpainting",
    default=False))
register_method(MethodSpec(
    "MP(blur)", lambda m: _mp(m, "blur"),
    f"Meaningful Perturbation, blur fill, {MP_ITERATIONS} steps", group="inpainting",
    default=False))
register_method(MethodSpec(
    "MP(inpaint)", lambda m: _mp(m, "harmonic"),
    f"Meaningful Perturbation, harmonic fill (binarised), {MP_ITERATIONS} steps",
    group="inpainting", default=False))
