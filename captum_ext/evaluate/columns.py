"""The metric columns of ``captum-ext evaluate``.

A :class:`Column` computes one or more per-image values (and optionally per-image curves) for a
batch of images explained by one method. Columns:

======================  ==========================================================  =========
name                    values                                                      default
======================  ==========================================================  =========
``deletion``            ``deletion`` AUC (lower is better) and its curve             yes
``insertion``           ``insertion`` AUC (higher is better) and its curve           yes
``road``                ``road_morf`` (lower better), ``road_lerf`` (higher better)  yes, when
                        and ``road`` = (LeRF - MoRF) / 2 (higher better), ROAD's    available
                        noisy linear imputation (Rong et al. 2022)
``morf`` / ``lerf``     MoRF / LeRF pixel perturbation (mean over 1..10 %)           no
``localization``        pointing game, relevance mass, relevance rank, ROC AUC,      with masks
                        stamp distance against the ground-truth masks
``infidelity``          Captum's ``infidelity`` (Gaussian perturbations, 10)         no
``sensitivity_max``     Captum's ``sensitivity_max`` (radius 0.02, 10 samples)       no
======================  ==========================================================  =========

Every random draw of a column is seeded per image (``ColumnContext.seeds``), so a value does
not depend on the batch it was computed in. The deletion / insertion / ROAD functions live in
:mod:`captum_ext.metrics`; :func:`_perturbation_kwargs` is the one place that maps this module's
settings onto their keyword names.
"""

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from captum_ext.metrics import localisation
from captum_ext.metrics import perturbation as _perturbation

#: Fractions of the pixels removed / inserted at each step of the curves: finer at the start,
#: so methods separate on small objects (the metrics module's schedule).
DEFAULT_FRACTIONS: Tuple[float, ...] = tuple(_perturbation.SMALL_OBJECT_FRACTIONS)


def fractions_for(height: int, width: int) -> Tuple[float, ...]:
    """:data:`DEFAULT_FRACTIONS` without the steps that give the same pixel count on a small image.

    The curves count ``floor(f * H * W + 0.5)`` pixels per fraction; on small images the first
    fractions round to the same count, and only the first of each count is kept.

    Examples::

        >>> fractions_for(224, 224) == DEFAULT_FRACTIONS
        True
        >>> fractions_for(8, 8)[:4]
        (0.0, 0.01, 0.05, 0.1)
    """
    pixels = height * width
    kept: List[float] = []
    seen = set()
    for fraction in DEFAULT_FRACTIONS:
        count = math.floor(fraction * pixels + 0.5)
        if count not in seen:
            seen.add(count)
            kept.append(fraction)
    return tuple(kept)


@dataclass
class ColumnContext:
    """What a column sees for a batch of images explained by one method.

    Args:
        model (nn.Module): the classifier (taking [0, 1] images).
        inputs (Tensor): images (B, C, H, W).
        target (Tensor): class per image (B,).
        attributions (Tensor): the method's maps (B, C, H, W).
        masks (Tensor, optional): ground-truth masks (B, 1, H, W).
        explain (callable): ``explain(inputs, target)`` of the method (for sensitivity).
        seeds (list of int): one seed per image, ``derive_seed(seed, image_index)``.
        options (dict): ``inpainter``, ``max_examples_per_batch``, ``abs``.
    """

    model: nn.Module
    inputs: Tensor
    target: Tensor
    attributions: Tensor
    masks: Optional[Tensor]
    explain: Callable[[Tensor, Tensor], Tensor]
    seeds: List[int]
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Column:
    """A metric of ``evaluate``: ``fn(context) -> {value name: (B,) or (B, S) tensor}``.

    Args:
        name (str): the name on the command line (``--metrics``).
        fn (callable): the values; (B, S) tensors are curves (stored as text in the rows).
        values (dict): value name -> lower is better, for every (B,) value the column returns.
        default (bool): computed when ``--metrics`` is not given.
        needs_masks (bool): computed only when ground truth exists.
        curves (tuple of str): names of the (B, S) values (x-coordinates: :func:`curve_fractions`).
    """

    name: str
    fn: Callable[[ColumnContext], Dict[str, Tensor]]
    values: Dict[str, bool]
    default: bool = True
    needs_masks: bool = False
    curves: Tuple[str, ...] = ()


