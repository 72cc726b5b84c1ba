"""Argument validation shared by every public entry point (see ``docs/conventions.md``).

One rule per class of defect, written once here and called everywhere:

- **numbers**: :func:`check_number`, :func:`check_positive`, :func:`check_int_at_least`,
  :func:`check_fraction`, :func:`check_choice` reject NaN, inf (unless allowed), bools and
  wrong types with a ``TypeError``/``ValueError`` that names the argument.
- **tensors**: :func:`check_tensor`, :func:`check_finite`, :func:`check_image_batch`.
- **maps and masks**: :func:`as_map_batch` and :func:`as_mask_batch` accept one documented set of
  shapes (maps ``(B, C, H, W)`` or ``(B, H, W)``; masks ``(B, 1, H, W)`` or ``(B, H, W)``) and
  :func:`nonfinite_rows` marks the images a NaN or inf touches (they yield NaN, never a number).
- **targets and per-sample arguments**: :func:`check_target`, :func:`select_target`,
  :func:`expand_target`, :func:`select_additional_args` follow Captum's rules (a list or a
  tensor with more than one element has one entry per example; anything else applies to all).
"""

import math
from typing import Any, Iterable, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from captum_ext._compat import TargetType

Index = Union[Tensor, slice, Sequence[int]]

__all__ = [
    "as_map_batch",
    "as_mask_batch",
    "check_choice",
    "check_finite",
    "check_fraction",
    "check_image_batch",
    "check_int_at_least",
    "check_number",
    "check_positive",
    "check_target",
    "check_tensor",
    "expand_target",
    "nonfinite_rows",
    "select_additional_args",
    "select_target",
]


# --------------------------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------------------------


def check_number(
    name: str,
    value: Any,
    *,
    low: Optional[float] = None,
    high: Optional[float] = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
    integer: bool = False,
) -> None:
    """Raise unless ``value`` is a real number (not bool, not NaN) inside the given bounds.

    Args:
        name (str): the argument's name, used in the message.
        value (Any): the value to check.
        low (float, optional): lower bound (inclusive unless ``low_open``).
        high (float, optional): upper bound (inclusive unless ``high_open``).
        low_open (bool): exclude ``low`` itself. Default: False.
        high_open (bool): exclude ``high`` itself. Default: False.
        allow_inf (bool): accept ``inf`` / ``-inf`` (still bounded). Default: False.
        integer (bool): require a Python ``int``. Default: False.

    Raises:
        TypeError: ``value`` is not a number (or not an int with ``integer``); bools are refused.
        ValueError: NaN, inf (unless ``allow_inf``) or outside the bounds.

    Examples::

        >>> check_number("gamma", 0.9, low=0, high=1, high_open=True)
        >>> check_number("gamma", float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: `gamma` must be a finite number, got nan
    """
    kinds: Tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, Tensor) and value.numel() == 1 and not integer:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, kinds):
        expected = "an int" if integer else "a number"
        raise TypeError(f"`{name}` must be {expected}, got {type(value).__name__}")
    value = float(value)  # type: ignore[arg-type]
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"`{name}` must be a finite number, got {value}")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ValueError(f"`{name}` must be in {left}{lo}, {hi}{right}, got {value}")


def check_positive(name: str, value: Any, allow_zero: bool = False, allow_inf: bool = False) -> None:
    """Raise unless ``value`` is a finite number > 0 (>= 0 with ``allow_zero``); NaN is refused.

    Examples::

        >>> check_positive("step_size", 0.1)
        >>> check_positive("step_size", float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: `step_size` must be a finite number, got nan
    """
    check_number(name, value, allow_inf=allow_inf)
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be {bound}, got {value}")


def check_int_at_least(name: str, value: Any, lower: int) -> None:
    """Raise unless ``value`` is an ``int`` (not bool) with ``value >= lower``.

    Examples::

        >>> check_int_at_least("n_samples", 0, 1)
        Traceback (most recent call last):
        ...
        ValueError: `n_samples` must be >= 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if value < lower:
        raise ValueError(f"`{name}` must be >= {lower}, got {value}")


def check_fraction(name: str, value: Any, closed_right: bool = False) -> None:
    """Raise unless ``0 <= value < 1`` (``<= 1`` with ``closed_right``); NaN is refused.

    Examples::

        >>> check_fraction("sparsity", 1.0)
        Traceback (most recent call last):
        ...
        ValueError: `sparsity` must be in [0, 1), got 1.0
    """
    check_number(name, value, low=0.0, high=1.0, high_open=not closed_right)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices`` (listed in the message).

    Examples::

        >>> check_choice("solver", "lu", ["cg", "vi"])
        Traceback (most recent call last):
        ...
        ValueError: `solver` must be one of ['cg', 'vi'], got 'lu'
    """
    options = list(choices)
    if value not in options:
        raise ValueError(f"`{name}` must be one of {options}, got {value!r}")


