"""Resolve the fill argument: ``resolve_inpainter(x)`` for ``inpainter=`` everywhere, and
``get_inpainter(name, **options)`` for a named inpainter with options."""

import math
from typing import Any, Callable, Dict, List, Union

from torch import Tensor

from captum_ext._checks import check_finite
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
from captum_ext.inpaint.linear import NoisyLinearInpainter

#: What ``inpainter=`` accepts: a registered name, a number or tensor (a constant), an
#: :class:`~captum_ext.inpaint.Inpainter` or a callable ``inpaint(images, holes)``.
InpainterLike = Union[str, int, float, Tensor, Callable[..., Any]]

_FACTORIES: Dict[str, Callable[..., Callable]] = {
    "harmonic": HarmonicInpainter,
    "pull_push": PullPushInpainter,
    "constant": ConstantInpainter,
    "mean": MeanInpainter,
    "blur": BlurInpainter,
    "noise": NoiseInpainter,
    "telea": lambda **kw: OpenCVInpainter("telea", **kw),
    "ns": lambda **kw: OpenCVInpainter("ns", **kw),
    "biharmonic": BiharmonicInpainter,
    "linear": NoisyLinearInpainter,
}


def inpainter_names() -> List[str]:
    """The names :func:`get_inpainter` accepts.

    Returns:
        list of str: the registered names, sorted.

    Examples::

        >>> "harmonic" in inpainter_names(), "linear" in inpainter_names()
        (True, True)
    """
    return sorted(_FACTORIES)


def get_inpainter(name_or_callable: InpainterLike = "harmonic", **options: Any) -> Callable:
    """Return an inpainter for a name (``"harmonic"``, ``"pull_push"``, ``"constant"``,
    ``"mean"``, ``"blur"``, ``"noise"``, ``"telea"``, ``"ns"``, ``"biharmonic"``) or pass a
    callable through.

    Args:
        name_or_callable (str or callable): a name, or any ``inpaint(images, holes)``.
        **options: keyword arguments of the named inpainter's class (e.g. ``value=0.5`` for
            ``"constant"``, ``sigma=5`` for ``"blur"``); not allowed with a callable.

    Returns:
        callable: ``inpaint(images, holes) -> images``.

    Examples::

        >>> get_inpainter("constant", value=0.5)
        ConstantInpainter(0.5)
        >>> get_inpainter("pull-push").__class__.__name__
        'PullPushInpainter'
    """
    if isinstance(name_or_callable, str):
        key = name_or_callable.lower().replace("-", "_")
        if key not in _FACTORIES:
            raise ValueError(
                f"unknown inpainter {name_or_callable!r}; available: {inpainter_names()}"
            )
        return _FACTORIES[key](**options)
    if callable(name_or_callable):
        if options:
            raise TypeError("options are only accepted together with an inpainter name")
        return name_or_callable
    raise TypeError(
        f"`inpainter` must be a name or a callable, got {type(name_or_callable).__name__}"
    )


def resolve_inpainter(inpainter: Any, name: str = "inpainter") -> Callable:
    """Resolve the one fill argument used everywhere (``inpainter=``) to a callable.

    Accepts a registered name (``"harmonic"``, ``"linear"``, ...), a number or a tensor (a
    constant fill, :class:`ConstantInpainter`), an :class:`Inpainter`, or any callable
    ``inpaint(images, holes) -> images``. The contract of a callable: it receives the images
    ``(B, C, H, W)`` and the hole mask ``(B, 1, H, W)`` (1 = missing); it must not rely on
    what the images hold inside the hole; only its values inside the hole are used. Call it
    through :func:`captum_ext.inpaint.apply_inpainter`.

    Args:
        inpainter (str, number, Tensor, Inpainter or callable): the fill.
        name (str): the argument's name in error messages. Default: ``"inpainter"``.

    Returns:
        callable: ``inpaint(images, holes) -> images``.

    Examples::

        >>> resolve_inpainter(0.5)
        ConstantInpainter(0.5)
        >>> resolve_inpainter("harmonic").__class__.__name__
        'HarmonicInpainter'
    """
    if isinstance(inpainter, bool) or inpainter is None:
        raise TypeError(
            f"`{name}` must be an inpainter name, a number, a tensor, an Inpainter or a "
            f"callable, got {type(inpainter).__name__}"
        )
    if isinstance(inpainter, str):
        return get_inpainter(inpainter)
    if isinstance(inpainter, Tensor):
        check_finite(name, inpainter)
        return ConstantInpainter(inpainter)
    if isinstance(inpainter, (int, float)):
        if not math.isfinite(inpainter):
            raise ValueError(f"`{name}` must be a finite number, got {inpainter}")
        return ConstantInpainter(inpainter)
    if callable(inpainter):
        return inpainter
    raise TypeError(
        f"`{name}` must be an inpainter name, a number, a tensor, an Inpainter or a callable, "
        f"got {type(inpainter).__name__}"
    )
