"""Captum's ``infidelity`` and ``sensitivity_max`` recomputed by hand, for deterministic
perturbations: oracles for the tests that pass our attributions to Captum's metrics."""

from typing import Any, Callable, Dict, Optional

import torch
from torch import Tensor, nn


def _pattern(inputs: Tensor) -> Tensor:
    """A fixed, input-independent pattern in [-1, 1] of ``inputs``' shape (rows differ)."""
    return torch.sin(torch.arange(inputs.numel(), dtype=inputs.dtype, device=inputs.device) * 0.7
                     ).view_as(inputs)


def fixed_noise_perturb(inputs: Tensor) -> tuple:
    """An ``infidelity`` perturbation: ``(I, inputs - I)`` with ``I = 0.01 * pattern``."""
    noise = 0.01 * _pattern(inputs)
    return noise, inputs - noise


def fixed_shift(inputs: Tensor, perturb_radius: float) -> Tensor:
    """A ``sensitivity_max`` perturbation: ``inputs + radius * pattern``."""
    return inputs + perturb_radius * _pattern(inputs)


def infidelity_by_hand(model: nn.Module, inputs: Tensor, attributions: Tensor, target: int,
                       n_perturb_samples: int) -> Tensor:
    """``E[(I . a - (f(x)_t - f(x - I)_t))^2]`` over the samples (Captum's ``normalize=False``),
    the samples of example ``i`` being rows ``i n .. i n + n - 1`` of the expanded batch."""
    expanded = inputs.repeat_interleave(n_perturb_samples, 0)
    noise, perturbed = fixed_noise_perturb(expanded)
    with torch.no_grad():
        drop = model(expanded)[:, target] - model(perturbed)[:, target]
    dot = (noise * attributions.repeat_interleave(n_perturb_samples, 0)).flatten(1).sum(1)
    return ((dot - drop) ** 2).view(inputs.shape[0], n_perturb_samples).mean(1)


def sensitivity_max_by_hand(explain: Callable[..., Tensor], inputs: Tensor, n_perturb_samples: int,
                            perturb_radius: float = 0.02,
                            per_example: Optional[Callable[[int], Dict[str, Any]]] = None,
                            **kwargs: Any) -> Tensor:
    """``max_s |a(x + d_s) - a(x)| / |a(x)|`` (Frobenius norms), every map computed one image at
    a time; ``per_example(i)`` adds the keyword arguments of example ``i`` (e.g. its guide)."""
    expanded = inputs.repeat_interleave(n_perturb_samples, 0)
    moved = fixed_shift(expanded, perturb_radius)

    def one(x: Tensor, example: int) -> Tensor:
        extra = {} if per_example is None else per_example(example)
        return explain(x, **kwargs, **extra)

    maps = torch.cat([one(moved[r:r + 1], r // n_perturb_samples) for r in range(moved.shape[0])])
    base = torch.cat([one(inputs[i:i + 1], i) for i in range(inputs.shape[0])])
    change = (maps - base.repeat_interleave(n_perturb_samples, 0)).flatten(1).norm(dim=1)
    scale = base.flatten(1).norm(dim=1).repeat_interleave(n_perturb_samples, 0)
    return (change / scale).view(inputs.shape[0], n_perturb_samples).amax(1)
