"""The stamped-image data set: natural backgrounds with a glyph pasted at a random position.

Each glyph shape is its own class and one more class means "no stamp", so the stamp is the only
cue a classifier can use and its footprint is the ground truth of an attribution map. The stamp
overwrites pixels, so the footprint mask is exact. Generation is deterministic per seed and fully
batched (no Python loop over samples or pixels).

Chosen here (a reconstruction, see ``metrics.md``): stamp colour is random (so shape, not
colour, is the cue) but pushed to contrast with the local background luminance: dark (RGB in
[0, 0.3]) on bright backgrounds, bright ([0.7, 1]) on dark ones. Backgrounds are random crops,
flipped at random, of the photos rescaled to a shorter side of 128, 192 or 288 pixels.
"""

from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, Tuple

import torch
from torch import Tensor
from torch.utils.data import Dataset

from captum_ext._utils import check_int_at_least
from captum_ext.data.photos import photo_pyramid

#: Glyph names in class order; the first ``num_glyphs`` are used.
#: Stamp colours are drawn from [0, CONTRAST] (dark) or [1 - CONTRAST, 1] (bright) per channel.
CONTRAST = 0.3

GLYPH_NAMES: Tuple[str, ...] = ("plus", "ring", "triangle", "cross", "square", "tee", "ell", "diamond")


def glyph_mask(name: str, size: int) -> Tensor:
    """A binary glyph of ``size x size`` pixels (bool), drawn by closed-form rules.

    Args:
        name (str): one of :data:`GLYPH_NAMES`.
        size (int): side length in pixels (>= 5).

    Returns:
        Tensor: (size, size) bool.

    Examples::

        >>> glyph_mask("plus", 5).int()
        tensor([[0, 0, 1, 0, 0],
                [0, 0, 1, 0, 0],
                [1, 1, 1, 1, 1],
                [0, 0, 1, 0, 0],
                [0, 0, 1, 0, 0]], dtype=torch.int32)
    """
    check_int_at_least("size", size, 5)
    c = (size - 1) / 2.0
    axis = torch.arange(size, dtype=torch.float32)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    half_width = max(size / 10.0, 0.5)  # stroke half-width
    dy, dx = y - c, x - c
    radius = torch.sqrt(dy**2 + dx**2)
    rules: Dict[str, Tensor] = {
        "plus": (dy.abs() <= half_width) | (dx.abs() <= half_width),
        "ring": (radius <= c + 0.5) & (radius >= c + 0.5 - 2 * half_width - 1),
        "triangle": (y >= (size - 1) - 2 * (c - (dx.abs()))) & (dx.abs() <= c),
        "cross": ((dy - dx).abs() <= half_width + 0.5) | ((dy + dx).abs() <= half_width + 0.5),
        "square": (torch.maximum(dy.abs(), dx.abs()) >= c - 2 * half_width),
        "tee": (y <= 2 * half_width) | (dx.abs() <= half_width),
        "ell": (x <= 2 * half_width) | (y >= size - 1 - 2 * half_width),
        "diamond": (dy.abs() + dx.abs() <= c + 0.5) & (dy.abs() + dx.abs() >= c - 1.5 - half_width),
    }
    if name not in rules:
        raise ValueError(f"`name` must be one of {GLYPH_NAMES}, got {name!r}")
    return rules[name]


@lru_cache(maxsize=None)
def _background_pool() -> Tuple[Tensor, ...]:
    return tuple(photo_pyramid())


@dataclass
class StampedBatch:
    """A batch of stamped images (what :func:`make_stamped_batch` returns).

    Attributes:
        images (Tensor): (N, 3, S, S) float in [0, 1].
        labels (Tensor): (N,) long; ``0..num_glyphs-1`` glyph classes, ``num_glyphs`` = no stamp.
        masks (Tensor): (N, 1, S, S) float 0/1, the exact stamp footprint (all zero: no stamp).
        positions (Tensor): (N, 2) long, top-left (row, col) of the stamp box (-1: no stamp).
        colours (Tensor): (N, 3) float, the stamp colour (0: no stamp).

    Examples::

        >>> batch = make_stamped_batch(4, image_size=16, stamp_size=6, seed=0)
        >>> isinstance(batch, StampedBatch), batch.positions.shape, batch.colours.shape
        (True, torch.Size([4, 2]), torch.Size([4, 3]))
        >>> bool(((batch.masks.sum((1, 2, 3)) > 0) == (batch.labels < 4)).all())
        True
    """

    images: Tensor
    labels: Tensor
    masks: Tensor
    positions: Tensor
    colours: Tensor


def _crop_backgrounds(n: int, size: int, gen: torch.Generator) -> Tensor:
    pool = _background_pool()
    source = torch.randint(len(pool), (n,), generator=gen)
    flips = torch.rand(n, 2, generator=gen) < 0.5
    unit = torch.rand(n, 2, generator=gen)
    out = torch.empty(n, 3, size, size)
    offsets = torch.arange(size)
    for k, photo in enumerate(pool):  # loop over ~24 photos, never over samples
        idx = (source == k).nonzero(as_tuple=True)[0]
        if idx.numel() == 0:
            continue
        _, h, w = photo.shape
        top = (unit[idx, 0] * (h - size + 1)).long().clamp_(max=h - size)
        left = (unit[idx, 1] * (w - size + 1)).long().clamp_(max=w - size)
        rows = top[:, None] + offsets  # (m, S)
        cols = left[:, None] + offsets
        out[idx] = photo[:, rows[:, :, None], cols[:, None, :]].permute(1, 0, 2, 3)
    out = torch.where(flips[:, 0, None, None, None], out.flip(-1), out)
    return torch.where(flips[:, 1, None, None, None], out.flip(-2), out)


