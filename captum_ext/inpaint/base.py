"""The inpainter interface and the safe call every user of an inpainter goes through.

The one contract of a fill (``inpainter=`` everywhere in captum-ext):

- an inpainter is a callable ``inpaint(images, holes) -> images``: images ``(B, C, H, W)``
  (floating point, in whatever space the caller works in) and holes ``(B, 1, H, W)`` with
  ``1 = missing``;
- it must not rely on what the images hold inside the hole: :func:`apply_inpainter` **zeroes
  the hole before every call** (nothing of the removed content can leak into the fill);
- only its values inside the hole are used: :func:`apply_inpainter` re-composites
  ``(1 - H) * x + H * fill``, so known pixels come back bit-exact;
- an image that is entirely hole has no boundary to inpaint from: it is not passed to an
  inpainter that needs a boundary and gets a constant ``fallback`` instead.

:class:`Inpainter` is the base class of the built-ins (this module, so that
:mod:`captum_ext.inpaint.inpainters` imports from here and never the other way round).
"""

from typing import Callable, Optional, Union

import torch
from torch import Tensor

from captum_ext._checks import check_image_batch

InpainterFn = Callable[[Tensor, Tensor], Tensor]
FallbackType = Union[float, int, Tensor]

__all__ = ["FallbackType", "Inpainter", "InpainterFn", "apply_inpainter", "check_holes",
           "composite"]


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


def _check_known_finite(images: Tensor, holes: Tensor) -> None:
    """NaN policy: a NaN or inf among the *known* pixels is an error (the hole may hold any)."""
    bad = ~(torch.isfinite(images) | holes)
    if bool(bad.any()):
        raise ValueError(
            f"`images` contains NaN or inf outside the hole ({int(bad.sum())} of "
            f"{images.numel()} values)"
        )


def _fallback_like(images: Tensor, fallback: FallbackType, name: str = "fallback") -> Tensor:
    """``fallback`` (a number or tensor) broadcast to ``images``; ValueError naming ``name``."""
    value = torch.as_tensor(fallback, dtype=images.dtype, device=images.device)
    try:
        return torch.broadcast_to(value, images.shape)
    except RuntimeError as err:
        raise ValueError(
            f"`{name}` of shape {tuple(value.shape)} does not broadcast to the images "
            f"{tuple(images.shape)}"
        ) from err


def _fill_by_rows(images: Tensor, holes: Tensor, fill: Callable[[Tensor, Tensor], Tensor],
                  fallback: Optional[FallbackType]) -> Tensor:
    """Composite ``fill`` on the images that have a boundary; all-hole images get ``fallback``.

    ``fill(images, holes)`` returns the composite for the rows it is given. With ``fallback``
    None every row goes to ``fill`` (inpainters that need no boundary, e.g. a constant).
    """
    if fallback is None:
        return fill(images, holes)
    all_hole = holes.flatten(1).all(dim=1)
    if not bool(all_hole.any()):
        return fill(images, holes)
    out = _fallback_like(images, fallback).clone()
    keep = ~all_hole
    if bool(keep.any()):  # an image without boundary never reaches the inpainter
        out[keep] = fill(images[keep], holes[keep])
    return out


