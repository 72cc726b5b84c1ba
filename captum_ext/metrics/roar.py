"""ROAR (RemOve And Retrain) on any image classification data held in tensors.

Hooker et al., "A Benchmark for Interpretability Methods in Deep Neural Networks" (NeurIPS
2019). Known: a model is trained on clean data; every method ranks the pixels of every training
and test image with that model; for each fraction ``t`` the top ``t`` of the pixels are replaced
(by the per-channel mean of the data set in the paper), a new model is trained from scratch on
the modified training set and its accuracy on the modified test set is reported. A method whose
removal hurts accuracy more found more of what the task needs: a sharper drop is better. Random
removal is the control. The pathway paper: CIFAR-10, ResNet-8, t = 10, 30, 50, 70, 90 %, Adam
with lr 1e-3.

Chosen here: every training starts from ``model_factory()`` under the same seed, Adam with a
one-cycle schedule (:func:`train_classifier`); besides real methods, ``"random"`` (a uniform map
per image, seeded by ``derive_seed(seed, split, index)``) and ``"ground_truth"`` (the given
masks) are built-in controls. The inpainter is a parameter: with a constant fill the *shape* of
the removed region stays visible, and a retrained model can read the object from its
silhouette (the leak the ROAD paper describes); an inpainting fill removes that cue.

The stamped-image preset (data, StampNet, the CPU-sized settings) is
:func:`captum_ext.benchmark.roar.stamp_roar`.
"""

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from captum.log import log_usage
from torch import Tensor, nn

from captum_ext._checks import (
    as_map_batch,
    as_mask_batch,
    check_choice,
    check_image_batch,
    check_int_at_least,
    check_positive,
)
from captum_ext._utils import deprecated_kwarg, derive_seed, preserved_model_state, warn_external
from captum_ext.inpaint import apply_inpainter
from captum_ext.inpaint.registry import resolve_inpainter
from captum_ext.metrics._methods import as_builder, explain_batches, method_name
from captum_ext.metrics.perturbation import InpainterLike, pixel_ranks

#: The ROAR paper's fractions of removed pixels.
ROAR_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)

CONTROLS = ("random", "ground_truth")

__all__ = ["CONTROLS", "ROAR_FRACTIONS", "RoarResult", "accuracy", "roar", "train_classifier"]


@dataclass
class RoarResult:
    """Test accuracy after removing and retraining, per method and fraction.

    Attributes:
        fractions (list of float): removed fractions, starting with 0 (the clean model).
        accuracy (dict): method -> (T,) float64 test accuracy per fraction.
        seconds (float): wall-clock time of the whole run.
        chance (float): accuracy of always predicting the most frequent test class.
        settings (dict): the data and training settings used.

    Examples::

        >>> r = RoarResult([0.0, 0.5], {"Random": torch.tensor([0.9, 0.6], dtype=torch.float64)}, 1.0, 0.5, {})
        >>> r.accuracy["Random"].tolist(), r.chance
        ([0.9, 0.6], 0.5)
    """

    fractions: List[float]
    accuracy: Dict[str, Tensor]
    seconds: float
    chance: float
    settings: Dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        """A table: one row per method, one column per removed fraction."""
        header = ["method"] + [f"t = {round(100 * f)} %" for f in self.fractions]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for method, values in self.accuracy.items():
            lines.append("| " + " | ".join([method] + [f"{v:.3f}" for v in values.tolist()]) + " |")
        return "\n".join(lines)


