"""ROAR (RemOve And Retrain) on the stamped-image data set.

Hooker et al., "A Benchmark for Interpretability Methods in Deep Neural Networks" (NeurIPS
2019). Known: a model is trained on clean data; every method ranks the pixels of every training
and test image with that model; for each fraction ``t`` the top ``t`` of the pixels are replaced
(by the per-channel mean of the data set in the paper), a new model is trained from scratch on
the modified training set and its accuracy on the modified test set is reported. A method whose
removal hurts accuracy more found more of what the task needs: a sharper drop is better. Random
removal is the control. The pathway paper: CIFAR-10, ResNet-8, t = 10, 30, 50, 70, 90 %, Adam
with lr 1e-3.

Chosen here, so that one run fits a 2-core CPU: 32 x 32 stamped images with 8-pixel stamps,
a :class:`~captum_ext.data.StampNet` of width 8, 2048 training and 512 test images, 8 epochs of
Adam with a one-cycle schedule (max lr 3e-3, batch 64); every retraining starts from the same
seed. Besides real methods, ``"random"`` (a fresh uniform map per image) and ``"ground_truth"``
(the stamp's exact footprint) are built-in controls. The filler is a parameter: with a constant
fill the *shape* of the removed region stays visible, and a retrained model can read a glyph
from its silhouette (the leak the ROAD paper describes); an inpainting filler removes that cue.
"""

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from captum.log import log_usage
from torch import Tensor, nn

from captum_ext._utils import check_int_at_least, check_positive
from captum_ext.inpaint import apply_inpainter
from captum_ext.inpaint.registry import resolve_inpainter
from captum_ext.metrics.perturbation import FillerLike, _pixel_scores, pixel_ranks
from captum_ext.metrics.sanity import _as_builder, _explain_all, _method_name

#: The ROAR paper's fractions of removed pixels.
ROAR_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)

#: Seeds of the ROAR data, away from the classifier's (1,000,000+) and the benchmark's (500,000+).
TRAIN_SEED_OFFSET = 2_000_000
TEST_SEED_OFFSET = 3_000_000

CONTROLS = ("random", "ground_truth")

__all__ = ["CONTROLS", "ROAR_FRACTIONS", "RoarResult", "roar", "train_classifier", "accuracy"]


@dataclass
class RoarResult:
    """Test accuracy after removing and retraining, per method and fraction.

    Attributes:
        fractions (list of float): removed fractions, starting with 0 (the clean model).
        accuracy (dict): method -> (T,) float64 test accuracy per fraction.
        seconds (float): wall-clock time of the whole run.
        chance (float): accuracy of always predicting the most frequent test class.
        settings (dict): the data and training settings used.
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

        >>> from captum_ext.data import StampNet
        >>> net = train_classifier(StampNet(2, width=2), torch.rand(8, 3, 16, 16), torch.arange(8) % 2, epochs=1)
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

        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3, 2))
        >>> 0.0 <= accuracy(net, torch.rand(4, 3, 1, 1), torch.tensor([0, 1, 0, 1])) <= 1.0
        True
    """
    hits = sum(int((model(images[i:i + batch_size]).argmax(1) == labels[i:i + batch_size]).sum())
               for i in range(0, images.shape[0], batch_size))
    return hits / images.shape[0]


