"""Input-specific pruning rows of the stamp benchmark (issue 5).

Default rows: ``PathwayGradient`` (the paper's pathway gradient, signed; the runner takes
``|map|`` unless ``--signed``) and ``PrunedIG`` (Captum IntegratedGradients with the shared
settings of ``captum_builtin``, run on the network pruned at each input). Non-default rows for
ablations: the papers' setting ``PathwayGradient-paper`` (``preset="paper"``: sparsity 0.85, the
authors' code), the sparsity sweep ``PathwayGradient@<s>``, the random-pathway control
``PathwayGradient-random`` and the NeuronIntGrad scoring ``PathwayGradient-NIG``. The default
sparsity (0.95) was chosen with this sweep on the stamp benchmark (``docs/pruning.md``).
"""

from functools import partial
from typing import Optional

import torch
from captum.attr import IntegratedGradients
from torch import nn

from captum_ext.attr.pathway_gradient import DEFAULT_SPARSITY, PathwayGradient, PrunedAttribution
from captum_ext.benchmark.methods.captum_builtin import IG_STEPS, INTERNAL_BATCH_SIZE
from captum_ext.benchmark.registry import Explainer, MethodSpec, register_method

SWEEP = (0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)


def pathway_gradient(model: nn.Module, sparsity: float = DEFAULT_SPARSITY,
                     scoring: str = "taylor", preset: Optional[str] = None) -> Explainer:
    kwargs = {}
    if scoring == "random":
        kwargs = {"generator": torch.Generator().manual_seed(0)}
    if preset is not None:
        method = PathwayGradient(model, preset=preset)
    else:
        method = PathwayGradient(model, sparsity=sparsity, scoring=scoring,
                                 pathway_kwargs=kwargs)
    return lambda x, t: method.attribute(x, target=t)


def pruned_integrated_gradients(model: nn.Module, sparsity: float = DEFAULT_SPARSITY) -> Explainer:
    method = PrunedAttribution(IntegratedGradients, model, sparsity=sparsity)
    return lambda x, t: method.attribute(
        x, target=t, baselines=0.0, n_steps=IG_STEPS, internal_batch_size=INTERNAL_BATCH_SIZE
    )


register_method(MethodSpec(
    "PathwayGradient", pathway_gradient,
    f"gradient of the net pruned to the input's pathway, sparsity {DEFAULT_SPARSITY}",
    group="pruning"))
register_method(MethodSpec(
    "PrunedIG", pruned_integrated_gradients,
    f"Captum IG ({IG_STEPS} steps, black) on the net pruned at the input, sparsity "
    f"{DEFAULT_SPARSITY}", group="pruning"))
for _s in SWEEP:
    register_method(MethodSpec(
        f"PathwayGradient@{_s}", partial(pathway_gradient, sparsity=_s),
        f"pathway gradient, sparsity {_s}", default=False, group="pruning"))
    register_method(MethodSpec(
        f"PrunedIG@{_s}", partial(pruned_integrated_gradients, sparsity=_s),
        f"pruned IG, sparsity {_s}", default=False, group="pruning"))
register_method(MethodSpec(
    "PathwayGradient-paper", partial(pathway_gradient, preset="paper"),
    "pathway gradient at the papers' setting (preset 'paper': sparsity 0.85, authors' code)",
    default=False, group="pruning"))
register_method(MethodSpec(
    "PathwayGradient-random", partial(pathway_gradient, scoring="random"),
    f"control: gradient of a random pathway, sparsity {DEFAULT_SPARSITY}", default=False,
    group="pruning"))
register_method(MethodSpec(
    "PathwayGradient-NIG", partial(pathway_gradient, scoring="neuron_int_grad"),
    f"pathway gradient, NeuronIntGrad scores (8 steps), sparsity {DEFAULT_SPARSITY}",
    default=False, group="pruning"))