def _perturbation_kwargs(fn: Callable, context: ColumnContext, **extra: Any) -> Dict[str, Any]:
    """Keyword arguments of a perturbation metric, spelled the way ``fn`` spells them.

    ``inpainter`` / ``max_examples_per_batch`` (the conventions) or the older
    ``filler`` / ``batch_size``; the fraction schedule where ``fn`` takes ``fractions``.
    """
    params = inspect.signature(fn).parameters
    options = context.options
    kwargs: Dict[str, Any] = {}
    inpainter = options.get("inpainter")
    if inpainter is not None:
        kwargs["inpainter" if "inpainter" in params else "filler"] = inpainter
    per_batch = int(options.get("max_examples_per_batch", 256))
    kwargs["max_examples_per_batch" if "max_examples_per_batch" in params else "batch_size"] = per_batch
    if "abs" in params:
        kwargs["abs"] = bool(options.get("abs", True))
    for key, value in extra.items():
        if key in params:
            kwargs[key] = value
    return kwargs


def curve_fractions(height: int, width: int) -> Tuple[float, ...]:
    """x-coordinates of the deletion / insertion curves for images of ``height x width``.

    Read from the metric itself (a deletion curve of a constant model on one blank image), so
    they are exactly the ``fractions`` of the curves in the rows.

    Examples::

        >>> curve_fractions(224, 224)[0], curve_fractions(224, 224)[-1]
        (0.0, 1.0)
    """
    fn = _perturbation.deletion_curve
    images = torch.zeros(1, 1, height, width)
    extra: Dict[str, Any] = {"fractions": fractions_for(height, width)}
    context = ColumnContext(nn.Identity(), images, torch.zeros(1, dtype=torch.long), images, None,
                            lambda x, t: x, [0], {"max_examples_per_batch": 4096, "inpainter": 0.0})
    curve = fn(lambda x: x.new_zeros(x.shape[0], 2), images, images, 0, **_perturbation_kwargs(fn, context, **extra))
    return tuple(float(f) for f in curve.fractions.tolist())


def _curve(kind: str, context: ColumnContext) -> Dict[str, Tensor]:
    fn = getattr(_perturbation, f"{kind}_curve")
    extra: Dict[str, Any] = {"fractions": fractions_for(context.inputs.shape[-2], context.inputs.shape[-1])}
    curve = fn(context.model, context.inputs, context.attributions, context.target,
               **_perturbation_kwargs(fn, context, **extra))
    return {kind: curve.auc.to(torch.float64), f"{kind}_curve": curve.scores.to(torch.float64)}


def _road(context: ColumnContext) -> Dict[str, Tensor]:
    """ROAD MoRF / LeRF, all images of the context in one call per order.

    The noise of image ``k`` at percentage ``j`` is drawn from ``derive_seed(0, seeds[k], j)``
    (``road(seed=0, image_indices=seeds)``): a function of the image's own seed only, and the
    imputation of an image sees only its own rows, so a value does not depend on the batch.
    """
    from captum_ext.metrics.road import road

    out: Dict[str, Tensor] = {}
    for order in ("morf", "lerf"):
        kwargs = _perturbation_kwargs(road, context, order=order, seed=0, image_indices=list(context.seeds))
        kwargs.pop("abs", None)
        kwargs.pop("inpainter", None)  # ROAD's own noisy linear imputation
        result = road(context.model, context.inputs, context.attributions, context.target, **kwargs)
        out[f"road_{order}"] = result.mean.reshape(-1).to(torch.float64)
    out["road"] = (out["road_lerf"] - out["road_morf"]) / 2  # = metrics.road.road_combined
    return out


def _pixel_perturbation(order: str, context: ColumnContext) -> Dict[str, Tensor]:
    fn = _perturbation.pixel_perturbation
    values = fn(context.model, context.inputs, context.attributions, context.target,
                **_perturbation_kwargs(fn, context, order=order))
    return {order: values.mean(dim=1)}


def _localization(context: ColumnContext) -> Dict[str, Tensor]:
    assert context.masks is not None
    abs_ = bool(context.options.get("abs", True))
    fns = {
        "pointing_game": localisation.pointing_game,
        "relevance_mass": localisation.relevance_mass_accuracy,
        "relevance_rank": localisation.relevance_rank_accuracy,
        "roc_auc": localisation.roc_auc,
        "stamp_distance": localisation.stamp_distance,
    }
    return {name: fn(context.attributions, context.masks, abs=abs_).to(torch.float64) for name, fn in fns.items()}


