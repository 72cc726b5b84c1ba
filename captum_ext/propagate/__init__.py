"""Pixel graphs and Markov-reward-process solvers as plain tensor functions (used by IProp).

Nothing here depends on Captum: build an operator from a guide image, then solve.

Examples::

    >>> import torch
    >>> from captum_ext.propagate import StencilOperator, solve_mrp
    >>> op = StencilOperator.from_guide(torch.rand(2, 3, 16, 16), radius=1, sigma_c=0.1)
    >>> V, info = solve_mrp(op, torch.randn(2, 3, 16, 16), gamma=0.9, solver="cg")
    >>> V.shape, info.converged
    (torch.Size([2, 3, 16, 16]), True)
"""

from captum_ext.propagate.graph import (
    COLOR_SPACES,
    color_features,
    leakage_weight,
    min_max_scale,
    stencil_affinity,
    window_offsets,
)
from captum_ext.propagate.multigrid import MultigridPreconditioner
from captum_ext.propagate.operators import CSROperator, GraphOperator, StencilOperator
from captum_ext.propagate.solvers import (
    PRECONDITIONERS,
    SOLVERS,
    SolveInfo,
    conjugate_gradient,
    solve_mrp,
    value_iteration,
)

__all__ = [
    "COLOR_SPACES",
    "PRECONDITIONERS",
    "SOLVERS",
    "CSROperator",
    "GraphOperator",
    "MultigridPreconditioner",
    "SolveInfo",
    "StencilOperator",
    "color_features",
    "conjugate_gradient",
    "leakage_weight",
    "min_max_scale",
    "solve_mrp",
    "stencil_affinity",
    "value_iteration",
    "window_offsets",
]
