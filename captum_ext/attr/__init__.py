"""Attribution methods: each a subclass of a Captum ``Attribution`` class, one file per method."""

__all__: list = []
from captum_ext.attr.neflag import NeFLAG, NeFLAGDiagnostics  # noqa: E402

__all__ += ["NeFLAG", "NeFLAGDiagnostics"]
