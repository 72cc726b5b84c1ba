"""The options of one ``evaluate`` run (:class:`EvalConfig`) and per-method options.

Per-method options come from a TOML file (``--config eval.toml``: one table per method name,
method-name prefix or method group) and from ``--option NAME.key=value`` (the value read as a
TOML value: ``0.9``, ``true``, ``"cg"``, ``[1, 2]``; anything else is a string). A selector
``NAME`` applies to the method called ``NAME``, to every method called ``NAME(...)``
(``IProp`` -> ``IProp(Saliency)``, ``IProp(IntegratedGradients)``) and to the methods of the
group ``NAME`` (case-insensitive). Later sources win: the file, then ``--option`` in order.

Example ``eval.toml``::

    [IProp]
    gamma = 0.9
    radius = 2
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["EvalConfig", "load_options_file", "merge_options", "parse_option"]

#: Methods run when none are named: cheap, and a gradient, a path and a propagated map.
DEFAULT_METHODS = ("Saliency", "IntegratedGradients", "IProp(Saliency)")


@dataclass
class EvalConfig:
    """Everything one ``captum-ext evaluate`` run needs (the CLI fills it, Python may too).

    Args:
        data (str): image folder (ImageFolder layout, or flat with ``labels``).
        model (str): ``torchvision:NAME``, ``package.module:factory`` or a TorchScript file.
        out (str): output folder. Default ``"evaluate_out"``.
        labels, masks, boxes (str, optional): see :mod:`captum_ext.evaluate.data`.
        resize, crop (int, optional): preprocessing.
        mean, std (str, optional): normalisation (``"imagenet"`` or comma-separated numbers).
        weights (str, optional): state dict file.
        trust_pickle (bool): allow a whole pickled model file. Default False.
        num_classes (int, optional): passed to the model builder.
        methods (list of str, optional): registered method names; default :data:`DEFAULT_METHODS`.
        metrics (list of str, optional): metric columns; default the default ones.
        options (dict): per-method options ``{selector: {key: value}}``.
        target (str): ``"label"`` (default) or ``"predicted"``.
        batch_size (int): images per step (rows are written at least once per step). Default 16.
        max_examples_per_batch (int): perturbed images per forward in the metrics. Default 256.
        inpainter (str or float, optional): fill of removed pixels in the curves (the metric's
            default when None).
        abs (bool): rank pixels by ``|attribution|``. Default True.
        device (str): ``"cpu"``, ``"cuda"``, ``"cuda:1"``... Default ``"cpu"``.
        seed (int): seed of every per-image draw (``derive_seed(seed, image_index)``). Default 0.
        max_images (int, optional): evaluate only the first ``max_images`` images.
        grid_images (int): images kept for the map grid. Default 4.
        reference (str, optional): method the others are compared to in the summary.
        resume (bool): skip images whose rows are written. Default False.
        progress (bool): show a progress bar. Default True.
        batch_methods (bool): explain and score a batch of images in one call for the methods
            that allow it (``runner.BATCH_INVARIANT_METHODS``): faster on a GPU, and on a CPU
            only with a small ``max_examples_per_batch`` (e.g. 32; large CPU forwards are
            memory-bound, docs/evaluation.md); their values then depend on the batching by
            float rounding. Default False: every image in a call of its own, rows
            bit-identical whatever the batch size, order or sharding.
    """

    data: str = ""
    model: str = ""
    out: str = "evaluate_out"
    labels: Optional[str] = None
    masks: Optional[str] = None
    boxes: Optional[str] = None
    resize: Optional[int] = None
    crop: Optional[int] = None
    mean: Optional[str] = None
    std: Optional[str] = None
    weights: Optional[str] = None
    trust_pickle: bool = False
    num_classes: Optional[int] = None
    methods: Optional[List[str]] = None
    metrics: Optional[List[str]] = None
    options: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    target: str = "label"
    batch_size: int = 16
    max_examples_per_batch: int = 256
    inpainter: Optional[Any] = None
    abs: bool = True
    device: str = "cpu"
    seed: int = 0
    max_images: Optional[int] = None
    grid_images: int = 4
    reference: Optional[str] = None
    resume: bool = False
    progress: bool = True
    batch_methods: bool = False


def _toml():
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    import tomli  # type: ignore[import-not-found]

    return tomli


def load_options_file(path: "str | Path") -> Dict[str, Dict[str, Any]]:
    """Per-method options from a TOML file: ``{selector: {key: value}}``.

    Raises:
        ValueError: naming ``--config`` for a missing or malformed file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--config: no such file: {path}")
    toml = _toml()
    try:
        with open(path, "rb") as handle:
            table = toml.load(handle)
    except toml.TOMLDecodeError as error:
        raise ValueError(f"--config: {path}: {error}") from None
    out: Dict[str, Dict[str, Any]] = {}
    for selector, options in table.items():
        if not isinstance(options, dict):
            raise ValueError(f"--config: {path}: {selector!r} must be a table [{selector}] of method options")
        out[selector] = dict(options)
    return out


def parse_option(text: str) -> Tuple[str, str, Any]:
    """``"IProp.gamma=0.9"`` -> ``("IProp", "gamma", 0.9)``.

    Examples::

        >>> parse_option("IProp.gamma=0.9")
        ('IProp', 'gamma', 0.9)
        >>> parse_option("IProp(Saliency).solver=cg")
        ('IProp(Saliency)', 'solver', 'cg')
    """
    name, eq, raw = text.partition("=")
    selector, dot, key = name.strip().rpartition(".")
    if not eq or not dot or not selector or not key.isidentifier():
        raise ValueError(f"--option: expected METHOD.key=value, got {text!r}")
    try:
        value = _toml().loads(f"v = {raw.strip()}")["v"]
    except Exception:
        value = raw.strip()
    return selector, key, value


def merge_options(
    file_options: Optional[Dict[str, Dict[str, Any]]], cli_options: Sequence[str]
) -> Dict[str, Dict[str, Any]]:
    """File options, then each ``--option`` in order (later wins)."""
    merged = {k: dict(v) for k, v in (file_options or {}).items()}
    for text in cli_options:
        selector, key, value = parse_option(text)
        merged.setdefault(selector, {})[key] = value
    return merged


def selector_matches(selector: str, name: str, group: str) -> bool:
    """Whether an option selector applies to the method ``name`` of ``group``.

    Examples::

        >>> selector_matches("IProp", "IProp(Saliency)", "iprop"), selector_matches("IProp", "Saliency", "captum")
        (True, False)
    """
    return selector == name or name.startswith(selector + "(") or selector.lower() == group.lower()
