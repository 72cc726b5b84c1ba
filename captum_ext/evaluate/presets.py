"""Presets of ``captum-ext evaluate``: data and model chosen by name instead of ``--data/--model``.

- ``stamp``: the built-in stamp benchmark's held-out stamped images (those the cached stamp
  classifier assigns to the stamp's class, as ``captum-ext benchmark`` scores them) with the
  stamp footprints as masks, and the cached stamp classifier (trained once if missing).
  ``--max-images`` sets the number of images (default 32, the benchmark's default) and
  ``--seed`` picks them, as ``captum-ext benchmark --n-images/--seed`` do.
- ``stamp-resnet18``: the same data with the cached torchvision ResNet-18 stamp classifier
  (``captum-ext benchmark --model resnet18``); the held-out images are those it classifies
  correctly.

``captum-ext benchmark`` itself is unchanged (same outputs); this preset runs the same images
through the evaluate runner: per-image rows, resume, bootstrap intervals and paired tests.
"""

from typing import List, Tuple

from torch import Tensor, nn
from torch.utils.data import Dataset

from captum_ext.evaluate.config import EvalConfig

PRESETS = ("stamp", "stamp-resnet18")

#: Images of the stamp preset when ``max_images`` is not set.
STAMP_IMAGES = 32


class TensorImages(Dataset):
    """A dataset over tensors: ``(image, label, mask)`` with ids ``<prefix><index>``."""

    def __init__(self, images: Tensor, labels: Tensor, masks: Tensor, prefix: str = "") -> None:
        self.images, self.labels, self.masks = images.cpu(), labels.cpu(), masks.cpu().float()
        self.image_ids: List[str] = [f"{prefix}{i}" for i in range(images.shape[0])]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> Tuple[Tensor, int, Tensor]:
        return self.images[index], int(self.labels[index]), self.masks[index]


def stamp_preset(config: EvalConfig, arch: str = "stampnet") -> Tuple[TensorImages, nn.Module]:
    """The stamp benchmark's held-out images and classifier (see the module docstring)."""
    from captum_ext.benchmark.runner import held_out_images
    from captum_ext.data.classifier import load_stamp_classifier

    model = load_stamp_classifier(progress=config.progress, arch=arch)
    n = config.max_images or STAMP_IMAGES
    images, labels, masks = held_out_images(model, n, config.seed, "cpu")
    return TensorImages(images, labels, masks, prefix=f"stamp{config.seed}-"), model


def load_preset(name: str, config: EvalConfig) -> Tuple[TensorImages, nn.Module]:
    """``(dataset, model)`` of a preset; ValueError naming ``--preset`` for an unknown name."""
    if name not in PRESETS:
        raise ValueError(f"--preset: unknown preset {name!r}; available: {list(PRESETS)}")
    return stamp_preset(config, arch="resnet18" if name == "stamp-resnet18" else "stampnet")
