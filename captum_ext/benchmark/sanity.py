"""``captum-ext sanity``: the cascading randomisation check for every registered method.

Runs :func:`captum_ext.metrics.cascading_randomization` on the stamp classifier and held-out
stamped images, for the default methods of the registry (or the named ones), and writes
``sanity.png`` (similarity curves), ``sanity_maps.png`` (maps per stage), ``sanity.csv`` and
``sanity.md``. Usable from Python::

    from captum_ext.benchmark.sanity import SanityConfig, run_sanity
    result = run_sanity(SanityConfig(n_images=8, methods=["Saliency"]))
    print(result.markdown())
"""

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, cast

from torch import nn

from captum_ext._checks import check_int_at_least, check_number, check_positive
from captum_ext._utils import preserved_model_state
from captum_ext.benchmark.registry import available_methods, select
from captum_ext.benchmark.runner import held_out_images
from captum_ext.data.classifier import ARCHITECTURES, check_device, load_stamp_classifier
from captum_ext.metrics.sanity import MEASURES, SanityResult, _check_layers, cascading_randomization


@dataclass
class SanityConfig:
    """Options of one sanity run.

    Args:
        n_images (int): held-out stamped images (correctly classified). Default 16.
        methods (list of str, optional): registered method names; default: every default method.
        mode (str): ``"cascading"`` or ``"independent"``. Default ``"cascading"``.
        std (float): std of the N(0, std^2) re-draw. Default 0.1.
        layers (list of str, optional): module names in randomisation order; default: every
            parameter-owning module, top first.
        threshold (float): a method passes when its mean Spearman-abs is below this. Default 0.5.
        device (str): "cpu" or "cuda". Default "cpu".
        seed (int): seed of the held-out images and of the re-draw. Default 0.
        batch_size (int): images per attribution call. Default 16.
        progress (bool): progress output. Default True.
        retrain (bool): retrain the classifier, ignoring the cache. Default False.
        only_correct (bool): keep only images the model classifies correctly. Default True.
        arch (str): the cached classifier used when no model is passed: ``"stampnet"``
            (default) or ``"resnet18"``.
    """

    n_images: int = 16
    methods: Optional[List[str]] = None
    mode: str = "cascading"
    std: float = 0.1
    layers: Optional[List[str]] = None
    threshold: float = 0.5
    device: str = "cpu"
    seed: int = 0
    batch_size: int = 16
    progress: bool = True
    retrain: bool = False
    only_correct: bool = True
    arch: str = "stampnet"


def _check_config(config: SanityConfig) -> None:
    check_int_at_least("n_images", config.n_images, 1)
    check_int_at_least("batch_size", config.batch_size, 1)
    check_positive("std", config.std)
    check_number("threshold", config.threshold, low=0.0, high=1.0, low_open=True)
    if config.mode not in ("cascading", "independent"):
        raise ValueError(f"`mode` must be 'cascading' or 'independent', got {config.mode!r}")
    if config.arch not in ARCHITECTURES:
        raise ValueError(f"`arch` must be one of {ARCHITECTURES}, got {config.arch!r}")
    check_device(config.device)


def run_sanity(config: SanityConfig, model: Optional[nn.Module] = None) -> SanityResult:
    """Run the randomisation check for the selected registered methods on the stamp classifier.

    Args:
        config (SanityConfig): the run's options.
        model (nn.Module, optional): a classifier instead of the cached stamp classifier.

    Every option (and the layer names, against the model) is checked before any image is built.
    A model passed in is left as it was: training flags, ``requires_grad``, hooks, and the
    global RNG state.

    Returns:
        SanityResult: similarities per method, measure and stage.

    Raises:
        ValueError: for a bad option, naming it.
    """
    _check_config(config)
    specs = select(cast(Any, available_methods()), config.methods, "method")
    if model is None:
        model = load_stamp_classifier(retrain=config.retrain, progress=config.progress, device=config.device,
                                      arch=config.arch)
    _check_layers(model, config.layers)
    with preserved_model_state(model, rng=True):
        model.eval()
        images, labels, _ = held_out_images(model, config.n_images, config.seed, config.device,
                                            only_correct=config.only_correct)
        return cascading_randomization(
            model, {spec.name: spec.build for spec in specs}, images, labels, layers=config.layers,
            mode=config.mode, std=config.std, seed=config.seed, batch_size=config.batch_size,
            keep_maps=1, progress=config.progress,
        )


def write_sanity_outputs(result: SanityResult, out_dir: str, threshold: float = 0.5) -> Dict[str, Path]:
    """Write ``sanity.csv`` (mean per method, measure and stage), ``sanity.md`` and two PNGs."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "sanity.csv", "markdown": out / "sanity.md", "png": out / "sanity.png",
             "maps": out / "sanity_maps.png"}
    with open(paths["csv"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", "measure"] + result.stages)
        for method in result.similarities:
            for measure in MEASURES:
                writer.writerow([method, measure] + [f"{v:.6f}" for v in result.curve(method, measure).tolist()])
    paths["markdown"].write_text(result.markdown(threshold) + "\n")
    result.plot(str(paths["png"]))
    result.plot_maps(str(paths["maps"]))
    return paths
