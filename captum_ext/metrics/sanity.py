"""Sanity checks for saliency maps: cascading (or independent) model-parameter randomization.

Adebayo et al., "Sanity Checks for Saliency Maps" (NeurIPS 2018). Known: the layers of a trained
network are re-initialized from the top (logits) down, cumulatively; after each stage every
method's map is recomputed and compared with its map on the trained network by the Spearman
rank correlation (with and without absolute values), SSIM and the Pearson correlation of HOG
features (:mod:`captum_ext.metrics.similarity`). A method whose maps stay similar while the
network is destroyed does not explain the network: it fails. The pathway paper re-draws every
weight and bias from N(0, 0.1) and reports the mean Spearman-abs over the stages.

Chosen here (configurable):

- a stage is one module that owns parameters (``layers`` may name blocks instead); the
  default order is the reverse of ``model.named_modules()``, i.e. top layer first for models
  that register their layers in forward order;
- the default target is the trained model's predicted class;
- a method passes when its mean Spearman-abs over the randomized stages is below 0.5.

The user's model is never touched (all the work happens on a deep copy) and the global RNG
state is restored. Plots: :func:`captum_ext.visualization.plot_sanity_curves` and
:func:`~captum_ext.visualization.plot_sanity_maps` (also as :meth:`SanityResult.plot` and
:meth:`SanityResult.plot_maps`).
"""

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch
from captum.log import log_usage
from torch import Tensor, nn

from captum_ext._checks import check_choice, check_finite, check_image_batch, check_int_at_least, check_positive
from captum_ext._compat import TargetType
from captum_ext._utils import preserved_model_state, warn_external
from captum_ext.metrics._common import target_vector
from captum_ext.metrics._methods import (  # noqa: F401  (resolve_methods: re-exported)
    Explainer,
    MethodBuilder,
    explain_batches,
    resolve_methods,
)
from captum_ext.metrics.similarity import (  # noqa: F401  (re-exported for old imports)
    MEASURES,
    hog_features,
    map_similarities,
    normalise_abs_map,
    normalize_abs_map,
    pearson,
    spearman,
    ssim,
)

__all__ = [
    "MEASURES",
    "SanityResult",
    "cascading_randomisation",
    "cascading_randomization",
    "randomisation_layers",
    "randomization_layers",
    "resolve_methods",
]