# --------------------------------------------------------------------------------------------
# tensors
# --------------------------------------------------------------------------------------------


def check_tensor(
    name: str,
    tensor: Any,
    *,
    dims: Optional[Sequence[int]] = None,
    floating: bool = False,
    finite: bool = False,
) -> Tensor:
    """Raise unless ``tensor`` is a tensor with one of ``dims`` dimensions; return it.

    Args:
        name (str): the argument's name, used in the message.
        tensor (Any): the value to check.
        dims (sequence of int, optional): accepted numbers of dimensions.
        floating (bool): require a floating-point dtype. Default: False.
        finite (bool): also run :func:`check_finite`. Default: False.

    Examples::

        >>> check_tensor("maps", torch.zeros(2, 3), dims=(3, 4))
        Traceback (most recent call last):
        ...
        ValueError: `maps` must have 3 or 4 dimensions, got shape (2, 3)
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(tensor).__name__}")
    if dims is not None and tensor.dim() not in tuple(dims):
        wanted = " or ".join(str(d) for d in dims)
        raise ValueError(
            f"`{name}` must have {wanted} dimensions, got shape {tuple(tensor.shape)}"
        )
    if floating and not tensor.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got {tensor.dtype}")
    if finite:
        check_finite(name, tensor)
    return tensor


def check_finite(name: str, tensor: Tensor) -> None:
    """Raise ``ValueError`` naming ``name`` if ``tensor`` holds a NaN or an inf.

    Examples::

        >>> check_finite("inputs", torch.tensor([1.0, float("nan")]))
        Traceback (most recent call last):
        ...
        ValueError: `inputs` contains NaN or inf (1 of 2 values)
    """
    if tensor.is_floating_point() or tensor.is_complex():
        bad = ~torch.isfinite(tensor)
        if bool(bad.any()):
            raise ValueError(
                f"`{name}` contains NaN or inf ({int(bad.sum())} of {tensor.numel()} values)"
            )


def check_image_batch(name: str, tensor: Any) -> None:
    """Raise unless ``tensor`` is a floating-point 4-D (B, C, H, W) tensor.

    Examples::

        >>> check_image_batch("images", torch.zeros(3, 8, 8))
        Traceback (most recent call last):
        ...
        ValueError: `images` must be 4-D (B, C, H, W), got shape (3, 8, 8)
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() != 4:
        raise ValueError(f"`{name}` must be 4-D (B, C, H, W), got shape {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got {tensor.dtype}")


# --------------------------------------------------------------------------------------------
# maps and masks: one shape policy for every metric
# --------------------------------------------------------------------------------------------


def as_map_batch(name: str, maps: Any) -> Tensor:
    """Return attribution maps as ``(B, C, H, W)``; accepts ``(B, C, H, W)`` or ``(B, H, W)``.

    A 3-D tensor is always read as ``(B, H, W)`` (never as one ``(C, H, W)`` image); any other
    number of dimensions raises. Values are not checked: use :func:`nonfinite_rows` to give
    the images with a NaN or inf a NaN result.

    Examples::

        >>> as_map_batch("attributions", torch.zeros(2, 5, 6)).shape
        torch.Size([2, 1, 5, 6])
        >>> as_map_batch("attributions", torch.zeros(5, 6))
        Traceback (most recent call last):
        ...
        ValueError: `attributions` must be (B, C, H, W) or (B, H, W), got shape (5, 6)
    """
    if not isinstance(maps, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(maps).__name__}")
    if maps.dim() == 3:
        return maps.unsqueeze(1)
    if maps.dim() == 4:
        return maps
    raise ValueError(f"`{name}` must be (B, C, H, W) or (B, H, W), got shape {tuple(maps.shape)}")


