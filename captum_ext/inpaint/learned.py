"""An adapter that turns a learned inpainting network into an inpainter.

Learned inpainters differ in value range, in how they take the mask and in the sizes they
accept: LaMa takes RGB in [0, 1] and a 1-channel mask (1 = hole) as two arguments; DeepFill v2
ports take [-1, 1] and 5 channels ``[x * (1 - m), 1, m]``. :class:`LearnedInpainter` maps the
images from the caller's space to the network's, builds its input, pads to a multiple (or
resizes), runs it without gradients, and maps the result back.
"""

from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from captum_ext._checks import check_int_at_least, check_number
from captum_ext.inpaint.base import FallbackType, Inpainter

_FORMATS = ("image_mask", "concat", "deepfill")


class LearnedInpainter(Inpainter):
    """Wrap an ``nn.Module`` or a TorchScript file as an inpainter.

    Args:
        model (nn.Module or str): the network, or a path to a TorchScript file
            (``torch.jit.load``).
        value_range (tuple of two floats): the range the network expects its image in,
            e.g. ``(0, 1)`` (LaMa) or ``(-1, 1)`` (DeepFill). Default: ``(0, 1)``.
        mean (sequence of float, optional): per-channel mean of the caller's normalisation;
            with ``std``, images are un-normalised to [0, 1] first (e.g. ImageNet statistics).
            Without them, images are taken to be in [0, 1].
        std (sequence of float, optional): per-channel std of the caller's normalisation.
        input_format (str): ``"image_mask"``: ``model(image, mask)``;
            ``"concat"``: ``model(cat([image * (1 - m), m]))``;
            ``"deepfill"``: ``model(cat([image * (1 - m), ones, m]))``. Default: ``"image_mask"``.
        pad_multiple (int): pad height and width (reflect) up to a multiple of this, crop after.
            Default: 8.
        size (tuple of two ints, optional): resize to this size for the network and back
            (bilinear for the image, nearest for the mask) instead of padding.
        fallback (float or Tensor): value of all-hole images. Default: 0.

    Examples::

        >>> class Avg(nn.Module):  # a toy "network": fills with the known mean
        ...     def forward(self, image, mask):
        ...         keep = 1 - mask
        ...         mean = (image * keep).sum((2, 3), keepdim=True) / keep.sum((2, 3), keepdim=True)
        ...         return image * keep + mean * mask
        >>> x = torch.full((1, 3, 10, 10), 0.25); holes = torch.zeros(1, 1, 10, 10)
        >>> holes[..., 2:4, 2:4] = 1
        >>> out = LearnedInpainter(torch.jit.script(Avg()))(x, holes)
        >>> bool(torch.allclose(out, x))
        True
    """

    def __init__(
        self,
        model: Union[nn.Module, str],
        value_range: Tuple[float, float] = (0.0, 1.0),
        mean: Optional[Sequence[float]] = None,
        std: Optional[Sequence[float]] = None,
        input_format: str = "image_mask",
        pad_multiple: int = 8,
        size: Optional[Tuple[int, int]] = None,
        fallback: FallbackType = 0.0,
    ) -> None:
        super().__init__(fallback)
        if isinstance(model, str):
            model = torch.jit.load(model, map_location="cpu")
        if not callable(model):
            raise TypeError(f"`model` must be an nn.Module or a TorchScript path, got {type(model).__name__}")
        if input_format not in _FORMATS:
            raise ValueError(f"`input_format` must be one of {_FORMATS}, got {input_format!r}")
        if len(value_range) != 2 or not value_range[0] < value_range[1]:
            raise ValueError(f"`value_range` must be (low, high) with low < high, got {value_range}")
        if (mean is None) != (std is None):
            raise ValueError("`mean` and `std` must be given together")
        check_int_at_least("pad_multiple", pad_multiple, 1)
        if size is not None and (len(size) != 2 or min(size) < 1):
            raise ValueError(f"`size` must be (height, width) of positive ints, got {size}")
        for bound in value_range:
            check_number("value_range", bound)
        for name, stats in (("mean", mean), ("std", std)):
            for item in stats or ():
                check_number(name, item)
        self.model: nn.Module = model  # type: ignore[assignment]
        self.value_range: Tuple[float, float] = (float(value_range[0]), float(value_range[1]))
        self.mean: Optional[Sequence[float]] = mean
        self.std: Optional[Sequence[float]] = std
        self.input_format: str = input_format
        self.pad_multiple: int = pad_multiple
        self.size: Optional[Tuple[int, int]] = size

    def _affine(self, images: Tensor) -> Tuple[Tensor, Tensor]:
        """Return (scale, shift) with ``model_space = images * scale + shift``."""
        low, high = self.value_range
        if self.mean is None:
            scale, shift = torch.ones(1), torch.zeros(1)
        else:
            std = torch.as_tensor(self.std, dtype=torch.float64)
            scale, shift = std, torch.as_tensor(self.mean, dtype=torch.float64)
        scale, shift = scale * (high - low), shift * (high - low) + low
        view = (1, -1, 1, 1)
        return (scale.to(images.device, images.dtype).view(view),
                shift.to(images.device, images.dtype).view(view))

    def _run(self, image: Tensor, mask: Tensor) -> Tensor:
        known = image * (1 - mask)
        if self.input_format == "image_mask":
            return self.model(known, mask)
        if self.input_format == "concat":
            return self.model(torch.cat([known, mask], dim=1))
        return self.model(torch.cat([known, torch.ones_like(mask), mask], dim=1))

    def fill(self, images: Tensor, holes: Tensor) -> Tensor:
        scale, shift = self._affine(images)
        image = images * scale + shift
        mask = holes.to(images.dtype)
        height, width = images.shape[-2:]
        if self.size is not None:
            image = F.interpolate(image, size=self.size, mode="bilinear", align_corners=False)
            mask = F.interpolate(mask, size=self.size, mode="nearest")
        else:
            pad_h = -height % self.pad_multiple
            pad_w = -width % self.pad_multiple
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            image = F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
            mask = F.pad(mask, (0, pad_w, 0, pad_h), mode=mode)
        with torch.no_grad():
            out = self._run(image, mask)
        if not isinstance(out, Tensor) or out.dim() != 4 or out.shape[0] != images.shape[0] \
                or out.shape[1] != images.shape[1]:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"the learned inpainter returned {got}; expected "
                             f"({images.shape[0]}, {images.shape[1]}, H, W)")
        if self.size is not None:
            out = F.interpolate(out, size=(height, width), mode="bilinear", align_corners=False)
        else:
            out = out[..., :height, :width]
        return (out.to(images.dtype) - shift) / scale
