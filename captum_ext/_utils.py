"""Small shared helpers: model-state preservation, seeds, warnings and deprecations.

Argument validation lives in :mod:`captum_ext._checks` (re-exported here for old imports).
"""

import hashlib
import os
import sys
import warnings
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Type, Union

import torch
from torch import Tensor, nn

from captum_ext._checks import (  # noqa: F401  (re-exported for existing imports)
    check_fraction,
    check_image_batch,
    check_int_at_least,
    check_positive,
)

TensorOrTuple = Union[Tensor, Tuple[Tensor, ...]]


_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
)


@contextmanager
def preserved_model_state(
    model: nn.Module, values: bool = False, rng: bool = False
) -> Iterator[nn.Module]:
    """Put the model back as it was on exit, also when the body raises (the model-state policy).

    Restored: every module's ``training`` flag, every parameter's ``requires_grad``, and the
    hooks (any forward, forward-pre, backward or state-dict hook that the body added and left
    is removed). With ``values`` the parameter and buffer values are restored too (a copy of
    the state dict is kept: use it for code that writes weights). With ``rng`` the global
    torch RNG state (CPU and every initialised CUDA device) is restored.

    Args:
        model (nn.Module): the model whose state is saved.
        values (bool): also restore parameter and buffer values. Default: False.
        rng (bool): also restore the global RNG state. Default: False.

    Returns:
        The same model, for use as ``with preserved_model_state(m) as m: ...``.

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2)).train()
        >>> with preserved_model_state(net):
        ...     _ = net.eval()
        ...     _ = net[0].register_forward_hook(lambda *a: None)
        >>> net.training, len(net[0]._forward_hooks)
        (True, 0)
    """
    modes: List[Tuple[nn.Module, bool]] = [(m, m.training) for m in model.modules()]
    grads: List[Tuple[nn.Parameter, bool]] = [(p, p.requires_grad) for p in model.parameters()]
    hooks: List[Tuple[Dict[Any, Any], set]] = []
    for module in model.modules():
        for attr in _HOOK_DICTS:
            table = getattr(module, attr, None)
            if isinstance(table, dict):
                hooks.append((table, set(table.keys())))
    saved_values = (
        {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
        if values
        else None
    )
    rng_state = _get_rng_state() if rng else None
    try:
        yield model
    finally:
        for table, keys in hooks:
            for key in [k for k in table if k not in keys]:
                del table[key]
        for module, mode in modes:
            module.training = mode
        for param, flag in grads:
            param.requires_grad_(flag)
        if saved_values is not None:
            with torch.no_grad():
                current = model.state_dict(keep_vars=True)
                for key, value in saved_values.items():
                    current[key].copy_(value)
        if rng_state is not None:
            _set_rng_state(rng_state)


def _get_rng_state() -> Tuple[Tensor, Optional[List[Tensor]]]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def _set_rng_state(state: Tuple[Tensor, Optional[List[Tensor]]]) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state_all(state[1])


def derive_seed(seed: int, *keys: Union[int, str]) -> int:
    """A 63-bit seed that depends only on ``seed`` and ``keys`` (e.g. an image index).

    The rule for reproducible per-example randomness: an example's draws come from a generator
    seeded by ``derive_seed(seed, index)``, so results do not depend on batch size or order.

    Examples::

        >>> derive_seed(0, 5) == derive_seed(0, 5) != derive_seed(0, 6)
        True
    """
    text = ":".join(str(k) for k in (seed, *keys)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1


_PACKAGE_DIRS = (os.path.dirname(os.path.abspath(__file__)),)


def warn_external(message: str, category: Type[Warning] = UserWarning) -> None:
    """``warnings.warn`` pointing at the user's line: the first frame outside captum_ext/Captum.

    Captum wraps ``attribute`` in ``log_usage``, so a fixed ``stacklevel`` points into
    Captum's ``dummy_log.py``; this walks the stack instead.

    Examples::

        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_external("careful")
        >>> caught[0].message.args[0]
        'careful'
    """
    import captum

    internal = _PACKAGE_DIRS + (os.path.dirname(os.path.abspath(captum.__file__)),)
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(internal):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    warnings.warn(message, category, stacklevel=level + 1)


def deprecated_kwarg(
    kwargs: Dict[str, Any], old: str, new: str, current: Any, default: Any = None
) -> Any:
    """Handle a renamed keyword: pop ``old`` from ``kwargs`` with a ``DeprecationWarning``.

    Returns the value to use for ``new``: ``kwargs[old]`` if given (an error if ``new`` was
    also given, i.e. ``current`` differs from ``default``), else ``current``.

    Examples::

        >>> import warnings
        >>> kw = {"filler": 0.5}
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     value = deprecated_kwarg(kw, "filler", "inpainter", "harmonic", "harmonic")
        >>> value, kw, caught[0].category.__name__
        (0.5, {}, 'DeprecationWarning')
    """
    if old not in kwargs:
        return current
    value = kwargs.pop(old)
    unchanged = current is default or (
        isinstance(current, (str, int, float, type(None))) and current == default
    )
    if not unchanged:
        raise TypeError(f"pass `{new}` only; `{old}` is its deprecated name")
    warn_external(
        f"`{old}` is deprecated and will be removed in the next release; use `{new}`",
        DeprecationWarning,
    )
    return value


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
