"""IProp-wrapped Saliency and IntegratedGradients as benchmark rows, next to the base methods.

The base methods use exactly the settings of the Captum rows (``captum_builtin``): Saliency
with ``abs=True``; IG with a black baseline, ``IG_STEPS`` steps and the shared internal batch
size. IProp uses its defaults (``gamma=0.99``, ``radius=1``, ``sigma_c=0.1``, CG, stencil), the
guide being the input images min-max scaled per image.
"""

from typing import Any, Dict

from captum.attr import IntegratedGradients, Saliency
from torch import nn

from captum_ext.attr.iprop import IProp
from captum_ext.benchmark.methods.captum_builtin import IG_STEPS, INTERNAL_BATCH_SIZE
from captum_ext.benchmark.registry import Explainer, MethodSpec, register_method


def iprop_saliency(model: nn.Module, **options: Any) -> Explainer:
    """``IProp(Saliency)``; ``options`` go to :class:`IProp` (used by the ablation)."""
    method = IProp(Saliency(model), **options)
    return lambda x, t: method.attribute(x, target=t, abs=True)


def iprop_integrated_gradients(model: nn.Module, **options: Any) -> Explainer:
    """``IProp(IntegratedGradients)``; ``options`` go to :class:`IProp`."""
    method = IProp(IntegratedGradients(model), **options)
    return lambda x, t: method.attribute(
        x, target=t, baselines=0.0, n_steps=IG_STEPS, internal_batch_size=INTERNAL_BATCH_SIZE
    )


BUILDERS: Dict[str, Any] = {
    "Saliency": iprop_saliency,
    "IntegratedGradients": iprop_integrated_gradients,
}

register_method(MethodSpec(
    "IProp(Saliency)", iprop_saliency, "IProp (gamma 0.99, r 1, sigma_c 0.1) of Captum Saliency",
    group="iprop",
))
register_method(MethodSpec(
    "IProp(IntegratedGradients)", iprop_integrated_gradients,
    f"IProp (gamma 0.99, r 1, sigma_c 0.1) of Captum IG, {IG_STEPS} steps", group="iprop",
))
