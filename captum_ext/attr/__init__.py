"""Attribution methods: each a subclass of a Captum ``Attribution`` class, one file per method.

- :class:`NeFLAG` — negative flux aggregation (``GradientAttribution``).
- :class:`PathwayGradient`, :class:`PrunedAttribution`, :class:`CriticalPathway` — input-specific
  pruning: gradients (or any Captum gradient method) of the network pruned to the input's
  critical pathway.
- ``Inpainting*`` — Captum's perturbation methods with inpainted feature removal, and
  :class:`MeaningfulPerturbation` (``PerturbationAttribution``).
- :class:`IProp` — propagate any attribution over a pixel graph with a Markov reward process.
"""

from captum_ext.attr.feature_masks import grid_feature_mask, slic_feature_mask
from captum_ext.attr.inpainting import (
    InpaintingFeatureAblation,
    InpaintingKernelShap,
    InpaintingLime,
    InpaintingOcclusion,
    InpaintingShapleyValueSampling,
    binary_cosine_similarity,
)
from captum_ext.attr.iprop import IProp, IPropDiagnostics, propagate
from captum_ext.attr.meaningful_perturbation import (
    MeaningfulPerturbation,
    MeaningfulPerturbationDiagnostics,
)
from captum_ext.attr.neflag import NeFLAG, NeFLAGDiagnostics
from captum_ext.attr.pathway import CriticalPathway, Pathway
from captum_ext.attr.pathway_gradient import PathwayDiagnostics, PathwayGradient, PrunedAttribution

__all__ = [
    "CriticalPathway",
    "InpaintingFeatureAblation",
    "InpaintingKernelShap",
    "InpaintingLime",
    "InpaintingOcclusion",
    "InpaintingShapleyValueSampling",
    "IProp",
    "IPropDiagnostics",
    "MeaningfulPerturbation",
    "MeaningfulPerturbationDiagnostics",
    "NeFLAG",
    "NeFLAGDiagnostics",
    "Pathway",
    "PathwayDiagnostics",
    "PathwayGradient",
    "PrunedAttribution",
    "binary_cosine_similarity",
    "grid_feature_mask",
    "propagate",
    "slic_feature_mask",
]
