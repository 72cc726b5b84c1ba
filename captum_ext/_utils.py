"""Small shared helpers: argument validation and model-state preservation."""

from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

TensorOrTuple = Union[Tensor, Tuple[Tensor, ...]]


@contextmanager
def preserved_model_state(model: nn.Module) -> Iterator[nn.Module]:
    """Restore every module's ``training`` flag and every parameter's ``requires_grad`` on exit.

    The body may change both freely (e.g. ``model.eval()`` or freezing parameters); they are put
    back even when the body raises.

    Args:
        model (nn.Module): the model whose state is saved.

    Returns:
        The same model, for use as ``with preserved_model_state(m) as m: ...``.

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2)).train()
        >>> with preserved_model_state(net):
        ...     _ = net.eval()
        >>> net.training
        True
    """
    modes: List[Tuple[nn.Module, bool]] = [(m, m.training) for m in model.modules()]
    grads: List[Tuple[nn.Parameter, bool]] = [(p, p.requires_grad) for p in model.parameters()]
    try:
        yield model
    finally:
        for module, mode in modes:
            module.training = mode
        for param, flag in grads:
            param.requires_grad_(flag)


def check_positive(name: str, value: Any, allow_zero: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a number > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` must be a number, got {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be {bound}, got {value}")


def check_int_at_least(name: str, value: Any, lower: int) -> None:
    """Raise unless ``value`` is an ``int`` (not bool) with ``value >= lower``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if value < lower:
        raise ValueError(f"`{name}` must be >= {lower}, got {value}")


def check_fraction(name: str, value: Any, closed_right: bool = False) -> None:
    """Raise unless ``0 <= value < 1`` (``<= 1`` with ``closed_right``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` must be a number, got {type(value).__name__}")
    upper_ok = value <= 1 if closed_right else value < 1
    if not (value >= 0 and upper_ok):
        interval = "[0, 1]" if closed_right else "[0, 1)"
        raise ValueError(f"`{name}` must be in {interval}, got {value}")


def check_image_batch(name: str, tensor: Any) -> None:
    """Raise unless ``tensor`` is a floating-point 4-D (B, C, H, W) tensor."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() != 4:
        raise ValueError(f"`{name}` must be 4-D (B, C, H, W), got shape {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got {tensor.dtype}")


def as_tuple(value: TensorOrTuple) -> Tuple[Tensor, ...]:
    """Wrap a tensor in a 1-tuple; pass tuples through."""
    return value if isinstance(value, tuple) else (value,)


def like_input(original: TensorOrTuple, values: Sequence[Tensor]) -> TensorOrTuple:
    """Return ``values`` in the structure of ``original``: a tensor if it was one, else a tuple."""
    return tuple(values) if isinstance(original, tuple) else values[0]


def num_hooks(model: nn.Module) -> int:
    """Count forward, forward-pre and backward hooks on all modules (used by tests)."""
    total = 0
    for module in model.modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                     "_backward_pre_hooks", "_forward_hooks_with_kwargs"):
            hooks: Dict[Any, Any] = getattr(module, attr, {}) or {}
            total += len(hooks) if attr != "_forward_hooks_with_kwargs" else 0
    return total