class Inpainter:
    """Base class of the built-in inpainters.

    ``__call__(images, holes)`` validates both tensors, zeroes the hole, calls :meth:`fill` on
    the images that have at least one known pixel, re-composites so known pixels stay exact,
    and gives images that are entirely hole the ``fallback`` value (unless the subclass sets
    ``needs_boundary = False``, e.g. a constant, which fills every image itself).

    Subclasses implement ``fill(images, holes)``: ``images`` zeroed in the hole, ``holes`` a
    bool ``(B, 1, H, W)`` tensor; return a tensor of the images' shape (only its values inside
    the hole are used).

    Args:
        fallback (float or Tensor): value of images that are entirely hole. Default: 0.

    Examples::

        >>> class Two(Inpainter):
        ...     def fill(self, images, holes):
        ...         return torch.full_like(images, 2.0)
        >>> holes = torch.zeros(2, 1, 2, 2); holes[0, :, 0, 0] = 1; holes[1] = 1
        >>> Two(fallback=-1.0)(torch.ones(2, 1, 2, 2), holes).flatten().tolist()
        [2.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0]
    """

    needs_boundary: bool = True
    #: True when ``fill`` zeroes the hole itself and returns known pixels bit-exact (saves
    #: two full-image passes); ``__call__`` then skips its own zeroing and compositing.
    self_compositing: bool = False

    def __init__(self, fallback: FallbackType = 0.0) -> None:
        _check_fallback(fallback)
        self.fallback = fallback

    def fill(self, images: Tensor, holes: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def for_examples(self, index: Tensor) -> "Inpainter":
        """The inpainter to use for rows that belong to the examples ``index`` of a batch.

        The attribution classes evaluate many perturbed copies of each example; they call this
        with the example index of every row. Built-ins are the same for every example and
        return ``self``; :class:`ConstantInpainter` with one value per example selects rows.
        """
        return self

    def _composite(self, images: Tensor, holes: Tensor) -> Tensor:
        if self.self_compositing:
            return self.fill(images, holes)
        filled = self.fill(images.masked_fill(holes, 0.0), holes)
        return composite(images, holes, filled, use_fallback=False)

    def _inpaint(self, images: Tensor, holes: Tensor, fallback: Optional[FallbackType],
                 check_known: bool = True) -> Tensor:
        holes = check_holes(images, holes)
        if not bool(holes.any()):
            return images
        if check_known:
            _check_known_finite(images, holes)
        if not self.needs_boundary:
            fallback = None
        elif fallback is None:
            fallback = self.fallback
        return _fill_by_rows(images, holes, self._composite, fallback)

    def __call__(self, images: Tensor, holes: Tensor) -> Tensor:
        return self._inpaint(images, holes, None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def apply_inpainter(
    inpainter: InpainterFn,
    images: Tensor,
    holes: Tensor,
    fallback: Optional[FallbackType] = None,
) -> Tensor:
    """Fill the holes of ``images`` with ``inpainter``, safely: the one way to call a fill.

    Validates both tensors (a NaN or inf among the known pixels raises; the hole may hold
    anything), **zeroes the hole before the call** (for every inpainter, built-in or a plain
    callable), does not call the inpainter on images that are entirely hole (they have no
    boundary; Shapley methods evaluate this empty coalition) but gives them ``fallback``,
    checks the returned shape, and re-composites so known pixels are returned unchanged.

    Resolve names and numbers first with :func:`captum_ext.inpaint.resolve_inpainter`.

    Args:
        inpainter (callable): ``inpaint(images, holes) -> images``. A plain callable receives
            the images with the hole zeroed and the holes as a 0/1 tensor of the images' dtype.
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
        >>> seen = []
        >>> out = apply_inpainter(lambda im, ho: seen.append(im[0, 0, 1, 1].item()) or
        ...                       torch.full_like(im, -1.0), x, h)
        >>> out[0, 0, 1, 1].item(), seen, torch.equal(out[h == 0], x[h == 0])
        (-1.0, [0.0], True)
    """
    if fallback is not None:
        _check_fallback(fallback)
    return _apply_inpainter(inpainter, images, holes, fallback, check_known=True)


def _check_fallback(fallback: FallbackType) -> None:
    """``fallback`` is a finite number or a finite tensor."""
    if isinstance(fallback, bool) or not isinstance(fallback, (int, float, Tensor)):
        raise TypeError(
            f"`fallback` must be a number or a Tensor, got {type(fallback).__name__}"
        )
    if not bool(torch.isfinite(torch.as_tensor(fallback, dtype=torch.float64)).all()):
        raise ValueError(f"`fallback` must be finite, got {fallback}")


def _apply_inpainter(inpainter: InpainterFn, images: Tensor, holes: Tensor,
                     fallback: Optional[FallbackType], check_known: bool) -> Tensor:
    """:func:`apply_inpainter`; ``check_known=False`` skips the NaN scan of the known pixels
    for callers that validated them already (the attribution classes check their inputs once
    per call instead of once per forward batch)."""
    if not callable(inpainter):
        raise TypeError(f"`inpainter` must be callable, got {type(inpainter).__name__}")
    if isinstance(inpainter, Inpainter):
        return inpainter._inpaint(images, holes, fallback, check_known)
    holes = check_holes(images, holes)
    if not bool(holes.any()):
        return images
    if check_known:
        _check_known_finite(images, holes)

    def call(rows: Tensor, row_holes: Tensor) -> Tensor:
        filled = inpainter(rows.masked_fill(row_holes, 0.0), row_holes.to(rows.dtype))
        return composite(rows, row_holes, filled, use_fallback=False)

    return _fill_by_rows(images, holes, call, 0.0 if fallback is None else fallback)


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

    Examples::

        >>> holes = torch.tensor([[[[True, False]]], [[[True, True]]]])
        >>> composite(torch.ones(2, 1, 1, 2), holes, torch.zeros(2, 1, 1, 2), 5.0).tolist()
        [[[[0.0, 1.0]]], [[[5.0, 5.0]]]]
    """
    if not isinstance(filled, Tensor) or filled.shape != images.shape:
        got = tuple(filled.shape) if isinstance(filled, Tensor) else type(filled).__name__
        raise ValueError(
            f"`filled`: the inpainter must return a tensor of shape {tuple(images.shape)} "
            f"(the images' shape), got {got}"
        )
    if use_fallback:
        _check_fallback(fallback)
    out = torch.where(holes, filled.to(images.dtype), images) if select else filled
    if use_fallback:
        all_hole = holes.flatten(1).all(dim=1).view(-1, 1, 1, 1)
        if bool(all_hole.any()):
            out = torch.where(all_hole, _fallback_like(images, fallback), out)
    return out
