"""NeFLAG rows of the stamp benchmark: the defaults (descent, vector) and the other variants.

All rows spend 40 gradients per image or fewer (n = 20 directions: antithetic 2n, flip about
1.5n, descent with m = 2 steps 2n) and use the paper's eps = 0.1. Every call uses the seed
``SEED``: NeFLAG derives each direction from the seed alone (common random numbers), so an
image's map is the same whatever batch it is explained in, and a benchmark run is reproducible
for every ``batch_size``.
"""

from typing import Any, Callable

from torch import Tensor, nn

from captum_ext.attr import NeFLAG
from captum_ext.benchmark.registry import MethodSpec, register_method

N_DIRECTIONS = 20
EPS = 0.1
INTERNAL_BATCH_SIZE = 64
SEED = 0


def neflag_builder(
    sampling: str, aggregation: str = "decomposition", n: int = N_DIRECTIONS, eps: float = EPS,
    **options: Any,
) -> Callable[[nn.Module], Callable[[Tensor, Tensor], Tensor]]:
    """``build(model)`` for a NeFLAG row; ``options`` go to :meth:`NeFLAG.attribute`."""

    def build(model: nn.Module) -> Callable[[Tensor, Tensor], Tensor]:
        method = NeFLAG(model)
        def explain(inputs: Tensor, target: Tensor) -> Tensor:
            return method.attribute(
                inputs, target=target, n=n, eps=eps, sampling=sampling,
                aggregation=aggregation, generator=SEED,
                internal_batch_size=INTERNAL_BATCH_SIZE, **options,
            )

        return explain

    return build


_ROWS = [
    ("NeFLAG(descent,vector)", "descent", "vector", True,
     "NeFLAG defaults: n=20 starts, one projected step each (40 gradients), flux vectors"),
    ("NeFLAG(descent)", "descent", "decomposition", True,
     "NeFLAG, n=20 descent starts (40 gradients), decomposition (best with signed maps)"),
    ("NeFLAG(antithetic)", "antithetic", "decomposition", True,
     "NeFLAG, n=20 antithetic pairs (40 gradients), decomposition"),
    ("NeFLAG(flip)", "flip", "decomposition", False,
     "NeFLAG, n=20, positive-flux points flipped to their antipodes (~30 gradients)"),
    ("NeFLAG(antithetic,vector)", "antithetic", "vector", False,
     "NeFLAG, n=20 antithetic pairs, flux vectors (chance level on the stamp benchmark)"),
]

for _name, _sampling, _aggregation, _default, _description in _ROWS:
    register_method(MethodSpec(
        name=_name, build=neflag_builder(_sampling, _aggregation), description=_description,
        default=_default, group="neflag",
    ))
