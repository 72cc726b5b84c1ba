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
from captum._utils.models.linear_model import (  # noqa: F401  (Lime surrogate models)
    SkLearnLinearRegression,
    SkLearnRidge,
)
from captum._utils.typing import TargetType, TensorOrTupleOfTensorsGeneric  # noqa: F401

__all__ = [
    "_expand_additional_forward_args",
    "_expand_target",
    "_format_additional_forward_args",
    "_format_output",
    "_format_tensor_into_tuples",
    "_is_tuple",
    "_run_forward",
    "_select_targets",
    "SkLearnLinearRegression",
    "SkLearnRidge",
    "TargetType",
    "TensorOrTupleOfTensorsGeneric",
]
