"""A small CNN that learns the stamp classes, its training on the CPU and a weight cache.

The network uses ``nn.ReLU`` modules (not functional relu) so that input-specific pruning can
hook its units, and global max pooling so a stamp anywhere in the frame can drive the logit.
Training draws fresh stamped images for every step (seeded), so the model never sees a held-out
image and cannot memorise backgrounds.
"""

import hashlib
import json
import os
from pathlib import Path
from typing import Dict, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from captum_ext.data.stamped import make_stamped_batch

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


class StampNet(nn.Module):
    """A 5-conv classifier for stamped images, with ``nn.ReLU`` modules and global max pooling.

    Args:
        num_classes (int): number of outputs (glyph classes + "no stamp"). Default 5.
        width (int): channels of the first block (doubled twice). Default 16.

    Examples::

        >>> net = StampNet(num_classes=5)
        >>> net(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 5])
    """

    def __init__(self, num_classes: int = 5, width: int = 16) -> None:
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


def cache_dir() -> Path:
    """Where trained weights are cached: ``$CAPTUM_EXT_CACHE``, else ``$XDG_CACHE_HOME/captum_ext``
    (``~/.cache/captum_ext``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "captum_ext"


def _recipe_key(recipe: Dict[str, Union[int, float]]) -> str:
    blob = json.dumps(recipe, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def train_stamp_classifier(
    recipe: Optional[Dict[str, Union[int, float]]] = None, progress: bool = False
) -> StampNet:
    """Train a :class:`StampNet` on freshly generated stamped images (about 2.5 minutes on 2 CPU cores).

    Args:
        recipe (dict, optional): overrides of :data:`DEFAULT_RECIPE` (image_size, stamp_size,
            num_glyphs, width, steps, batch_size, lr, seed).
        progress (bool): show a progress bar. Default False.

    Returns:
        StampNet: the trained model, in ``eval()`` mode, on the CPU.
    """
    r = {**DEFAULT_RECIPE, **(recipe or {})}
    torch.manual_seed(int(r["seed"]))
    model = StampNet(num_classes=int(r["num_glyphs"]) + 1, width=int(r["width"]))
    steps = int(r["steps"])
    optimiser = torch.optim.Adam(model.parameters(), lr=float(r["lr"]))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=float(r["lr"]), total_steps=steps)
    chunk = 32  # steps per generated chunk of data
    iterator = range(steps)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="training the stamp classifier", unit="step")
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


def load_stamp_classifier(
    recipe: Optional[Dict[str, Union[int, float]]] = None,
    retrain: bool = False,
    progress: bool = True,
    device: Union[str, torch.device] = "cpu",
) -> StampNet:
    """The trained stamp classifier: loaded from the cache, or trained once and cached.

    The cache file is ``cache_dir() / f"stampnet-{hash}.pt"``, the hash taken over the recipe.

    Args:
        recipe (dict, optional): overrides of :data:`DEFAULT_RECIPE`.
        retrain (bool): ignore the cache and train again. Default False.
        progress (bool): show a progress bar while training. Default True.
        device (str or torch.device): where to put the model. Default "cpu".

    Returns:
        StampNet: the model in ``eval()`` mode with ``requires_grad`` left on.
    """
    r = {**DEFAULT_RECIPE, **(recipe or {})}
    path = cache_dir() / f"stampnet-{_recipe_key(r)}.pt"
    model = StampNet(num_classes=int(r["num_glyphs"]) + 1, width=int(r["width"]))
    if path.exists() and not retrain:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    else:
        model = train_stamp_classifier(r, progress=progress)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)
    return model.eval().to(device)


@torch.no_grad()
def stamp_recall(model: nn.Module, images: Tensor, labels: Tensor, num_glyphs: int, batch_size: int = 256) -> Tensor:
    """Per-class recall of ``model`` on (images, labels): a (num_glyphs + 1,) tensor.

    Examples::

        >>> net = StampNet(num_classes=2)
        >>> stamp_recall(net, torch.rand(4, 3, 64, 64), torch.tensor([0, 1, 0, 1]), 1).shape
        torch.Size([2])
    """
    preds = torch.cat([model(images[i:i + batch_size]).argmax(1) for i in range(0, len(images), batch_size)])
    classes = torch.arange(num_glyphs + 1)
    hit = (preds[:, None] == classes) & (labels[:, None] == classes)
    return hit.sum(0).float() / (labels[:, None] == classes).sum(0).clamp_min(1).float()