def randomization_layers(model: nn.Module) -> List[str]:
    """The default stages: every module owning parameters, from the last registered to the first.

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(),
        ...                           torch.nn.Linear(2, 2))
        >>> randomization_layers(net)
        ['3', '0']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be an nn.Module, got {type(model).__name__}")
    names = [name for name, module in model.named_modules() if next(module.parameters(recurse=False), None) is not None]
    return names[::-1]


def randomisation_layers(model: nn.Module) -> List[str]:
    """Deprecated British spelling of :func:`randomization_layers` (one release).

    Examples::

        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     randomisation_layers(torch.nn.Sequential(torch.nn.Linear(2, 2)))
        ['0']
    """
    warn_external("`randomisation_layers` is deprecated; use `randomization_layers`", DeprecationWarning)
    return randomization_layers(model)


def _check_layers(model: nn.Module, layers: Optional[Sequence[str]]) -> List[str]:
    if layers is None:
        names = randomization_layers(model)
    else:
        if isinstance(layers, str) or not all(isinstance(n, str) for n in layers):
            raise TypeError("`layers` must be a sequence of module names (str)")
        names = list(layers)
    modules = dict(model.named_modules())
    for name in names:
        if name not in modules:
            raise ValueError(f"`layers` names {name!r}, which is not a module of the model")
        if next(modules[name].parameters(), None) is None:
            raise ValueError(f"`layers` names {name!r}, which has no parameters to randomize")
    if not names:
        raise ValueError("the model has no parameters to randomize")
    return names


def _redraw(module: nn.Module, std: float, generator: torch.Generator) -> None:
    with torch.no_grad():
        for param in module.parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float64) * std
            param.copy_(noise.to(device=param.device, dtype=param.dtype))


@dataclass
class SanityResult:
    """Similarities of every method's maps to its maps on the trained model, per stage.

    Attributes:
        stages (list of str): ``"original"``, then the layer randomized at each stage.
        similarities (dict): method -> measure -> (S, B) float64 (S stages, B images).
        mode (str): ``"cascading"`` or ``"independent"``.
        maps (dict): method -> (S, K, H, W) ``|a|`` maps of the first K images (for plotting).

    Examples::

        >>> r = SanityResult(["original", "fc"], {"Saliency": {"ssim": torch.ones(2, 3, dtype=torch.float64)}})
        >>> r.similarities["Saliency"]["ssim"].shape, r.mode
        (torch.Size([2, 3]), 'cascading')
    """

    stages: List[str]
    similarities: Dict[str, Dict[str, Tensor]]
    mode: str = "cascading"
    maps: Dict[str, Tensor] = field(default_factory=dict)

    def curve(self, method: str, measure: str = "spearman_abs") -> Tensor:
        """(S,) mean similarity over the images at each stage (NaNs left out)."""
        return self.similarities[method][measure].nanmean(dim=1)

    def summary(self, measure: str = "spearman_abs") -> Dict[str, float]:
        """Mean similarity over the randomized stages and the images, per method (lower = passes)."""
        return {m: float(values[measure][1:].nanmean()) for m, values in self.similarities.items()}

    def passed(self, threshold: float = 0.5, measure: str = "spearman_abs") -> Dict[str, bool]:
        """Whether each method's :meth:`summary` is below ``threshold`` (NaN counts as failed)."""
        return {m: bool(v < threshold) for m, v in self.summary(measure).items()}

    def markdown(self, threshold: float = 0.5) -> str:
        """A table: per method, the mean over stages and the value at the last stage of each measure."""
        header = ["method"] + [f"{m} mean ↓" for m in MEASURES] + [f"{m} last ↓" for m in MEASURES] + ["passes"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        passed = self.passed(threshold)
        for method in self.similarities:
            means = [self.summary(m)[method] for m in MEASURES]
            lasts = [float(self.curve(method, m)[-1]) for m in MEASURES]
            cells = [method] + [f"{v:.3f}" for v in means + lasts] + ["yes" if passed[method] else "no"]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def plot(self, path: Optional[str] = None, measures: Sequence[str] = MEASURES) -> Any:
        """:func:`captum_ext.visualization.plot_sanity_curves` of this result."""
        from captum_ext.visualization import plot_sanity_curves

        return plot_sanity_curves(self, path, measures)

    def plot_maps(self, path: Optional[str] = None, image: int = 0) -> Any:
        """:func:`captum_ext.visualization.plot_sanity_maps` of this result."""
        from captum_ext.visualization import plot_sanity_maps

        return plot_sanity_maps(self, path, image)


def _work_copy(model: Union[nn.Module, Callable[[], nn.Module]]) -> nn.Module:
    if isinstance(model, nn.Module):
        return copy.deepcopy(model)
    if callable(model):
        built = model()
        if not isinstance(built, nn.Module):
            raise TypeError(f"the model factory must return an nn.Module, got {type(built).__name__}")
        return copy.deepcopy(built)
    raise TypeError(f"`model` must be an nn.Module or a factory, got {type(model).__name__}")


@torch.no_grad()
def _predicted(model: nn.Module, inputs: Tensor, batch_size: int) -> Tensor:
    return torch.cat([model(inputs[lo:lo + batch_size]).argmax(dim=1) for lo in range(0, inputs.shape[0], batch_size)])


@log_usage()
def cascading_randomization(
    model: Union[nn.Module, Callable[[], nn.Module]],
    methods: Any,
    inputs: Tensor,
    target: TargetType = None,
    layers: Optional[Sequence[str]] = None,
    mode: str = "cascading",
    std: float = 0.1,
    init: Optional[Callable[[nn.Module], None]] = None,
    seed: int = 0,
    batch_size: int = 16,
    keep_maps: int = 1,
    progress: bool = False,
) -> SanityResult:
    """Model-parameter randomization test of one or more attribution methods.

    A deep copy of the model (or a model from the factory, also copied) is randomized layer by
    layer from the top; at each stage every method is rebuilt on the copy and its maps compared
    with its maps on the trained model. The user's model and the global RNG are left as they
    were.

    Args:
        model (nn.Module or callable): the trained model, or a factory returning it.
        methods: a mapping ``name -> method``, a list of methods or one method; a method is a
            Captum ``Attribution`` class, a benchmark ``MethodSpec`` or a callable
            ``build(model) -> explain(inputs, target) -> maps (B, C, H, W)``.
        inputs (Tensor): images (B, C, H, W).
        target (int, list or Tensor, optional): class per image (Captum's rules); default: the
            trained model's predicted class.
        layers (sequence of str, optional): module names in the order they are randomized;
            default :func:`randomization_layers` (every parameter-owning module, top first).
        mode (str): ``"cascading"`` (stage k randomizes the first k layers) or
            ``"independent"`` (stage k randomizes layer k alone). Default ``"cascading"``.
        std (float): standard deviation of the N(0, std^2) re-draw of every weight and bias.
            Default 0.1 (the pathway paper).
        init (callable, optional): ``init(module)`` re-initializes a module in place instead
            (e.g. ``lambda m: m.reset_parameters()``); ``std`` and ``seed`` are then unused.
        seed (int): seed of the re-draw. Default 0.
        batch_size (int): images per method call. Default 16.
        keep_maps (int): keep the normalized maps of this many images for plotting.
        progress (bool): show a progress bar. Default False.

    Returns:
        SanityResult: per method, measure and stage, the similarity of each image's map; a
        batch of 0 images gives (S, 0) similarities without running a method.

    Examples::

        >>> from captum.attr import Saliency
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
        ...                           torch.nn.Flatten(), torch.nn.Linear(4 * 32 * 32, 2))
        >>> result = cascading_randomization(net, [Saliency], torch.rand(2, 3, 32, 32), target=0)
        >>> result.stages, result.similarities["Saliency"]["ssim"].shape
        (['original', '3', '0'], torch.Size([3, 2]))
    """
    check_image_batch("inputs", inputs)
    check_finite("inputs", inputs)
    check_int_at_least("batch_size", batch_size, 1)
    check_int_at_least("keep_maps", keep_maps, 0)
    check_positive("std", std)
    check_choice("mode", mode, ("cascading", "independent"))
    if init is not None and not callable(init):
        raise TypeError(f"`init` must be callable, got {type(init).__name__}")
    builders = resolve_methods(methods)
    work = _work_copy(model)
    names = _check_layers(work, layers)
    stage_names = ["original"] + list(names)
    target_t = target_vector(target, inputs.shape[0], inputs.device)
    if inputs.shape[0] == 0:
        empty = torch.zeros(len(stage_names), 0, dtype=torch.float64)
        return SanityResult(stage_names, {n: {m: empty.clone() for m in MEASURES} for n in builders}, mode, {})
    with preserved_model_state(work, rng=True):
        return _randomize(work, builders, inputs, target_t, names, mode, std, init, seed, batch_size, keep_maps,
                          progress)


def _randomize(
    work: nn.Module, builders: Dict[str, MethodBuilder], inputs: Tensor, target: Optional[Tensor],
    names: List[str], mode: str, std: float, init: Optional[Callable[[nn.Module], None]], seed: int,
    batch_size: int, keep_maps: int, progress: bool,
) -> SanityResult:
    target_t = _predicted(work, inputs, batch_size) if target is None else target
    modules = dict(work.named_modules())
    trained_state = {k: v.detach().clone() for k, v in work.state_dict().items()}
    generator = torch.Generator().manual_seed(int(seed))

    def all_maps() -> Dict[str, Tensor]:
        return {name: explain_batches(build(work), inputs, target_t, batch_size) for name, build in builders.items()}

    reference = all_maps()
    per_stage: List[Dict[str, Dict[str, Tensor]]] = [{n: map_similarities(ref, ref) for n, ref in reference.items()}]
    kept: Dict[str, List[Tensor]] = {n: [] for n in builders}

    def keep(maps: Dict[str, Tensor]) -> None:
        if keep_maps > 0:
            for n in builders:
                kept[n].append(normalize_abs_map(maps[n][:keep_maps]))

    keep(reference)
    stages: Any = names
    if progress:
        from tqdm.auto import tqdm

        stages = tqdm(names, desc="randomizing", unit="layer")
    for name in stages:
        if mode == "independent":
            work.load_state_dict(trained_state)
        if init is not None:
            init(modules[name])
        else:
            _redraw(modules[name], std, generator)
        maps = all_maps()
        per_stage.append({n: map_similarities(reference[n], maps[n]) for n in builders})
        keep(maps)
    similarities = {
        n: {m: torch.stack([stage[n][m] for stage in per_stage]).cpu() for m in MEASURES} for n in builders
    }
    maps_out = {n: torch.stack(v).cpu() for n, v in kept.items()} if keep_maps > 0 else {}
    return SanityResult(["original"] + list(names), similarities, mode, maps_out)


def cascading_randomisation(*args: Any, **kwargs: Any) -> SanityResult:
    """Deprecated British spelling of :func:`cascading_randomization` (one release).

    Examples::

        >>> import warnings
        >>> from captum.attr import Saliency
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     result = cascading_randomisation(net, [Saliency], torch.rand(1, 3, 8, 8), target=0)
        >>> result.stages
        ['original', '1']
    """
    warn_external("`cascading_randomisation` is deprecated; use `cascading_randomization`", DeprecationWarning)
    return cascading_randomization(*args, **kwargs)


