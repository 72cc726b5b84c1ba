"""Registries of attribution methods and per-image metrics for the stamp benchmark.

Later work adds rows and columns to the benchmark without touching the runner: a module in
``captum_ext/benchmark/methods/`` calls :func:`register_method` (or :func:`register_metric`) at
import time, and every module in that package is imported when the registry is first read.

A method is built once per model: ``build(model)`` returns ``explain(inputs, target)``, which
returns attributions of the inputs' shape (B, C, H, W).

A metric is ``fn(context) -> Tensor`` of shape (B,) (NaN where undefined), where ``context`` is a
:class:`MetricContext` holding the model, the images, targets, attributions and masks.
"""

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional

from torch import Tensor, nn

Explainer = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class MethodSpec:
    """A benchmark row: a name, a builder and a short description.

    Args:
        name (str): the name shown in the table and used on the command line.
        build (Callable[[nn.Module], Explainer]): returns ``explain(inputs, target)``.
        description (str): one line for ``captum-ext benchmark --list``.
        default (bool): whether the method runs when no ``--methods`` are given.
        group (str): the family (e.g. ``"captum"``, ``"neflag"``), for filtering.
    """

    name: str
    build: Callable[[nn.Module], Explainer]
    description: str = ""
    default: bool = True
    group: str = "captum"


@dataclass
class MetricContext:
    """Everything a benchmark metric may need for one batch of images.

    Args:
        model (nn.Module): the classifier, in ``eval()`` mode.
        inputs (Tensor): images (B, C, H, W).
        target (Tensor): target class per image (B,).
        attributions (Tensor): the method's map (B, C, H, W).
        masks (Tensor): ground-truth footprints (B, 1, H, W), 0/1 floats.
        options (dict): run options (e.g. the filler chosen on the command line).
    """

    model: nn.Module
    inputs: Tensor
    target: Tensor
    attributions: Tensor
    masks: Tensor
    options: Dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSpec:
    """A benchmark column: ``fn(context) -> (B,)`` values, mean reported.

    Args:
        name (str): column name.
        fn (Callable[[MetricContext], Tensor]): per-image values, NaN where undefined.
        lower_is_better (bool): how to read the column.
        default (bool): computed when no ``--metrics`` are given.
        interval (bool): also report a 95% interval of the mean.
    """

    name: str
    fn: Callable[[MetricContext], Tensor]
    lower_is_better: bool = False
    default: bool = True
    interval: bool = False


_METHODS: Dict[str, MethodSpec] = {}
_METRICS: Dict[str, MetricSpec] = {}
_LOADED = False


def register_method(spec: MethodSpec) -> MethodSpec:
    """Add a method to the benchmark; a second registration under one name is an error."""
    if spec.name in _METHODS and _METHODS[spec.name] is not spec:
        raise ValueError(f"a benchmark method named {spec.name!r} is already registered")
    _METHODS[spec.name] = spec
    return spec


def register_metric(spec: MetricSpec) -> MetricSpec:
    """Add a metric column to the benchmark; a second registration under one name is an error."""
    if spec.name in _METRICS and _METRICS[spec.name] is not spec:
        raise ValueError(f"a benchmark metric named {spec.name!r} is already registered")
    _METRICS[spec.name] = spec
    return spec


def _load_plugins() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    from captum_ext.benchmark import methods

    for info in sorted(pkgutil.iter_modules(methods.__path__), key=lambda i: i.name):
        importlib.import_module(f"{methods.__name__}.{info.name}")


def available_methods() -> Dict[str, MethodSpec]:
    """All registered methods, in registration order."""
    _load_plugins()
    return dict(_METHODS)


def available_metrics() -> Dict[str, MetricSpec]:
    """All registered metrics, in registration order."""
    _load_plugins()
    return dict(_METRICS)


def select(registry: Mapping[str, Any], names: Optional[List[str]], kind: str) -> List[Any]:
    """Pick specs by name (defaults when ``names`` is None); unknown names are an error."""
    if names is None:
        return [spec for spec in registry.values() if spec.default]
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise ValueError(f"unknown {kind}(s) {unknown}; available: {sorted(registry)}")
    return [registry[n] for n in names]