def train_classifier(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    epochs: int = 8,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
) -> nn.Module:
    """Train ``model`` in place on fixed data (Adam, one-cycle schedule, seeded shuffling).

    Returns:
        nn.Module: the model, in ``eval()`` mode.

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
        >>> net = train_classifier(net, torch.rand(8, 3, 4, 4), torch.arange(8) % 2, epochs=1)
        >>> net.training
        False
    """
    check_int_at_least("epochs", epochs, 1)
    check_int_at_least("batch_size", batch_size, 1)
    check_positive("lr", lr)
    n = images.shape[0]
    steps_per_epoch = math.ceil(n / batch_size)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(int(seed))
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator).to(images.device)
        for lo in range(0, n, batch_size):
            index = order[lo:lo + batch_size]
            loss = F.cross_entropy(model(images[index]), labels[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 256) -> float:
    """Fraction of ``images`` that ``model`` assigns to ``labels``.

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1, 2, bias=False))
        >>> _ = net[1].weight.data.copy_(torch.tensor([[1.0], [-1.0]]))
        >>> accuracy(net, torch.tensor([1.0, -1.0, 2.0]).view(3, 1, 1, 1), torch.tensor([0, 1, 1]))
        0.6666666666666666
    """
    if images.shape[0] == 0:
        return math.nan
    hits = sum(int((model(images[i:i + batch_size]).argmax(1) == labels[i:i + batch_size]).sum())
               for i in range(0, images.shape[0], batch_size))
    return hits / images.shape[0]


def _resolve(methods: Any) -> Dict[str, Union[str, Callable]]:
    """name -> builder, or name -> control name (a str), in the given order."""
    if isinstance(methods, Mapping):
        items = list(methods.items())
    elif isinstance(methods, (list, tuple)):
        items = [(m if isinstance(m, str) else method_name(m), m) for m in methods]
    else:
        items = [(methods if isinstance(methods, str) else method_name(methods), methods)]
    if not items:
        raise ValueError("`methods` must name at least one method")
    names = [str(n) for n, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(f"`methods` has duplicate names: {names}; pass a mapping name -> method")
    specs: Dict[str, Union[str, Callable]] = {}
    for name, method in items:
        if isinstance(method, str) and method not in CONTROLS:
            raise ValueError(f"unknown ROAR control {method!r}; the built-in controls are {CONTROLS}")
        specs[str(name)] = method if isinstance(method, str) else as_builder(method, str(name))
    return specs


def _check_fractions(fractions: Any) -> List[float]:
    fraction_list = [fractions] if isinstance(fractions, (int, float)) else list(fractions)
    if not fraction_list:
        raise ValueError("`fractions` must not be empty")
    for f in fraction_list:
        if isinstance(f, bool) or not isinstance(f, (int, float)):
            raise TypeError(f"`fractions` must hold numbers, got {type(f).__name__}")
        if not 0 < f <= 1:
            raise ValueError(f"`fractions` must lie in (0, 1], got {f}")
    return [float(f) for f in fraction_list]


def _random_maps(split: str, images: Tensor, seed: int) -> Tensor:
    height, width = images.shape[-2:]
    maps = [
        torch.rand(1, height, width, generator=torch.Generator().manual_seed(derive_seed(seed, "roar", split, i)))
        for i in range(images.shape[0])
    ]
    return torch.stack(maps).to(images.device)


def _fill_chunked(fill: Callable, images: Tensor, holes: Tensor, batch_size: int) -> Tensor:
    return torch.cat([
        apply_inpainter(fill, images[i:i + batch_size], holes[i:i + batch_size])
        for i in range(0, images.shape[0], batch_size)
    ])


def _pixel_order(maps: Tensor, abs: bool, reduce: str, seed: int) -> Tensor:
    """Removal rank of every pixel (B, H * W); a map with a NaN or an inf ranks as all zeros."""
    check_choice("reduce", reduce, ("sum", "max", "mean"))
    a = as_map_batch("maps", maps).detach().to(torch.float64)
    a = torch.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    a = a.abs() if abs else a
    reduced = {"sum": a.sum(1), "max": a.amax(1), "mean": a.mean(1)}[reduce]
    return pixel_ranks(reduced.flatten(1), tie_seed=seed)


@log_usage()
def roar(
    methods: Any,
    train_images: Optional[Tensor] = None,
    train_labels: Optional[Tensor] = None,
    test_images: Optional[Tensor] = None,
    test_labels: Optional[Tensor] = None,
    model_factory: Optional[Callable[[], nn.Module]] = None,
    fractions: Sequence[float] = ROAR_FRACTIONS,
    inpainter: Optional[InpainterLike] = None,
    epochs: int = 8,
    batch_size: int = 64,
    lr: float = 3e-3,
    abs: bool = True,
    reduce: str = "sum",
    train_masks: Optional[Tensor] = None,
    test_masks: Optional[Tensor] = None,
    seed: int = 0,
    progress: bool = False,
    **kwargs: Any,
) -> RoarResult:
    """Remove the top ``t`` of every image's pixels by each method's ranking, retrain, test.

    Args:
        methods: one method, a list, or a mapping ``name -> method``; a method is a Captum
            ``Attribution`` class, a benchmark ``MethodSpec``, a callable ``build(model) ->
            explain(inputs, target)``, or one of the controls ``"random"`` and
            ``"ground_truth"`` (needs ``train_masks`` and ``test_masks``).
        train_images (Tensor): (N, C, H, W) training images.
        train_labels (Tensor): (N,) class indices.
        test_images (Tensor): (M, C, H, W) test images.
        test_labels (Tensor): (M,) class indices.
        model_factory (callable): returns a fresh untrained model (called under ``seed``).
        fractions (sequence of float): removed fractions, each in (0, 1]. Default 10..90 %.
        inpainter (number, Tensor, str or callable, optional): what replaces removed pixels;
            default: the training set's per-channel mean (the ROAR paper). (Old name
            ``filler``, deprecated.)
        epochs (int): epochs per training. Default 8.
        batch_size (int): training batch (also the chunk of attribution and fill calls). Default 64.
        lr (float): peak learning rate of Adam's one-cycle schedule. Default 3e-3.
        abs (bool): rank pixels by ``|attribution|`` summed over channels. Default True.
        reduce (str): channel reduction, ``"sum"``, ``"max"`` or ``"mean"``. Default ``"sum"``.
        train_masks, test_masks (Tensor, optional): binary object masks (N, 1, H, W) or
            (N, H, W) for the ``"ground_truth"`` control.
        seed (int): seed of the initialization, shuffling and the random control. Default 0.
        progress (bool): print one line per training. Default False.

    Returns:
        RoarResult: accuracy per method and fraction (fraction 0 = the clean model, shared).
        The global RNG state is left as it was.

    Calling ``roar(methods, fractions=..., n_train=...)`` without data runs the stamped-image
    preset :func:`captum_ext.benchmark.roar.stamp_roar` (deprecated here; call it directly).

    Examples::

        >>> x = torch.rand(16, 3, 8, 8); y = torch.arange(16) % 2
        >>> net = lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 64, 2))
        >>> result = roar("random", x, y, x, y, net, fractions=[0.5], epochs=1)
        >>> result.fractions, result.accuracy["random"].shape
        ([0.0, 0.5], torch.Size([2]))
    """
    if train_images is None or not isinstance(train_images, Tensor):
        if train_images is not None:  # the old positional call roar(methods, fractions)
            kwargs["fractions"] = train_images
        elif fractions is not ROAR_FRACTIONS:
            kwargs["fractions"] = fractions
        warn_external(
            "`roar` without data runs the stamped-image preset; call "
            "`captum_ext.benchmark.roar.stamp_roar` instead",
            DeprecationWarning,
        )
        from captum_ext.benchmark.roar import stamp_roar

        extra: Dict[str, Any] = dict(inpainter=inpainter, epochs=epochs, batch_size=batch_size, lr=lr, abs=abs,
                                     reduce=reduce, seed=seed, progress=progress)
        if model_factory is not None:
            extra["model_factory"] = model_factory
        return stamp_roar(methods, **{**extra, **kwargs})
    inpainter = deprecated_kwarg(kwargs, "filler", "inpainter", inpainter, None)
    settings_extra = kwargs.pop("settings", {})
    if kwargs:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(kwargs))}")
    start = time.perf_counter()
    for name, images in (("train_images", train_images), ("test_images", test_images)):
        check_image_batch(name, images)
    assert train_labels is not None and test_labels is not None and test_images is not None
    if not callable(model_factory):
        raise TypeError("`model_factory` must be a callable returning a fresh nn.Module")
    fraction_list = _check_fractions(fractions)
    check_int_at_least("epochs", epochs, 1)
    check_int_at_least("batch_size", batch_size, 1)
    check_positive("lr", lr)
    specs = _resolve(methods)
    if "ground_truth" in specs.values() and (train_masks is None or test_masks is None):
        raise ValueError("the `ground_truth` control needs `train_masks` and `test_masks`")
    device = train_images.device
    data = {"train": (train_images, train_labels.to(device)), "test": (test_images.to(device), test_labels.to(device))}
    fill = resolve_inpainter(train_images.mean(dim=(0, 2, 3)).view(-1, 1, 1) if inpainter is None else inpainter)
    train_kw = dict(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    height, width = train_images.shape[-2:]

    def fresh_trained(images: Tensor, labels: Tensor) -> nn.Module:
        torch.manual_seed(seed)
        model = model_factory().to(device)
        return train_classifier(model, images, labels, epochs, batch_size, lr, seed)

    with torch.random.fork_rng(devices=[]):
        clean = fresh_trained(*data["train"])
        clean_accuracy = accuracy(clean, *data["test"])
        if progress:
            print(f"ROAR: clean model, test accuracy {clean_accuracy:.3f}", flush=True)

        def maps_for(name: str) -> Dict[str, Tensor]:
            spec = specs[name]
            if not isinstance(spec, str):
                with preserved_model_state(clean):
                    return {split: explain_batches(spec(clean), x, y, batch_size) for split, (x, y) in data.items()}
            if spec == "ground_truth":
                masks = {"train": train_masks, "test": test_masks}
                return {split: as_mask_batch(f"{split}_masks", masks[split], x).to(torch.float64)
                        for split, (x, _) in data.items()}
            return {split: _random_maps(split, x, seed) for split, (x, _) in data.items()}

        results: Dict[str, Tensor] = {}
        for name in specs:  # a handful of methods, each a few retrainings
            maps = maps_for(name)
            ranks = {split: _pixel_order(maps[split], abs, reduce, seed) for split in data}
            values = [clean_accuracy]
            for f in fraction_list:
                k = int(math.floor(f * height * width + 0.5))
                removed = {split: _fill_chunked(fill, x, (ranks[split] < k).view(-1, 1, height, width), batch_size)
                           for split, (x, _) in data.items()}
                model = fresh_trained(removed["train"], data["train"][1])
                values.append(accuracy(model, removed["test"], data["test"][1]))
                if progress:
                    print(f"ROAR: {name}, t = {f:.2f}, test accuracy {values[-1]:.3f}", flush=True)
            results[name] = torch.tensor(values, dtype=torch.float64)
    counts = torch.bincount(test_labels.cpu())
    chance = float(counts.max()) / max(1, test_labels.numel())
    settings = dict(n_train=train_images.shape[0], n_test=test_images.shape[0], inpainter=repr(fill), abs=abs,
                    reduce=reduce, **train_kw, **settings_extra)
    return RoarResult([0.0] + fraction_list, results, time.perf_counter() - start, chance, settings)
