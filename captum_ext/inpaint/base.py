"""The inpainter interface and the safe call every user of an inpainter goes through.

An inpainter is any callable ``inpaint(images, holes) -> images`` with images ``(B, C, H, W)``
(floating point, in whatever space the caller works in) and holes ``(B, 1, H, W)`` with
``1 = missing``. :func:`apply_inpainter` wraps the call: it validates both tensors, zeroes the
hole before the call (nothing of the removed content can leak into the fill), checks the shape
of what comes back, re-composites ``(1 - H) * x + H * fill`` so known pixels stay bit-exact, and
gives images that are entirely hole (no boundary to inpaint from) a constant fallback.
"""

from typing import Callable, Optional, Union

import torch
from torch import Tensor

from captum_ext._utils import check_image_batch

InpainterFn = Callable[[Tensor, Tensor], Tensor]
FallbackType = Union[float, int, Tensor]


def check_holes(images: Tensor, holes: Tensor, name: str = "holes") -> Tensor:
    """Validate a hole mask against an image batch and return it as a bool tensor.

    Args:
        images (Tensor): image batch ``(B, C, H, W)``.
        holes (Tensor): ``(B, 1, H, W)`` (or ``(1, 1, H, W)``, broadcast over the batch) of
            0/1 values (bool, int or float); 1 marks a missing pixel.
        name (str): the argument name used in error messages.

    Returns:
        Tensor: bool holes of shape ``(B, 1, H, W)`` on ``images.device``.

    Examples::

        >>> x = torch.zeros(2, 3, 4, 4)
        >>> check_holes(x, torch.ones(1, 1, 4, 4)).shape
        torch.Size([2, 1, 4, 4])
    """
    check_image_batch("images", images)
    if not isinstance(holes, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(holes).__name__}")
    batch, _, height, width = images.shape
    if holes.dim() != 4 or holes.shape[1] != 1 or tuple(holes.shape[2:]) != (height, width) \
            or holes.shape[0] not in (1, batch):
        raise ValueError(
            f"`{name}` must have shape ({batch}, 1, {height}, {width}) (or (1, 1, {height}, "
            f"{width})) to match images {tuple(images.shape)}, got {tuple(holes.shape)}"
        )
    if holes.dtype != torch.bool:
        if not bool(((holes == 0) | (holes == 1)).all()):
            raise ValueError(f"`{name}` must be binary (0 = known, 1 = missing)")
        holes = holes != 0
    return holes.to(images.device).expand(batch, 1, height, width)


def _fallback_like(images: Tensor, fallback: FallbackType) -> Tensor:
    value = torch.as_tensor(fallback, dtype=images.dtype, device=images.device)
    return torch.broadcast_to(value, images.shape)


def apply_inpainter(
    inpainter: InpainterFn,
    images: Tensor,
    holes: Tensor,
    fallback: Optional[FallbackType] = None,
) -> Tensor:
    """Fill the holes of ``images`` with ``inpainter``, safely.

    Validates, zeroes the hole before the call, checks the returned shape, re-composites so
    known pixels are returned unchanged, and gives all-hole images the ``fallback`` value (an
    all-hole image has no boundary; Shapley methods evaluate this empty coalition).

    Args:
        inpainter (callable): ``inpaint(images, holes) -> images``.
        images (Tensor): ``(B, C, H, W)`` floating point.
        holes (Tensor): ``(B, 1, H, W)`` binary, 1 = missing.
        fallback (float or Tensor, optional): value for images that are entirely hole; a
            tensor must broadcast to ``images``. Default: the inpainter's own ``fallback``
            (built-ins) or 0 (plain callables). Inpainters that need no boundary (constant)
            fill all-hole images themselves.

    Returns:
        Tensor: the composite ``(1 - H) * images + H * fill``, shape of ``images``.

    Examples::

        >>> x = torch.arange(16.).reshape(1, 1, 4, 4)
        >>> h = torch.zeros(1, 1, 4, 4); h[..., 1, 1] = 1
        >>> out = apply_inpainter(lambda im, ho: torch.full_like(im, -1.0), x, h)
        >>> out[0, 0, 1, 1].item(), torch.equal(out[h == 0], x[h == 0])
        (-1.0, True)
    """
    if not callable(inpainter):
        raise TypeError(f"`inpainter` must be callable, got {type(inpainter).__name__}")
    holes = check_holes(images, holes)
    if not bool(holes.any()):
        return images
    from captum_ext.inpaint.inpainters import Inpainter  # local: avoids an import cycle

    if isinstance(inpainter, Inpainter):  # already validates, zeroes and composites
        out = inpainter(images, holes)
        if fallback is None or not inpainter.needs_boundary:
            return out
        return composite(images, holes, out, fallback, select=False)
    zeroed = images.masked_fill(holes, 0.0)
    filled = inpainter(zeroed, holes.to(images.dtype))
    return composite(images, holes, filled, 0.0 if fallback is None else fallback)


def composite(images: Tensor, holes: Tensor, filled: Tensor, fallback: FallbackType = 0.0,
              use_fallback: bool = True, select: bool = True) -> Tensor:
    """Return ``where(holes, filled, images)``, with all-hole images set to ``fallback``.

    Args:
        images (Tensor): ``(B, C, H, W)`` originals (their known pixels are kept exactly).
        holes (Tensor): bool ``(B, 1, H, W)``.
        filled (Tensor): what an inpainter returned; must have the shape of ``images``.
        fallback (float or Tensor): value for all-hole images.
        use_fallback (bool): whether all-hole images get ``fallback`` (False for inpainters
            that need no boundary, e.g. a constant).
        select (bool): False when ``filled`` already holds the known pixels exactly.

    Returns:
        Tensor: the composite.
    """
    if not isinstance(filled, Tensor) or filled.shape != images.shape:
        got = tuple(filled.shape) if isinstance(filled, Tensor) else type(filled).__name__
        raise ValueError(
            f"the inpainter must return a tensor of shape {tuple(images.shape)} (the images' "
            f"shape), got {got}"
        )
    out = torch.where(holes, filled.to(images.dtype), images) if select else filled
    if use_fallback:
        all_hole = holes.flatten(1).all(dim=1).view(-1, 1, 1, 1)
        if bool(all_hole.any()):
            out = torch.where(all_hole, _fallback_like(images, fallback), out)
    return out
