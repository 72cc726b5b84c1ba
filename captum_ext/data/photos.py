"""Real colour photos that ship inside the scikit-image wheel, as tensors (no download)."""

from functools import lru_cache
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from captum_ext._checks import check_int_at_least

#: Colour photos bundled with scikit-image (no network needed to load them).
PHOTO_NAMES: Tuple[str, ...] = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "stereo_motorcycle",
)


@lru_cache(maxsize=None)
def _load_uint8(name: str) -> np.ndarray:
    import skimage.data

    if name not in PHOTO_NAMES:
        raise ValueError(f"`name` must be one of {PHOTO_NAMES}, got {name!r}")
    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle returns (left, right, disparity)
        image = image[0]
    return np.ascontiguousarray(image[..., :3])


def _check_size(size: Union[int, Tuple[int, int]]) -> Tuple[int, int]:
    """``size`` as (H, W), or a ``TypeError``/``ValueError`` naming ``size`` (each side >= 1)."""
    if isinstance(size, (tuple, list)):
        if len(size) != 2:
            raise ValueError(f"`size` must be an int or a pair (H, W), got {size!r}")
        check_int_at_least("size", size[0], 1)
        check_int_at_least("size", size[1], 1)
        return int(size[0]), int(size[1])
    check_int_at_least("size", size, 1)
    return size, size


def load_photo(name: str, size: Optional[Union[int, Tuple[int, int]]] = None) -> Tensor:
    """Load one scikit-image colour photo as a float tensor (3, H, W) in [0, 1].

    Args:
        name (str): one of :data:`PHOTO_NAMES`.
        size (int or (int, int), optional): resize (antialiased bilinear) to ``(size, size)``
            or ``(H, W)``, each side >= 1 (else ``ValueError``). Default: the photo's own size.

    Returns:
        Tensor: (3, H, W) float32 in [0, 1].

    Examples::

        >>> load_photo("chelsea", size=32).shape
        torch.Size([3, 32, 32])
    """
    hw = None if size is None else _check_size(size)
    image = torch.from_numpy(_load_uint8(name)).permute(2, 0, 1).float().div_(255.0)
    if hw is None:
        return image
    resized = F.interpolate(image[None], size=hw, mode="bilinear", antialias=True, align_corners=False)
    return resized[0].clamp_(0.0, 1.0)


def load_photos(
    names: Optional[Sequence[str]] = None, size: Union[int, Tuple[int, int]] = 224
) -> Tensor:
    """Load several photos, resized to one size, as a batch (N, 3, H, W) in [0, 1].

    Args:
        names (sequence of str, optional): photos to load; default all of :data:`PHOTO_NAMES`.
            A single ``str`` is refused (``TypeError``): pass ``[name]`` or use
            :func:`load_photo`. An empty list gives an empty batch ``(0, 3, H, W)``.
        size (int or (int, int)): output size, each side >= 1. Default 224.

    Returns:
        Tensor: (N, 3, H, W) float32 in [0, 1].

    Examples::

        >>> load_photos(["astronaut", "coffee"], size=64).shape
        torch.Size([2, 3, 64, 64])
        >>> load_photos([], size=16).shape
        torch.Size([0, 3, 16, 16])
    """
    if isinstance(names, (str, bytes)):
        raise TypeError(f"`names` must be a list of photo names, not a str, got {names!r}; pass [{names!r}]")
    h, w = _check_size(size)
    names = list(PHOTO_NAMES if names is None else names)
    if not names:
        return torch.empty(0, 3, h, w)
    return torch.stack([load_photo(n, (h, w)) for n in names])


def photo_pyramid(scales: Sequence[int] = (128, 192, 288)) -> List[Tensor]:
    """Every photo at several scales (shorter side = each value), for background crops."""
    pool: List[Tensor] = []
    for name in PHOTO_NAMES:
        h, w = _load_uint8(name).shape[:2]
        for short in scales:
            ratio = short / min(h, w)
            pool.append(load_photo(name, (max(short, round(h * ratio)), max(short, round(w * ratio)))))
    return pool
