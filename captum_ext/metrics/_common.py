"""Private helpers shared by the metrics (not public API)."""

from contextlib import contextmanager
from typing import Any, Iterator, Optional

import torch
from torch import Tensor, nn

from captum_ext._checks import check_target, nonfinite_rows
from captum_ext._compat import TargetType
from captum_ext._utils import preserved_model_state


def nonfinite_images(*tensors: Tensor) -> Tensor:
    """:func:`captum_ext._checks.nonfinite_rows` that also accepts a batch of 0 images.

    (``nonfinite_rows`` reshapes to ``(B, -1)``, which fails for ``B = 0``.)

    Examples::

        >>> nonfinite_images(torch.zeros(0, 3, 4, 4)).shape
        torch.Size([0])
    """
    if tensors and tensors[0].shape[0] == 0:
        return torch.zeros(0, dtype=torch.bool, device=tensors[0].device)
    return nonfinite_rows(*(t.flatten(1) if t.dim() > 1 else t for t in tensors))


@contextmanager
def model_guard(forward_func: Any) -> Iterator[None]:
    """``preserved_model_state`` for a forward function that is an ``nn.Module`` (else nothing).

    Parameter and buffer values are restored too when any module is in training mode (a
    forward in training mode updates batch-norm statistics).
    """
    if isinstance(forward_func, nn.Module):
        training = any(module.training for module in forward_func.modules())
        with preserved_model_state(forward_func, values=training):
            yield
    else:
        yield


def target_vector(
    target: TargetType, batch: int, device: torch.device, name: str = "target"
) -> Optional[Tensor]:
    """Validate ``target`` (Captum's rules, :func:`check_target`) and return a (B,) long tensor.

    ``None`` stays ``None`` (the caller decides what it means). A tuple (an index into a
    multi-dimensional output) is refused: these metrics score ``(batch, classes)`` outputs.
    """
    check_target(target, batch, name)
    if target is None:
        return None
    if isinstance(target, tuple):
        raise ValueError(
            f"`{name}` must be one class index per example (an int, a list or a tensor); tuples "
            "index multi-dimensional outputs, which these metrics do not score"
        )
    if isinstance(target, int):
        return torch.full((batch,), target, dtype=torch.long, device=device)
    if isinstance(target, list):
        entries = [int(t) if isinstance(t, Tensor) and t.numel() == 1 else t for t in target]
        if not all(isinstance(t, int) for t in entries):
            raise ValueError(f"`{name}` entries must be class indices (ints)")
        return torch.tensor(entries, dtype=torch.long, device=device).view(batch)
    assert isinstance(target, Tensor)
    if target.numel() == 1:
        return target.reshape(()).long().expand(batch).clone().to(device)
    return target.long().to(device)


def check_class_index(target: Tensor, classes: int, name: str = "target") -> None:
    """Raise ``ValueError`` naming ``name`` unless every entry is in ``[0, classes)``."""
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= classes):
        raise ValueError(
            f"`{name}` must hold class indices in [0, {classes}), got values from "
            f"{int(target.min())} to {int(target.max())}"
        )
