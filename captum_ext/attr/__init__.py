"""Attribution methods: each a subclass of a Captum ``Attribution`` class, one file per method."""

__all__: list = []
# neflag (issue 4)
from captum_ext.attr.neflag import NeFLAG, NeFLAGDiagnostics  # noqa: E402

__all__ += ["NeFLAG", "NeFLAGDiagnostics"]


# inpainting (issue 6)
from captum_ext.attr.feature_masks import grid_feature_mask, slic_feature_mask  # noqa: E402
from captum_ext.attr.inpainting import (  # noqa: E402
    InpaintingFeatureAblation,
    InpaintingKernelShap,
    InpaintingLime,
    InpaintingOcclusion,
    InpaintingShapleyValueSampling,
    binary_cosine_similarity,
)

__all__ += [
    "InpaintingFeatureAblation",
    "InpaintingKernelShap",
    "InpaintingLime",
    "InpaintingOcclusion",
    "InpaintingShapleyValueSampling",
    "binary_cosine_similarity",
    "grid_feature_mask",
    "slic_feature_mask",
]
from captum_ext.attr.meaningful_perturbation import MeaningfulPerturbation  # noqa: E402

__all__ += ["MeaningfulPerturbation"]

# iprop (issue 3)
from captum_ext.attr.iprop import IProp, propagate  # noqa: E402  (iprop)

__all__ += ["IProp", "propagate"]  # iprop
