"""Classifiers of the stamp classes, their training on the CPU and a weight cache.

Two architectures: :class:`StampNet` (the default, a small 5-conv CNN) and a torchvision
``resnet18`` (:func:`stamp_resnet18`, random init, trained on the same data at the same size).
StampNet uses ``nn.ReLU`` modules (not functional relu) so that input-specific pruning can
hook its units, and global max pooling so a stamp anywhere in the frame can drive the logit.
Training draws fresh stamped images for every step (seeded), so the model never sees a held-out
image and cannot memorise backgrounds.
"""

import hashlib
import json
import os
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, ResNet

from captum_ext._checks import check_finite, check_image_batch, check_int_at_least, check_number, check_positive
from captum_ext.data.stamped import GLYPH_NAMES, make_stamped_batch

#: Environment variable that overrides the cache directory of trained weights.
CACHE_ENV = "CAPTUM_EXT_CACHE"

#: The default training recipe; its hash names the cached weights file.
DEFAULT_RECIPE: Dict[str, Union[int, float]] = {
    "image_size": 64,
    "stamp_size": 12,
    "num_glyphs": 4,
    "width": 16,
    "steps": 600,
    "batch_size": 64,
    "lr": 3e-3,
    "seed": 0,
    "data_version": 2,  # bump when the stamped-image generator changes: it renames the cache file
}

#: The training recipe of the ``resnet18`` classifier (same data, same image size as StampNet).
RESNET18_RECIPE: Dict[str, Union[int, float, str]] = {
    "arch": "resnet18",
    "image_size": 64,
    "stamp_size": 12,
    "num_glyphs": 4,
    "steps": 800,
    "batch_size": 64,
    "lr": 2e-3,
    "seed": 0,
    "data_version": 2,
}

#: Classifier architectures of the built-in benchmark, by name (``--model``).
ARCHITECTURES: Tuple[str, ...] = ("stampnet", "resnet18")


class StampNet(nn.Module):
    """A 5-conv classifier for stamped images, with ``nn.ReLU`` modules and global max pooling.

    Args:
        num_classes (int): number of outputs (glyph classes + "no stamp"), >= 1. Default 5.
        width (int): channels of the first block (doubled twice), >= 1. Default 16.

    Examples::

        >>> net = StampNet(num_classes=5)
        >>> net(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 5])
    """

    def __init__(self, num_classes: int = 5, width: int = 16) -> None:
        check_int_at_least("num_classes", num_classes, 1)
        check_int_at_least("width", width, 1)
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.ReLU(),
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.classifier = nn.Linear(4 * w, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


class _BasicBlock(BasicBlock):
    """torchvision's ``BasicBlock`` with one ``nn.ReLU`` module per use, not in place.

    The same function and the same parameter names as torchvision's block (a state dict loads
    into either); only torchvision's reuse of one in-place ReLU module twice per block is
    replaced, because hook-based methods (DeepLift, Guided Backprop, input-specific pruning)
    need one module per non-linearity.
    """

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.relu = nn.ReLU()
        self.relu2 = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu2(self.bn2(self.conv2(out)) + identity)


def stamp_resnet18(num_classes: int = 5) -> ResNet:
    """torchvision's ``resnet18`` (random init) for the stamp classes, unchanged for 64x64 inputs.

    The layers, strides and parameter names are torchvision's ``resnet18(num_classes=...)``: the
    64x64 input reaches the last stage at 2x2, enough for the 12-pixel stamps (no adaptation of
    the stem). The only change: every ReLU is its own non-in-place module (see
    :class:`_BasicBlock`), so hook-based attribution methods see each non-linearity once.

    Args:
        num_classes (int): number of outputs (glyph classes + "no stamp"). Default 5.

    Returns:
        torchvision.models.ResNet: the network, in training mode.

    Examples::

        >>> net = stamp_resnet18(num_classes=5)
        >>> net(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 5])
    """
    model = ResNet(_BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
    model.relu = nn.ReLU()
    return model


def _defaults(arch: str) -> Dict[str, Union[int, float, str]]:
    if arch not in ARCHITECTURES:
        raise ValueError(f"`arch` must be one of {ARCHITECTURES}, got {arch!r}")
    return dict(RESNET18_RECIPE if arch == "resnet18" else DEFAULT_RECIPE)


def _full_recipe(arch: str, recipe: Optional[Dict]) -> Dict[str, Union[int, float, str]]:
    """The arch's default recipe with ``recipe``'s overrides; an unknown key is an error."""
    base = _defaults(arch)
    if recipe is not None and not isinstance(recipe, dict):
        raise TypeError(f"`recipe` must be a dict or None, got {type(recipe).__name__}")
    unknown = sorted(set(recipe or {}) - set(base))
    if unknown:
        raise ValueError(
            f"`recipe` has unknown key(s) {unknown} for arch {arch!r}; known keys: {sorted(base)}"
        )
    if recipe and recipe.get("arch", arch) != arch:
        raise ValueError(f"`recipe['arch']` is {recipe['arch']!r} but `arch` is {arch!r}")
    full = {**base, **(recipe or {})}
    _check_recipe_values(full)
    return full


def _check_recipe_values(r: Dict[str, Union[int, float, str]]) -> None:
    """Each value of a full recipe, checked before any training; errors name ``recipe['key']``."""
    for key in ("steps", "batch_size", "num_glyphs", "width"):
        if key in r:
            check_int_at_least(f"recipe['{key}']", r[key], 1)
    if int(r["num_glyphs"]) > len(GLYPH_NAMES):
        raise ValueError(f"`recipe['num_glyphs']` must be <= {len(GLYPH_NAMES)}, got {r['num_glyphs']}")
    check_int_at_least("recipe['stamp_size']", r["stamp_size"], 5)
    check_int_at_least("recipe['image_size']", r["image_size"], int(r["stamp_size"]))
    check_positive("recipe['lr']", r["lr"])
    check_number("recipe['seed']", r["seed"], integer=True)
    check_number("recipe['data_version']", r["data_version"], integer=True)


def _build(r: Dict[str, Union[int, float, str]]) -> nn.Module:
    classes = int(r["num_glyphs"]) + 1
    if r.get("arch", "stampnet") == "resnet18":
        return stamp_resnet18(num_classes=classes)
    return StampNet(num_classes=classes, width=int(r["width"]))


def check_device(device: Union[str, torch.device], name: str = "device") -> torch.device:
    """A usable torch device, or a ``ValueError`` naming the argument (before any work).

    Args:
        device (str or torch.device): e.g. ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
        name (str): the argument's name in the message. Default ``"device"``.

    Returns:
        torch.device: the parsed device.

    Examples::

        >>> check_device("cpu")
        device(type='cpu')
    """
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"`{name}` must be a torch device such as 'cpu' or 'cuda', got {device!r}") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"`{name}` is {device!r} but CUDA is not available on this machine")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"`{name}` is {device!r} but this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif parsed.type != "cpu":
        if parsed.type == "mps" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return parsed
        raise ValueError(f"`{name}` must be 'cpu' or 'cuda[:N]', got {device!r}")
    return parsed