def as_mask_batch(name: str, masks: Any, like: Tensor) -> Tensor:
    """Return ground-truth masks as bool ``(B, 1, H, W)`` matching the maps ``like``.

    Accepts ``(B, 1, H, W)`` or ``(B, H, W)``; bool, integer or floating point with values 0/1
    (non-zero = object). Batch, height and width must equal those of ``like`` (a map batch
    ``(B, C, H, W)``); NaN, inf or values other than 0 and 1 raise.

    Examples::

        >>> maps = torch.zeros(2, 3, 4, 4)
        >>> as_mask_batch("masks", torch.ones(2, 4, 4), maps).shape
        torch.Size([2, 1, 4, 4])
        >>> as_mask_batch("masks", torch.ones(2, 3, 4, 4), maps)
        Traceback (most recent call last):
        ...
        ValueError: `masks` must be (B, 1, H, W) or (B, H, W) = (2, 1, 4, 4) or (2, 4, 4), got shape (2, 3, 4, 4)
    """
    if not isinstance(masks, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(masks).__name__}")
    batch, _, height, width = like.shape
    if masks.dim() == 3:
        masks = masks.unsqueeze(1)
    if masks.dim() != 4 or tuple(masks.shape) != (batch, 1, height, width):
        got = tuple(masks.shape) if masks.dim() != 4 or masks.shape[1] != 1 else tuple(masks.shape)
        raise ValueError(
            f"`{name}` must be (B, 1, H, W) or (B, H, W) = ({batch}, 1, {height}, {width}) or "
            f"({batch}, {height}, {width}), got shape {got}"
        )
    if masks.dtype == torch.bool:
        return masks.to(like.device)
    check_finite(name, masks)
    if not bool(((masks == 0) | (masks == 1)).all()):
        raise ValueError(f"`{name}` must be binary (0 = background, 1 = object)")
    return (masks != 0).to(like.device)


def nonfinite_rows(*tensors: Tensor) -> Tensor:
    """Bool ``(B,)``: True where an image's row of any tensor holds a NaN or an inf.

    Metrics return NaN for exactly these images (the NaN policy).

    Examples::

        >>> nonfinite_rows(torch.tensor([[1.0, 2.0], [float("nan"), 0.0]])).tolist()
        [False, True]
    """
    bad: Optional[Tensor] = None
    for tensor in tensors:
        if tensor.is_floating_point():
            flat = tensor.reshape(tensor.shape[0], math.prod(tensor.shape[1:]))
            rows = ~torch.isfinite(flat).all(dim=1)
        else:
            rows = torch.zeros(tensor.shape[0], dtype=torch.bool, device=tensor.device)
        bad = rows if bad is None else bad | rows.to(bad.device)
    if bad is None:
        raise ValueError("nonfinite_rows needs at least one tensor")
    return bad


# --------------------------------------------------------------------------------------------
# targets and per-sample arguments (Captum's rules, one helper for every method and metric)
# --------------------------------------------------------------------------------------------


def _is_per_example(target: TargetType) -> bool:
    return isinstance(target, list) or (isinstance(target, Tensor) and target.numel() > 1)


def check_target(target: TargetType, batch_size: int, name: str = "target") -> None:
    """Validate ``target`` against a batch of ``batch_size`` examples, as Captum does.

    ``None``, an int, a tuple (one multi-dimensional output index) and a one-element tensor
    apply to every example. A list, or a tensor with more than one element, must have exactly
    one entry per example (Captum raises for any other length; so do we, with a
    ``ValueError``). Entries must be ints, tuples of ints or integer tensors.

    Examples::

        >>> check_target(torch.tensor([0, 1]), 2)
        >>> check_target([0, 1, 2], 2)
        Traceback (most recent call last):
        ...
        ValueError: `target` has 3 entries but the batch has 2 examples; pass one per example, or a single int
    """
    if target is None or isinstance(target, tuple):
        return
    if isinstance(target, bool):
        raise TypeError(f"`{name}` must be an int, a tuple, a list or a tensor, got bool")
    if isinstance(target, int):
        return
    if isinstance(target, Tensor):
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise TypeError(f"`{name}` must be an integer tensor, got {target.dtype}")
        if target.numel() > 1 and (target.dim() != 1 or target.shape[0] != batch_size):
            if target.dim() == 1:
                raise ValueError(
                    f"`{name}` has {target.shape[0]} entries but the batch has {batch_size} "
                    "examples; pass one per example, or a single int"
                )
            raise ValueError(
                f"`{name}` must be a 1-D tensor of {batch_size} class indices, got shape "
                f"{tuple(target.shape)}"
            )
        return
    if isinstance(target, list):
        if len(target) != batch_size:
            raise ValueError(
                f"`{name}` has {len(target)} entries but the batch has {batch_size} examples; "
                "pass one per example, or a single int"
            )
        for entry in target:
            if isinstance(entry, bool) or not isinstance(entry, (int, tuple, Tensor)):
                raise TypeError(
                    f"`{name}` entries must be ints or tuples of ints, got {type(entry).__name__}"
                )
        return
    raise TypeError(
        f"`{name}` must be None, an int, a tuple, a list or a tensor, got {type(target).__name__}"
    )


