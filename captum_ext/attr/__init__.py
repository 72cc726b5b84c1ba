"""Attribution methods: each a subclass of a Captum ``Attribution`` class, one file per method."""

__all__: list = []
from captum_ext.attr.iprop import IProp, propagate  # noqa: E402  (iprop)

__all__ += ["IProp", "propagate"]  # iprop