def _seeded_per_image(context: ColumnContext, fn: Callable[[slice, Any], Tensor]) -> Tensor:
    """``fn`` on each image with the global torch RNG seeded by that image's seed."""
    values = []
    for i, seed in enumerate(context.seeds):
        torch.manual_seed(seed)
        values.append(fn(slice(i, i + 1), context.target[i:i + 1]).detach().reshape(1).to(torch.float64).cpu())
    return torch.cat(values).to(context.inputs.device)


def _infidelity(context: ColumnContext) -> Dict[str, Tensor]:
    from captum.metrics import infidelity

    def perturb(inputs: Tensor) -> Tuple[Tensor, Tensor]:
        noise = 0.003 * torch.randn_like(inputs)
        return noise, inputs - noise

    def one(rows: slice, target: Tensor) -> Tensor:
        return infidelity(context.model, perturb, context.inputs[rows], context.attributions[rows],
                          target=target, n_perturb_samples=10,
                          max_examples_per_batch=int(context.options.get("max_examples_per_batch", 256)))

    return {"infidelity": _seeded_per_image(context, one)}


def _sensitivity(context: ColumnContext) -> Dict[str, Tensor]:
    from captum.metrics import sensitivity_max

    def explanation(inputs: Any, target: Tensor) -> Any:
        # Captum passes a tuple of inputs on its first call and expects the same structure back.
        x = inputs[0] if isinstance(inputs, tuple) else inputs
        out = context.explain(x, target)
        out = (out[0] if isinstance(out, tuple) else out).detach()
        return (out,) if isinstance(inputs, tuple) else out

    def one(rows: slice, target: Tensor) -> Tensor:
        return sensitivity_max(explanation, context.inputs[rows], perturb_radius=0.02, n_perturb_samples=10,
                               max_examples_per_batch=int(context.options.get("max_examples_per_batch", 256)),
                               target=target)

    return {"sensitivity_max": _seeded_per_image(context, one)}


def road_available() -> bool:
    """Whether :mod:`captum_ext.metrics.road` (the ROAD metric) can be imported."""
    try:
        from captum_ext.metrics.road import road  # noqa: F401
    except ImportError:
        return False
    return True


def available_columns() -> Dict[str, Column]:
    """Every metric column of ``evaluate``, by name (``road`` only when ROAD is importable)."""
    columns = [
        Column("deletion", lambda c: _curve("deletion", c), {"deletion": True}, curves=("deletion_curve",)),
        Column("insertion", lambda c: _curve("insertion", c), {"insertion": False}, curves=("insertion_curve",)),
    ]
    if road_available():
        columns.append(Column("road", _road, {"road_morf": True, "road_lerf": False, "road": False}))
    columns += [
        Column("morf", lambda c: _pixel_perturbation("morf", c), {"morf": False}, default=False),
        Column("lerf", lambda c: _pixel_perturbation("lerf", c), {"lerf": True}, default=False),
        Column("localization", _localization,
               {"pointing_game": False, "relevance_mass": False, "relevance_rank": False, "roc_auc": False,
                "stamp_distance": True}, needs_masks=True),
        Column("infidelity", _infidelity, {"infidelity": True}, default=False),
        Column("sensitivity_max", _sensitivity, {"sensitivity_max": True}, default=False),
    ]
    return {c.name: c for c in columns}


def select_columns(names: Optional[Sequence[str]], has_masks: bool) -> List[Column]:
    """The columns named (default: the default ones; mask columns only with ground truth).

    Raises:
        ValueError: naming ``--metrics`` for an unknown name, or a mask column without masks.
    """
    columns = available_columns()
    if names is None:
        return [c for c in columns.values() if c.default and (has_masks or not c.needs_masks)]
    unknown = [n for n in names if n not in columns]
    if unknown:
        hint = " (ROAD needs captum_ext.metrics.road)" if "road" in unknown else ""
        raise ValueError(f"--metrics: unknown metric(s) {unknown}{hint}; available: {sorted(columns)}")
    chosen = [columns[n] for n in dict.fromkeys(names)]
    if not has_masks and any(c.needs_masks for c in chosen):
        raise ValueError("--metrics: localization needs ground truth: give --masks DIR or --boxes file.csv")
    return chosen