def _resolve(methods: Any) -> Dict[str, Union[str, Callable]]:
    """name -> builder, or name -> control name (a str), in the given order."""
    if isinstance(methods, Mapping):
        items = list(methods.items())
    elif isinstance(methods, (list, tuple)):
        items = [(m if isinstance(m, str) else _method_name(m), m) for m in methods]
    else:
        items = [(methods if isinstance(methods, str) else _method_name(methods), methods)]
    if not items:
        raise ValueError("`methods` must name at least one method")
    names = [str(n) for n, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(f"`methods` has duplicate names: {names}; pass a mapping name -> method")
    specs: Dict[str, Union[str, Callable]] = {}
    for name, method in items:
        if isinstance(method, str) and method not in CONTROLS:
            raise ValueError(f"unknown ROAR control {method!r}; the built-in controls are {CONTROLS}")
        specs[str(name)] = method if isinstance(method, str) else _as_builder(method, str(name))
    return specs


def _fill_chunked(fill: Callable, images: Tensor, holes: Tensor, batch_size: int) -> Tensor:
    return torch.cat([
        apply_inpainter(fill, images[i:i + batch_size], holes[i:i + batch_size])
        for i in range(0, images.shape[0], batch_size)
    ])


@log_usage()
def roar(
    methods: Any,
    fractions: Sequence[float] = ROAR_FRACTIONS,
    filler: Optional[FillerLike] = None,
    n_train: int = 2048,
    n_test: int = 512,
    image_size: int = 32,
    stamp_size: int = 8,
    num_glyphs: int = 4,
    width: int = 8,
    epochs: int = 8,
    batch_size: int = 64,
    lr: float = 3e-3,
    abs: bool = True,
    reduce: str = "sum",
    model_factory: Optional[Callable[[], nn.Module]] = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> RoarResult:
    """Remove the top ``t`` of every image's pixels by each method's ranking, retrain, test.

    Args:
        methods: one method, a list, or a mapping ``name -> method``; a method is a Captum
            ``Attribution`` class, a benchmark ``MethodSpec``, a callable ``build(model) ->
            explain(inputs, target)``, or one of the controls ``"random"`` and
            ``"ground_truth"`` (the stamp's footprint).
        fractions (sequence of float): removed fractions, each in (0, 1]. Default 10..90 %.
        filler (number, Tensor, str or callable, optional): what replaces removed pixels (see
            :mod:`captum_ext.metrics.perturbation`); default: the training set's per-channel
            mean (the ROAR paper).
        n_train (int): training images (one fixed set). Default 2048.
        n_test (int): test images. Default 512.
        image_size (int): image side. Default 32.
        stamp_size (int): stamp side. Default 8.
        num_glyphs (int): stamp classes (plus one "no stamp" class). Default 4.
        width (int): StampNet width. Default 8.
        epochs (int): epochs per training. Default 8.
        batch_size (int): training batch (also the chunk of attribution and fill calls). Default 64.
        lr (float): peak learning rate of Adam's one-cycle schedule. Default 3e-3.
        abs (bool): rank pixels by ``|attribution|`` summed over channels. Default True.
        reduce (str): channel reduction, ``"sum"``, ``"max"`` or ``"mean"``. Default ``"sum"``.
        model_factory (callable, optional): returns a fresh untrained model; default
            ``StampNet(num_glyphs + 1, width)``.
        seed (int): seed of the data, initialisation and shuffling. Default 0.
        device (str): where to train. Default "cpu".
        progress (bool): print one line per training. Default False.

    Returns:
        RoarResult: accuracy per method and fraction (fraction 0 = the clean model, shared).

    Examples::

        >>> result = roar("random", fractions=[0.5], n_train=64, n_test=32, image_size=24,
        ...               stamp_size=6, width=2, epochs=1)
        >>> result.fractions, result.accuracy["random"].shape
        ([0.0, 0.5], torch.Size([2]))
    """
    from captum_ext.data import StampNet, make_stamped_batch

    start = time.perf_counter()
    check_int_at_least("n_train", n_train, 1)
    check_int_at_least("n_test", n_test, 1)
    fraction_list = [fractions] if isinstance(fractions, (int, float)) else list(fractions)
    if not fraction_list:
        raise ValueError("`fractions` must not be empty")
    for f in fraction_list:
        if isinstance(f, bool) or not isinstance(f, (int, float)):
            raise TypeError(f"`fractions` must hold numbers, got {type(f).__name__}")
        if not 0 < f <= 1:
            raise ValueError(f"`fractions` must lie in (0, 1], got {f}")
    specs = _resolve(methods)
    factory = model_factory or (lambda: StampNet(num_classes=num_glyphs + 1, width=width))
    train_kw = dict(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)

    def fresh_trained(images: Tensor, labels: Tensor) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = factory().to(device)
        return train_classifier(model, images, labels, **train_kw)

    train = make_stamped_batch(n_train, image_size, stamp_size, num_glyphs, TRAIN_SEED_OFFSET + seed)
    test = make_stamped_batch(n_test, image_size, stamp_size, num_glyphs, TEST_SEED_OFFSET + seed)
    x_train, y_train = train.images.to(device), train.labels.to(device)
    x_test, y_test = test.images.to(device), test.labels.to(device)
    fill = resolve_inpainter(x_train.mean(dim=(0, 2, 3)).view(-1, 1, 1) if filler is None else filler)

    clean = fresh_trained(x_train, y_train)
    clean_accuracy = accuracy(clean, x_test, y_test)
    if progress:
        print(f"ROAR: clean model, test accuracy {clean_accuracy:.3f}", flush=True)

    def maps_for(name: str) -> Dict[str, Tensor]:
        spec = specs[name]
        if not isinstance(spec, str):
            return {split: _explain_all(spec(clean), x, y, batch_size)
                    for split, (x, y) in {"train": (x_train, y_train), "test": (x_test, y_test)}.items()}
        if spec == "ground_truth":
            return {"train": train.masks.to(device), "test": test.masks.to(device)}
        generator = torch.Generator().manual_seed(seed + 17)
        return {split: torch.rand(x.shape[0], 1, image_size, image_size, generator=generator).to(device)
                for split, x in {"train": x_train, "test": x_test}.items()}

    results: Dict[str, Tensor] = {}
    for name in specs:  # a handful of methods, each a few retrainings
        maps = maps_for(name)
        ranks = {split: pixel_ranks(_pixel_scores(maps[split], x, abs, reduce)[0], tie_seed=seed)
                 for split, x in {"train": x_train, "test": x_test}.items()}
        values = [clean_accuracy]
        for f in fraction_list:
            k = int(math.floor(f * image_size * image_size + 0.5))
            removed = {split: _fill_chunked(fill, x, (ranks[split] < k).view(-1, 1, image_size, image_size), batch_size)
                       for split, x in {"train": x_train, "test": x_test}.items()}
            model = fresh_trained(removed["train"], y_train)
            values.append(accuracy(model, removed["test"], y_test))
            if progress:
                print(f"ROAR: {name}, t = {f:.2f}, test accuracy {values[-1]:.3f}", flush=True)
        results[name] = torch.tensor(values, dtype=torch.float64)
    chance = float(torch.bincount(test.labels).max()) / n_test
    settings = dict(n_train=n_train, n_test=n_test, image_size=image_size, stamp_size=stamp_size,
                    num_glyphs=num_glyphs, width=width, filler=repr(fill), abs=abs, reduce=reduce, **train_kw)
    return RoarResult([0.0] + [float(f) for f in fraction_list], results, time.perf_counter() - start, chance, settings)
