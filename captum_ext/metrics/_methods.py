"""Method resolution and batched explaining for the model-level metrics (sanity, ROAR).

A *method* is a Captum ``Attribution`` class (built on the model, called with its defaults), an
object with a ``build(model)`` method (the benchmark's ``MethodSpec``, duck-typed so the metrics
do not import the benchmark), or a callable ``build(model) -> explain(inputs, target) -> maps``.
"""

from typing import Any, Callable, Dict, Mapping

import torch
from torch import Tensor, nn

from captum_ext._checks import as_map_batch

Explainer = Callable[[Tensor, Tensor], Tensor]
MethodBuilder = Callable[[nn.Module], Explainer]


def method_name(method: Any) -> str:
    """The display name of a method: a class's name, a spec's ``name``, a function's name."""
    if isinstance(method, type):
        return method.__name__
    return str(getattr(method, "name", getattr(method, "__name__", type(method).__name__)))


def as_builder(method: Any, name: str) -> MethodBuilder:
    """``build(model) -> explain(inputs, target)`` for one method (see the module docstring)."""
    from captum.attr import Attribution

    if isinstance(method, type) and issubclass(method, Attribution):
        cls = method

        def build(model: nn.Module) -> Explainer:
            attribution = cls(model)
            return lambda inputs, target: attribution.attribute(inputs, target=target)

        return build
    if callable(getattr(method, "build", None)):
        return method.build
    if callable(method):
        return method
    raise TypeError(
        f"method {name!r} must be a Captum Attribution class, a MethodSpec or a callable "
        f"build(model) -> explain(inputs, target), got {type(method).__name__}"
    )


def resolve_methods(methods: Any) -> Dict[str, MethodBuilder]:
    """Normalize ``methods`` to ``{name: build(model) -> explain(inputs, target)}``.

    Args:
        methods: a mapping ``name -> method``, a sequence of methods, or one method.

    Returns:
        dict: name -> builder, in the given order.

    Examples::

        >>> from captum.attr import Saliency
        >>> list(resolve_methods([Saliency]))
        ['Saliency']
    """
    if isinstance(methods, Mapping):
        items = [(str(n), m) for n, m in methods.items()]
    elif isinstance(methods, (list, tuple)):
        items = [(method_name(m), m) for m in methods]
    else:
        items = [(method_name(methods), methods)]
    if not items:
        raise ValueError("`methods` must name at least one method")
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(f"`methods` has duplicate names: {names}; pass a mapping name -> method")
    return {name: as_builder(m, name) for name, m in items}


def explain_batches(explain: Explainer, inputs: Tensor, target: Tensor, batch_size: int) -> Tensor:
    """Maps ``(B, C, H, W)`` of ``explain`` over ``inputs`` in chunks of ``batch_size`` images."""
    maps = []
    for lo in range(0, inputs.shape[0], batch_size):
        out = explain(inputs[lo:lo + batch_size], target[lo:lo + batch_size])
        if isinstance(out, tuple):
            out = out[0]
        maps.append(as_map_batch("a method's maps", out).detach())
    if not maps:
        return inputs.new_zeros(inputs.shape)
    result = torch.cat(maps)
    if result.shape[0] != inputs.shape[0] or result.shape[2:] != inputs.shape[2:]:
        raise ValueError(
            f"a method returned maps of shape {tuple(result.shape)} for inputs {tuple(inputs.shape)}"
        )
    return result
