"""Attribution methods: each a subclass of a Captum ``Attribution`` class, one file per method."""

__all__: list = []

# pruning (issue 5): input-specific pruning and the pathway gradient
from captum_ext.attr.pathway import CriticalPathway, Pathway  # noqa: E402
from captum_ext.attr.pathway_gradient import PathwayGradient, PrunedAttribution  # noqa: E402

__all__ += ["CriticalPathway", "Pathway", "PathwayGradient", "PrunedAttribution"]
