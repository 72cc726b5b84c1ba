"""The one place that imports private Captum names.

Captum's underscore helpers move between releases; every module of captum_ext imports them from
here, so a Captum upgrade touches one file. Public names (``captum.attr``, ``captum.log``,
``captum.metrics``) are imported directly where used.
"""

from captum._utils.common import (  # noqa: F401
    _expand_additional_forward_args,
    _expand_target,
    _format_additional_forward_args,
    _format_output,
    _format_tensor_into_tuples,
    _is_tuple,
    _run_forward,
    _select_targets,
)
from captum._utils.gradient import (  # noqa: F401
    apply_gradient_requirements,
    compute_gradients,
    undo_gradient_requirements,
)
from captum._utils.typing import TargetType, TensorOrTupleOfTensorsGeneric  # noqa: F401
from captum.attr._utils.batching import _batch_attribution  # noqa: F401
from captum.attr._utils.common import _format_input_baseline  # noqa: F401

__all__ = [
    "_batch_attribution",
    "_expand_additional_forward_args",
    "_expand_target",
    "_format_additional_forward_args",
    "_format_input_baseline",
    "_format_output",
    "_format_tensor_into_tuples",
    "_is_tuple",
    "_run_forward",
    "_select_targets",
    "apply_gradient_requirements",
    "compute_gradients",
    "undo_gradient_requirements",
    "TargetType",
    "TensorOrTupleOfTensorsGeneric",
]

# --- inpainting (issue 6): Lime surrogate models (used by the benchmark and tests) ---
from captum._utils.models.linear_model import (  # noqa: E402,F401
    SkLearnLinearRegression,
    SkLearnRidge,
)

__all__ += ["SkLearnLinearRegression", "SkLearnRidge"]