def make_stamped_batch(
    n: int,
    image_size: int = 64,
    stamp_size: int = 12,
    num_glyphs: int = 4,
    seed: int = 0,
) -> StampedBatch:
    """Generate ``n`` stamped images, deterministically for a seed.

    Labels are uniform over ``num_glyphs + 1`` classes (the last is "no stamp"). A stamp's
    top-left corner is uniform over every position where it fits in the frame.

    Args:
        n (int): number of images (>= 0; 0 gives an empty batch of the same shapes).
        image_size (int): side of the square images. Default 64.
        stamp_size (int): side of the stamp's box. Default 12.
        num_glyphs (int): number of stamp classes (1..8). Default 4.
        seed (int): random seed; equal seeds give bit-identical batches.

    Returns:
        StampedBatch: images, labels, exact footprint masks, positions and colours.

    Examples::

        >>> batch = make_stamped_batch(8, image_size=32, stamp_size=8, seed=1)
        >>> batch.images.shape, batch.masks.shape, batch.labels.shape
        (torch.Size([8, 3, 32, 32]), torch.Size([8, 1, 32, 32]), torch.Size([8]))
        >>> make_stamped_batch(0, image_size=32, stamp_size=8).images.shape
        torch.Size([0, 3, 32, 32])
    """
    check_int_at_least("n", n, 0)
    check_int_at_least("stamp_size", stamp_size, 5)
    check_int_at_least("image_size", image_size, stamp_size)
    check_int_at_least("num_glyphs", num_glyphs, 1)
    if num_glyphs > len(GLYPH_NAMES):
        raise ValueError(f"`num_glyphs` must be <= {len(GLYPH_NAMES)}, got {num_glyphs}")
    gen = torch.Generator().manual_seed(seed)
    images = _crop_backgrounds(n, image_size, gen)
    labels = torch.randint(num_glyphs + 1, (n,), generator=gen)
    positions = torch.randint(image_size - stamp_size + 1, (n, 2), generator=gen)
    hue = torch.rand(n, 3, generator=gen)

    stamped = labels < num_glyphs
    glyphs = torch.stack([glyph_mask(g, stamp_size) for g in GLYPH_NAMES[:num_glyphs]])
    offsets = torch.arange(stamp_size)
    rows = positions[:, 0, None] + offsets  # (n, s)
    cols = positions[:, 1, None] + offsets
    batch_idx = torch.arange(n)[:, None, None]
    footprint = torch.zeros(n, image_size, image_size, dtype=torch.bool)
    footprint[batch_idx, rows[:, :, None], cols[:, None, :]] = glyphs[labels.clamp(max=num_glyphs - 1)]
    footprint &= stamped[:, None, None]

    window = images.permute(0, 2, 3, 1)[batch_idx, rows[:, :, None], cols[:, None, :]]  # (n, s, s, 3)
    luminance = (window @ torch.tensor([0.299, 0.587, 0.114])).mean(dim=(1, 2))
    colours = torch.where(luminance[:, None] > 0.5, CONTRAST * hue, (1 - CONTRAST) + CONTRAST * hue)
    colours = colours * stamped[:, None]
    images = torch.where(footprint[:, None], colours[:, :, None, None], images)
    positions = torch.where(stamped[:, None], positions, torch.full_like(positions, -1))
    return StampedBatch(images, labels, footprint[:, None].float(), positions, colours)


class StampedImages(Dataset):
    """A deterministic data set of stamped natural images (a ``torch.utils.data.Dataset``).

    Items are ``(image, label, mask)``: image (3, S, S) in [0, 1], label (long), mask
    (1, S, S) float 0/1 footprint. Generated once at construction, batched.

    Args:
        n (int): number of images (>= 0; 0 gives an empty data set).
        image_size (int): side of the square images. Default 64.
        stamp_size (int): side of the stamp box. Default 12.
        num_glyphs (int): number of stamp classes; class ``num_glyphs`` is "no stamp". Default 4.
        seed (int): seed; use different seeds for train and held-out sets.

    Examples::

        >>> data = StampedImages(16, seed=3)
        >>> image, label, mask = data[0]
        >>> image.shape, mask.shape, data.num_classes
        (torch.Size([3, 64, 64]), torch.Size([1, 64, 64]), 5)
    """

    def __init__(
        self, n: int, image_size: int = 64, stamp_size: int = 12, num_glyphs: int = 4, seed: int = 0
    ) -> None:
        self.batch = make_stamped_batch(n, image_size, stamp_size, num_glyphs, seed)
        self.num_glyphs = num_glyphs
        self.num_classes = num_glyphs + 1
        self.class_names = list(GLYPH_NAMES[:num_glyphs]) + ["no stamp"]

    def __len__(self) -> int:
        return self.batch.labels.shape[0]

    def __getitem__(self, index: int) -> Tuple[Tensor, Tensor, Tensor]:
        b = self.batch
        return b.images[index], b.labels[index], b.masks[index]

    def tensors(self, stamped_only: bool = False) -> Tuple[Tensor, Tensor, Tensor]:
        """All (images, labels, masks), optionally only the images that carry a stamp."""
        b = self.batch
        keep = b.labels < self.num_glyphs if stamped_only else torch.ones_like(b.labels, dtype=torch.bool)
        return b.images[keep], b.labels[keep], b.masks[keep]