def select_target(target: TargetType, index: Index) -> TargetType:
    """The target of the examples at ``index`` (a slice, index list or index tensor).

    Per-example targets (a list, a tensor with more than one element) are indexed; anything
    else applies to every example and is returned unchanged. Call :func:`check_target` first.

    Examples::

        >>> select_target(torch.tensor([3, 4, 5]), slice(1, 3)).tolist()
        [4, 5]
        >>> select_target([3, 4, 5], torch.tensor([2, 0]))
        [5, 3]
        >>> select_target(7, slice(0, 2))
        7
    """
    if not _is_per_example(target):
        return target
    if isinstance(target, list):
        if isinstance(index, slice):
            return target[index]
        positions = index.tolist() if isinstance(index, Tensor) else list(index)
        return [target[i] for i in positions]
    assert isinstance(target, Tensor)
    if isinstance(index, slice):
        return target[index]
    index_tensor = torch.as_tensor(index, dtype=torch.long, device=target.device)
    return target[index_tensor]


def expand_target(target: TargetType, n: int, interleave: bool = True) -> TargetType:
    """Repeat per-example targets for ``n`` evaluations per example (Captum's expansion).

    With ``interleave`` (the default) each example's entry is repeated ``n`` times in a row
    (``[t0, t0, t1, t1]``, Captum's ``repeat_interleave``); otherwise the whole list is
    repeated (``[t0, t1, t0, t1]``, Captum's ``repeat``). Shared targets are unchanged.

    Examples::

        >>> expand_target(torch.tensor([1, 2]), 2).tolist()
        [1, 1, 2, 2]
        >>> expand_target([1, 2], 2, interleave=False)
        [1, 2, 1, 2]
    """
    if not _is_per_example(target) or n == 1:
        return target
    if isinstance(target, list):
        if interleave:
            return [entry for entry in target for _ in range(n)]
        return target * n
    assert isinstance(target, Tensor)
    return target.repeat_interleave(n, dim=0) if interleave else target.repeat(n)


def select_additional_args(
    args: Any, index: Index, batch_size: int, name: str = "additional_forward_args"
) -> Any:
    """The ``additional_forward_args`` of the examples at ``index``.

    Captum's rule: a tensor argument with at least one dimension has one row per example and
    is indexed; 0-d tensors and non-tensors apply to every example. A tensor whose first
    dimension is not ``batch_size`` cannot be split per example and raises (instead of
    silently giving one example another's row). ``None`` stays ``None``; a single non-tuple
    argument is returned as a single argument.

    Examples::

        >>> a, k = select_additional_args((torch.arange(3), 5), slice(1, 2), 3)
        >>> a.tolist(), k
        ([1], 5)
        >>> select_additional_args((torch.zeros(2),), slice(0, 1), 3)
        Traceback (most recent call last):
        ...
        ValueError: `additional_forward_args[0]` has first dimension 2, but the batch has 3 examples
    """
    if args is None:
        return None
    single = not isinstance(args, tuple)
    items = (args,) if single else args
    selected = []
    for position, arg in enumerate(items):
        if isinstance(arg, Tensor) and arg.dim() > 0:
            if arg.shape[0] != batch_size:
                where = name if single else f"{name}[{position}]"
                raise ValueError(
                    f"`{where}` has first dimension {arg.shape[0]}, but the batch has "
                    f"{batch_size} examples"
                )
            if isinstance(index, slice):
                selected.append(arg[index])
            else:
                selected.append(arg[torch.as_tensor(index, dtype=torch.long, device=arg.device)])
        else:
            selected.append(arg)
    return selected[0] if single else tuple(selected)