def cache_dir() -> Path:
    """Where trained weights are cached: ``$CAPTUM_EXT_CACHE``, else ``$XDG_CACHE_HOME/captum_ext``
    (``~/.cache/captum_ext``).

    Returns:
        pathlib.Path: the folder (not created here; :func:`load_stamp_classifier` creates it).

    Examples::

        >>> import os
        >>> from unittest import mock
        >>> with mock.patch.dict(os.environ, {"CAPTUM_EXT_CACHE": "/tmp/weights"}):
        ...     cache_dir().as_posix()
        '/tmp/weights'
        >>> isinstance(cache_dir(), Path)
        True
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "captum_ext"


def _recipe_key(recipe: Dict[str, Union[int, float, str]]) -> str:
    blob = json.dumps(recipe, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def train_stamp_classifier(
    recipe: Optional[Dict[str, Union[int, float, str]]] = None, progress: bool = False, arch: str = "stampnet"
) -> nn.Module:
    """Train a stamp classifier on freshly generated stamped images, on the CPU.

    About 2.5 minutes on 2 CPU cores for :class:`StampNet`, about 6 for ``resnet18``.

    Args:
        recipe (dict, optional): overrides of the arch's recipe (:data:`DEFAULT_RECIPE` or
            :data:`RESNET18_RECIPE`: image_size, stamp_size, num_glyphs, width, steps,
            batch_size, lr, seed); an unknown key raises ``ValueError``.
        progress (bool): show a progress bar. Default False.
        arch (str): ``"stampnet"`` (default) or ``"resnet18"``.

    The recipe is checked before any training: an unknown key, or a value out of range (a NaN
    or non-positive ``lr``, ``steps`` or ``batch_size`` < 1, ...) raises ``ValueError`` naming
    the key.

    Returns:
        nn.Module: the trained model, in ``eval()`` mode, on the CPU.

    Examples::

        >>> train_stamp_classifier(recipe={"lr": float("nan")})  # refused before training
        Traceback (most recent call last):
        ...
        ValueError: `recipe['lr']` must be a finite number, got nan
        >>> train_stamp_classifier(recipe={"epochs": 3})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: `recipe` has unknown key(s) ['epochs'] for arch 'stampnet'; known keys: [...]
    """
    r = _full_recipe(arch, recipe)
    torch.manual_seed(int(r["seed"]))
    model = _build(r)
    steps = int(r["steps"])
    optimiser = torch.optim.Adam(model.parameters(), lr=float(r["lr"]))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=float(r["lr"]), total_steps=steps)
    chunk = 32  # steps per generated chunk of data
    iterator = range(steps)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc=f"training the stamp classifier ({arch})", unit="step")
    model.train()
    for step in iterator:
        if step % chunk == 0:
            data = make_stamped_batch(
                chunk * int(r["batch_size"]),
                image_size=int(r["image_size"]),
                stamp_size=int(r["stamp_size"]),
                num_glyphs=int(r["num_glyphs"]),
                seed=1_000_000 + int(r["seed"]) * 10_000 + step // chunk,
            )
        lo = (step % chunk) * int(r["batch_size"])
        hi = lo + int(r["batch_size"])
        loss = F.cross_entropy(model(data.images[lo:hi]), data.labels[lo:hi])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
    return model.eval()


def classifier_path(recipe: Optional[Dict[str, Union[int, float, str]]] = None, arch: str = "stampnet") -> Path:
    """The cache file of a recipe: ``cache_dir() / f"{arch}-{hash}.pt"``, the hash over the recipe.

    Examples::

        >>> classifier_path(arch="resnet18").name.startswith("resnet18-")
        True
    """
    r = _full_recipe(arch, recipe)
    return cache_dir() / f"{arch}-{_recipe_key(r)}.pt"


def load_stamp_classifier(
    recipe: Optional[Dict[str, Union[int, float, str]]] = None,
    retrain: bool = False,
    progress: bool = True,
    device: Union[str, torch.device] = "cpu",
    arch: str = "stampnet",
) -> nn.Module:
    """The trained stamp classifier: loaded from the cache, or trained once and cached.

    The cache file is ``cache_dir() / f"{arch}-{hash}.pt"``, the hash taken over the recipe
    (:func:`classifier_path`). The recipe and the device are checked before any training.

    Args:
        recipe (dict, optional): overrides of the arch's recipe; an unknown key raises
            ``ValueError`` naming it (it would otherwise train a new model for minutes).
        retrain (bool): ignore the cache and train again. Default False.
        progress (bool): show a progress bar while training. Default True.
        device (str or torch.device): where to put the model. Default "cpu".
        arch (str): ``"stampnet"`` (default, :class:`StampNet`) or ``"resnet18"``
            (:func:`stamp_resnet18`).

    Returns:
        nn.Module: the model in ``eval()`` mode with ``requires_grad`` left on.

    Examples::

        >>> load_stamp_classifier(recipe={"steps": 0})  # checked before any training
        Traceback (most recent call last):
        ...
        ValueError: `recipe['steps']` must be >= 1, got 0
        >>> load_stamp_classifier(device="tpu")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: `device` must be ...
    """
    r = _full_recipe(arch, recipe)
    target = check_device(device)
    path = cache_dir() / f"{arch}-{_recipe_key(r)}.pt"
    model = _build(r)
    if path.exists() and not retrain:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    else:
        model = train_stamp_classifier(r, progress=progress, arch=arch)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)
    return model.eval().to(target)


@torch.no_grad()
def stamp_recall(model: nn.Module, images: Tensor, labels: Tensor, num_glyphs: int, batch_size: int = 256) -> Tensor:
    """Per-class recall of ``model`` on (images, labels): a (num_glyphs + 1,) tensor.

    Recall of class ``c`` = (images of class ``c`` predicted ``c``) / (images of class ``c``).
    A class with no image in ``labels`` has no recall: its entry is NaN (0 / 0), never 0. So a
    batch of 0 gives ``num_glyphs + 1`` NaNs (the shape of the result does not depend on the
    batch) and runs no model.

    Args:
        model (nn.Module): a classifier with ``num_glyphs + 1`` outputs.
        images (Tensor): (N, 3, H, W), finite.
        labels (Tensor): (N,) integer classes in ``0..num_glyphs``.
        num_glyphs (int): number of stamp classes (>= 1); class ``num_glyphs`` is "no stamp".
        batch_size (int): images per forward pass (>= 1). Default 256.

    Returns:
        Tensor: (num_glyphs + 1,) float recall per class, NaN for a class absent from ``labels``.

    Examples::

        >>> net = StampNet(num_classes=2)
        >>> stamp_recall(net, torch.rand(4, 3, 64, 64), torch.tensor([0, 1, 0, 1]), 1).shape
        torch.Size([2])
        >>> stamp_recall(net, torch.rand(0, 3, 64, 64), torch.zeros(0, dtype=torch.long), 1)
        tensor([nan, nan])
    """
    check_int_at_least("num_glyphs", num_glyphs, 1)
    check_int_at_least("batch_size", batch_size, 1)
    check_image_batch("images", images)
    check_finite("images", images)
    if not isinstance(labels, Tensor):
        raise TypeError(f"`labels` must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"`labels` must have shape ({images.shape[0]},) (one per image), got {tuple(labels.shape)}"
        )
    classes = torch.arange(num_glyphs + 1, device=labels.device)
    if images.shape[0] == 0:
        return torch.full((num_glyphs + 1,), float("nan"), device=labels.device)
    preds = torch.cat([model(images[i:i + batch_size]).argmax(1) for i in range(0, len(images), batch_size)])
    is_class = labels[:, None] == classes
    hit = (preds.to(labels.device)[:, None] == classes) & is_class
    return hit.sum(0).float() / is_class.sum(0).float()
