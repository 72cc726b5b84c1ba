"""Attribution methods: each a subclass of a Captum ``Attribution`` class, one file per method."""

__all__: list = []
