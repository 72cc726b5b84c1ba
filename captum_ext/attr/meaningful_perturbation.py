"""Meaningful Perturbation (Fong and Vedaldi, ICCV 2017), with blur or inpainting fill.

A low-resolution mask ``m`` (1 = keep) is optimised per image so that the perturbed image
``Phi = x * M + F * (1 - M)`` (``M`` = ``m`` upsampled) has a low target probability while
deleting as little as possible:

    loss = l1_coeff * sum|1 - m| + tv_coeff * sum |grad m|^tv_beta + p_c(Phi)

minimised with Adam, ``m`` clamped to [0, 1] after every step; the saliency is ``1 - M``.

- ``inpainter="blur"`` (the original): ``F`` is the Gaussian-blurred image (it still carries
  the removed content at low frequencies).
- any other inpainter (Agarwal and Nguyen, ACCV 2020): the mask is binarized at
  ``tau = max(0.5, (max M + min M) / 2)``, the hole ``M_b == 0`` is re-inpainted every
  iteration, and the gradient passes straight through:
  ``M_st = M + (M_b - M).detach()``, ``Phi = x * M_st + I.detach() * (1 - M_st)``.

  Chosen here: the forward pass sees only ``x`` (kept) or the inpainted fill (removed), but
  the gradient ``x - I`` is zero wherever ``I == x``, and an inpainter that keeps known pixels
  exactly (all of ours) returns ``I == x`` on every kept pixel: the mask could never leave its
  all-ones start. (The authors' generative inpainter regenerates the whole image, so its
  output only approximates ``x`` there.) So on kept pixels ``I`` is replaced by a removal
  proxy, ``st_proxy``: the per-image channel mean (default), the blurred image, or a second
  inpainting with the kept pixels as the hole.

Two presets (``preset=``) fix every hyperparameter an argument leaves as ``None``:

- ``"default"``: the mask starts all ones (keep everything), ``ceil(H/8) x ceil(W/8)`` cells,
  ``st_proxy="mean"``.
- ``"paper"``: the settings of Agarwal and Nguyen's code (``formal_MP_single_image.py``, MP and
  MP-G): a 28 x 28 mask started from ``numpy.random.seed(0); numpy.random.rand(28, 28)``
  (uniform in [0, 1), the same start for every image), nearest upsampling, Adam lr 0.1, 300
  iterations, ``1e-4 * sum|1 - m| + 1e-2 * sum |grad m|^3 + softmax_c``, ``m`` clamped to
  [0, 1], jitter 4 px and blur radius 10 at 224 px; their gradient rule: for the blur fill
  the plain gradient of the blend, for an inpainter the straight-through binarized mask (they
  overwrite ``upsampled_mask.data`` with the binary mask, so the forward pass sees ``M_b`` and
  the backward pass differentiates through ``M``) with ``x - I`` from an inpainting that
  regenerates the kept pixels too. Their inpainter is a generative network that this
  package does not ship; ``st_proxy="blur"`` stands in for its approximate, smoothed
  reconstruction of the kept pixels (a choice, not theirs). Also not reproduced: their jitter
  crops a 228 px resize under a fixed mask (offsets 0..3); here the perturbed image is
  shifted by up to ``jitter`` px (replicate padding), the input is never resized.

Both presets use the defaults of Agarwal and Nguyen for everything else; the jitter and
blur scale with the image height (``4 H / 224`` and ``10 H / 224``) when left as ``None``.
"""

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Literal, Optional, Tuple, Union, overload

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import PerturbationAttribution
from captum.log import log_usage
from torch import Tensor, nn

from captum_ext._checks import (
    check_choice,
    check_finite,
    check_image_batch,
    check_int_at_least,
    check_number,
    check_positive,
    check_target,
    check_tensor,
    select_additional_args,
    select_target,
)
from captum_ext._compat import TargetType, _select_targets
from captum_ext._utils import deprecated_kwarg, preserved_model_state, warn_external
from captum_ext.inpaint.base import apply_inpainter
from captum_ext.inpaint.registry import resolve_inpainter

PRESETS: Dict[str, Dict[str, Any]] = {
    "default": dict(mask_shape=None, n_iter=300, lr=0.1, l1_coeff=1e-4, tv_coeff=1e-2,
                    tv_beta=3.0, upsample="nearest", st_proxy="mean", mask_init="ones"),
    "paper": dict(mask_shape=(28, 28), n_iter=300, lr=0.1, l1_coeff=1e-4, tv_coeff=1e-2,
                  tv_beta=3.0, upsample="nearest", st_proxy="blur", mask_init="random"),
}
"""Hyperparameters of each ``preset``; an argument passed explicitly overrides its preset."""


@dataclass(frozen=True)
class MeaningfulPerturbationDiagnostics:
    """What one :meth:`MeaningfulPerturbation.attribute` call optimised (``return_diagnostics``).

    Args:
        mask (Tensor): ``(B, 1, h, w)`` final low-resolution masks (1 = keep).
        initial_mask (Tensor): ``(B, 1, h, w)`` the masks the optimisation started from.
        score (Tensor): ``(B,)`` target score (softmax probability with ``use_softmax``) of
            the last perturbed image evaluated; NaN when ``n_iter == 0``.
        loss (Tensor): ``(B,)`` objective at the last iteration; NaN when ``n_iter == 0``.
        settings (dict): every hyperparameter as resolved for this call (preset, defaults
            scaled to the image, explicit arguments).

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3, padding=1), torch.nn.AdaptiveAvgPool2d(1),
        ...                           torch.nn.Flatten())
        >>> _, diagnostics = MeaningfulPerturbation(net).attribute(
        ...     torch.rand(1, 3, 16, 16), target=0, n_iter=0, return_diagnostics=True)
        >>> diagnostics.mask.shape, bool(diagnostics.loss.isnan().all())
        (torch.Size([1, 1, 2, 2]), True)
    """

    mask: Tensor
    initial_mask: Tensor
    score: Tensor
    loss: Tensor
    settings: Dict[str, Any] = field(default_factory=dict)


def total_variation(mask: Tensor, beta: float) -> Tensor:
    """Per-image ``sum |m[i+1, j] - m[i, j]|^beta + |m[i, j+1] - m[i, j]|^beta``.

    Args:
        mask (Tensor): ``(B, 1, h, w)``.
        beta (float): the exponent.

    Returns:
        Tensor: ``(B,)``.

    Examples::

        >>> m = torch.tensor([[[[0., 1.], [0., 1.]]]])
        >>> total_variation(m, 3.0).tolist()
        [2.0]
    """
    dy = (mask[..., 1:, :] - mask[..., :-1, :]).abs().pow(beta).flatten(1).sum(1)
    dx = (mask[..., :, 1:] - mask[..., :, :-1]).abs().pow(beta).flatten(1).sum(1)
    return dy + dx


def binarize(mask: Tensor) -> Tensor:
    """Keep (1) where ``mask >= tau``, ``tau = max(0.5, (max + min) / 2)`` per image.

    Args:
        mask (Tensor): ``(B, 1, H, W)`` masks in [0, 1].

    Returns:
        Tensor: the binary masks, same shape and dtype.

    Examples::

        >>> binarize(torch.tensor([[[[0.2, 0.9], [0.6, 0.7]]]])).flatten().tolist()
        [0.0, 1.0, 1.0, 1.0]
    """
    flat = mask.flatten(1)
    tau = ((flat.amax(1) + flat.amin(1)) / 2).clamp_min(0.5).view(-1, 1, 1, 1)
    return (mask >= tau).to(mask.dtype)


def binarise(mask: Tensor) -> Tensor:
    """Deprecated British spelling of :func:`binarize` (kept for one release).

    Examples::

        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     binarise(torch.ones(1, 1, 1, 1)).item()
        1.0
    """
    warn_external("`binarise` is deprecated; use `binarize`", DeprecationWarning)
    return binarize(mask)


def paper_initial_mask(shape: Tuple[int, int] = (28, 28), seed: int = 0) -> Tensor:
    """The authors' random start: ``numpy.random.seed(seed); numpy.random.rand(*shape)``.

    Agarwal and Nguyen's ``formal_MP_single_image.py`` (``--mask_init random``, the default)
    seeds NumPy with 0 and draws a 28 x 28 uniform mask, the same for every image.

    Args:
        shape (tuple of two ints): mask size. Default: ``(28, 28)``.
        seed (int): NumPy seed. Default: 0 (the authors').

    Returns:
        Tensor: ``(1, 1, h, w)`` float64 values in [0, 1).

    Examples::

        >>> m = paper_initial_mask()
        >>> m.shape, round(m[0, 0, 0, 0].item(), 6)
        (torch.Size([1, 1, 28, 28]), 0.548814)
    """
    values = np.random.RandomState(seed).rand(*shape)
    return torch.from_numpy(values).view(1, 1, *shape)


def _blur(images: Tensor, sigma: float) -> Tensor:
    from kornia.filters import gaussian_blur2d

    height, width = images.shape[-2:]
    kh, kw = (min(2 * int(3 * sigma + 0.5) + 1, 2 * ((n - 1) // 2) + 1) for n in (height, width))
    return gaussian_blur2d(images, (kh, kw), (sigma, sigma), border_type="reflect")


class MeaningfulPerturbation(PerturbationAttribution):
    """Meaningful Perturbation: an optimised deletion mask, with blur or inpainting fill.

    Args:
        forward_func (Callable): the classifier (logits, or probabilities with
            ``use_softmax=False``).
        inpainter (str, number, Inpainter or callable): how removed pixels are filled.
            ``"blur"`` (default) is the original method: blend with the Gaussian-blurred image.
            Anything else goes through :func:`captum_ext.inpaint.resolve_inpainter` (a
            registered name such as ``"harmonic"``, a number for a constant, an ``Inpainter``
            or a callable ``inpaint(images, holes) -> images``) and runs the binarized,
            straight-through inpainting variant; use ``captum_ext.inpaint.BlurInpainter()``
            for a blur *inpainter*. ``fill=`` is the deprecated name of this argument.

    Examples::

        >>> _ = torch.manual_seed(0); net = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
        >>> x = torch.rand(2, 3, 16, 16); _ = net(x)
        >>> mp = MeaningfulPerturbation(net, inpainter="harmonic")
        >>> sal = mp.attribute(x, target=0, n_iter=3)
        >>> sal.shape, bool((sal >= 0).all() and (sal <= 1).all())
        (torch.Size([2, 3, 16, 16]), True)
        >>> sal, diag = mp.attribute(x, target=0, n_iter=0, preset="paper",
        ...                          return_diagnostics=True)
        >>> diag.mask.shape, diag.settings["mask_init"]
        (torch.Size([2, 1, 28, 28]), 'random')
    """

    def __init__(
        self, forward_func: Callable[..., Tensor], inpainter: Any = "blur", **kwargs: Any
    ) -> None:
        inpainter = deprecated_kwarg(kwargs, "fill", "inpainter", inpainter, "blur")
        if kwargs:
            raise TypeError(f"unexpected keyword argument(s) {sorted(kwargs)}")
        super().__init__(forward_func)
        self.inpainter: Optional[Callable[..., Tensor]] = (
            None if isinstance(inpainter, str) and inpainter == "blur"
            else resolve_inpainter(inpainter)
        )

    @overload
    def attribute(
        self,
        inputs: Tensor,
        target: TargetType = ...,
        additional_forward_args: Any = ...,
        preset: str = ...,
        mask_shape: Optional[Tuple[int, int]] = ...,
        n_iter: Optional[int] = ...,
        lr: Optional[float] = ...,
        l1_coeff: Optional[float] = ...,
        tv_coeff: Optional[float] = ...,
        tv_beta: Optional[float] = ...,
        jitter: Optional[int] = ...,
        blur_sigma: Optional[float] = ...,
        upsample: Optional[str] = ...,
        st_proxy: Optional[str] = ...,
        mask_init: Union[None, str, Tensor] = ...,
        use_softmax: bool = ...,
        seed: int = ...,
        internal_batch_size: Optional[int] = ...,
        return_diagnostics: Literal[False] = ...,
    ) -> Tensor: ...

    @overload
    def attribute(
        self,
        inputs: Tensor,
        target: TargetType = ...,
        additional_forward_args: Any = ...,
        preset: str = ...,
        mask_shape: Optional[Tuple[int, int]] = ...,
        n_iter: Optional[int] = ...,
        lr: Optional[float] = ...,
        l1_coeff: Optional[float] = ...,
        tv_coeff: Optional[float] = ...,
        tv_beta: Optional[float] = ...,
        jitter: Optional[int] = ...,
        blur_sigma: Optional[float] = ...,
        upsample: Optional[str] = ...,
        st_proxy: Optional[str] = ...,
        mask_init: Union[None, str, Tensor] = ...,
        use_softmax: bool = ...,
        seed: int = ...,
        internal_batch_size: Optional[int] = ...,
        *,
        return_diagnostics: Literal[True],
    ) -> Tuple[Tensor, MeaningfulPerturbationDiagnostics]: ...

    @log_usage()
    def attribute(
        self,
        inputs: Tensor,
        target: TargetType = None,
        additional_forward_args: Any = None,
        preset: str = "default",
        mask_shape: Optional[Tuple[int, int]] = None,
        n_iter: Optional[int] = None,
        lr: Optional[float] = None,
        l1_coeff: Optional[float] = None,
        tv_coeff: Optional[float] = None,
        tv_beta: Optional[float] = None,
        jitter: Optional[int] = None,
        blur_sigma: Optional[float] = None,
        upsample: Optional[str] = None,
        st_proxy: Optional[str] = None,
        mask_init: Union[None, str, Tensor] = None,
        use_softmax: bool = True,
        seed: int = 0,
        internal_batch_size: Optional[int] = None,
        return_diagnostics: bool = False,
        **kwargs: Any,
    ) -> Union[Tensor, Tuple[Tensor, Any]]:
        r"""Optimise a deletion mask per image and return the saliency ``1 - M``.

        Every hyperparameter left as ``None`` comes from ``preset`` (see :data:`PRESETS`).

        Args:
            inputs (Tensor): images ``(B, C, H, W)``, finite.
            target (int, tuple, Tensor or list): output index per image, as in Captum.
                Required with ``use_softmax`` (the softmax of the whole output sums to 1, so
                there is nothing to minimise); with ``use_softmax=False`` it may be None only
                for a model with one output per image.
            additional_forward_args (Any, optional): extra model arguments; tensors with a
                first dimension have one row per image (Captum's rule).
            preset (str): ``"default"`` or ``"paper"`` (the settings of Agarwal and Nguyen's
                code, module docstring). Default: ``"default"``.
            mask_shape (tuple of two ints, optional): mask size. ``"default"``:
                ``(ceil(H/8), ceil(W/8))`` (28 x 28 at 224); ``"paper"``: ``(28, 28)``.
            n_iter (int, optional): Adam iterations. Both presets: 300.
            lr (float, optional): Adam learning rate. Both presets: 0.1.
            l1_coeff (float, optional): weight of ``sum |1 - m|``. Both presets: 1e-4.
            tv_coeff (float, optional): weight of the total variation. Both presets: 1e-2.
            tv_beta (float, optional): total-variation exponent. Both presets: 3.
            jitter (int, optional): random shift of ``Phi`` by up to this many pixels each
                iteration. Default: ``round(4 H / 224)``.
            blur_sigma (float, optional): blur of ``inpainter="blur"`` and of
                ``st_proxy="blur"``. Default: ``10 H / 224``.
            upsample (str, optional): ``"nearest"`` or ``"bilinear"`` mask upsampling. Both
                presets: ``"nearest"``.
            st_proxy (str, optional): inpainting fill only: the value of ``I`` on kept pixels,
                which sets their straight-through gradient ``x - I``: ``"mean"`` (per-image
                channel mean), ``"blur"`` (blurred image) or ``"inpaint"`` (inpaint the kept
                pixels from the removed ones). ``"default"``: ``"mean"``; ``"paper"``:
                ``"blur"``.
            mask_init (str or Tensor, optional): the starting mask: ``"ones"`` (keep all),
                ``"random"`` (:func:`paper_initial_mask` with NumPy seed ``seed``: the authors'
                start for ``seed=0``), or a tensor ``(h, w)`` or ``(B, 1, h, w)`` in [0, 1].
                ``"default"``: ``"ones"``; ``"paper"``: ``"random"``.
            use_softmax (bool): apply softmax to the output before taking ``p_c``. Default: True.
            seed (int): seeds the jitter offsets (one offset per iteration, shared by all
                images, so an image's result never depends on its batch) and
                ``mask_init="random"``. Default: 0.
            internal_batch_size (int, optional): the most perturbed images per forward pass
                (each iteration evaluates one per image): images are optimised this many at a
                time. The result does not depend on it. Default: all at once.
            return_diagnostics (bool): also return a
                :class:`MeaningfulPerturbationDiagnostics`. ``return_mask=True`` is its
                deprecated predecessor (returns ``(saliency, mask)``).

        Returns:
            Tensor: saliency ``1 - M`` of the shape of ``inputs`` (the same for every channel),
            and the :class:`MeaningfulPerturbationDiagnostics` if ``return_diagnostics``.
        """
        return_mask = False
        if "return_mask" in kwargs:
            return_mask = bool(kwargs.pop("return_mask"))
            warn_external("`return_mask` is deprecated; use `return_diagnostics=True` (the mask "
                          "is `diagnostics.mask`)", DeprecationWarning)
        if kwargs:
            raise TypeError(f"unexpected keyword argument(s) {sorted(kwargs)}")
        if isinstance(inputs, tuple):
            raise TypeError("`inputs` must be a single image tensor for MeaningfulPerturbation")
        check_image_batch("inputs", inputs)
        check_finite("inputs", inputs)
        batch = inputs.shape[0]
        settings = self._settings(inputs, preset, dict(
            mask_shape=mask_shape, n_iter=n_iter, lr=lr, l1_coeff=l1_coeff, tv_coeff=tv_coeff,
            tv_beta=tv_beta, jitter=jitter, blur_sigma=blur_sigma, upsample=upsample,
            st_proxy=st_proxy, mask_init=mask_init), seed, use_softmax)
        check_target(target, batch)
        if target is None and use_softmax:
            raise ValueError(
                "`target` is required with use_softmax=True: the softmax over all outputs sums "
                "to 1, so the mask would have nothing to minimise (pass e.g. "
                "target=model(inputs).argmax(1))")
        args = () if additional_forward_args is None else (
            additional_forward_args if isinstance(additional_forward_args, tuple)
            else (additional_forward_args,))
        select_additional_args(args, slice(None), batch)  # raises on a misaligned tensor
        if internal_batch_size is not None:
            check_int_at_least("internal_batch_size", internal_batch_size, 1)
        initial = self._initial_mask(inputs, settings, seed)

        step = max(1, internal_batch_size or batch)
        parts = []
        model = self.forward_func if isinstance(self.forward_func, nn.Module) else None
        with preserved_model_state(model) if model is not None else contextlib.nullcontext():
            for start in range(0, batch, step):  # chunks of images (memory bound)
                rows = slice(start, min(start + step, batch))
                parts.append(self._optimise(
                    inputs[rows].detach(), select_target(target, rows),
                    select_additional_args(args, rows, batch), initial[rows], settings,
                    use_softmax, seed))
        if parts:
            mask, score, loss = (torch.cat(t) for t in zip(*parts))
        else:
            mask, score = initial, inputs.new_zeros(0)
            loss = score
        height, width = inputs.shape[-2:]
        saliency = 1 - self._upsample(mask, (height, width), settings["upsample"])
        saliency = saliency.expand_as(inputs).contiguous()
        if return_mask:
            return saliency, mask
        if not return_diagnostics:
            return saliency
        return saliency, MeaningfulPerturbationDiagnostics(mask, initial, score, loss, settings)

    @staticmethod
    def _settings(inputs: Tensor, preset: str, given: Dict[str, Any], seed: int,
                  use_softmax: bool) -> Dict[str, Any]:
        """Resolve and validate the hyperparameters: explicit value, else the preset's."""
        check_choice("preset", preset, PRESETS)
        height, width = inputs.shape[-2:]
        s = dict(PRESETS[preset])
        s.update({k: v for k, v in given.items() if v is not None})
        if s["mask_shape"] is None:
            s["mask_shape"] = (math.ceil(height / 8), math.ceil(width / 8))
        if s.get("jitter") is None:
            s["jitter"] = round(4 * height / 224)
        if s.get("blur_sigma") is None:
            s["blur_sigma"] = 10.0 * height / 224
        shape = s["mask_shape"]
        if not (isinstance(shape, (tuple, list)) and len(shape) == 2):
            raise ValueError(f"`mask_shape` must be (h, w) of positive ints, got {shape}")
        for i, side in enumerate(shape):
            check_int_at_least(f"mask_shape[{i}]", side, 1)
        s["mask_shape"] = tuple(shape)
        check_int_at_least("n_iter", s["n_iter"], 0)
        for name in ("lr", "tv_beta", "blur_sigma"):
            check_positive(name, s[name])
        for name in ("l1_coeff", "tv_coeff"):
            check_positive(name, s[name], allow_zero=True)
        check_int_at_least("jitter", s["jitter"], 0)
        check_choice("upsample", s["upsample"], ("nearest", "bilinear"))
        check_choice("st_proxy", s["st_proxy"], ("mean", "blur", "inpaint"))
        if isinstance(s["mask_init"], str):
            check_choice("mask_init", s["mask_init"], ("ones", "random"))
        check_number("seed", seed, low=0, high=2**32 - 1, integer=True)
        s.update(preset=preset, seed=seed, use_softmax=use_softmax)
        return s

    @staticmethod
    def _initial_mask(inputs: Tensor, settings: Dict[str, Any], seed: int) -> Tensor:
        """``(B, 1, h, w)`` starting masks (the same start for every image unless given per image)."""
        batch = inputs.shape[0]
        h, w = settings["mask_shape"]
        init = settings["mask_init"]
        if isinstance(init, str):
            start = (torch.ones(1, 1, h, w) if init == "ones"
                     else paper_initial_mask((h, w), seed))
        else:
            check_tensor("mask_init", init, dims=(2, 4), finite=True)
            start = init.detach().reshape(1, 1, h, w) if init.dim() == 2 else init.detach()
            if tuple(start.shape[1:]) != (1, h, w) or start.shape[0] not in (1, batch):
                raise ValueError(f"`mask_init` must have shape ({h}, {w}) or ({batch}, 1, {h}, "
                                 f"{w}), got {tuple(init.shape)}")
            if bool((start < 0).any() or (start > 1).any()):
                raise ValueError("`mask_init` must lie in [0, 1]")
            settings["mask_init"] = "tensor"
        start = start.to(device=inputs.device, dtype=inputs.dtype)
        return start.expand(batch, 1, h, w).clone()

    @staticmethod
    def _upsample(mask: Tensor, size: Tuple[int, int], mode: str) -> Tensor:
        if mode == "nearest":
            return F.interpolate(mask, size=size, mode="nearest")
        return F.interpolate(mask, size=size, mode="bilinear", align_corners=False)

    def _perturbed(self, x: Tensor, big_mask: Tensor, blurred: Optional[Tensor],
                   proxy: Tensor, st_proxy: str) -> Tensor:
        if self.inpainter is None:
            assert blurred is not None
            return x * big_mask + blurred * (1 - big_mask)
        with torch.no_grad():
            keep = binarize(big_mask)
            filled = apply_inpainter(self.inpainter, x, keep == 0)
            if st_proxy == "inpaint":
                proxy = apply_inpainter(self.inpainter, x, keep == 1)
            filled = torch.where(keep == 1, proxy, filled)  # gradient-only on kept pixels
        straight = big_mask + (keep - big_mask).detach()
        return x * straight + filled * (1 - straight)

    def _optimise(self, x: Tensor, target: TargetType, args: Tuple[Any, ...], initial: Tensor,
                  s: Dict[str, Any], use_softmax: bool, seed: int
                  ) -> Tuple[Tensor, Tensor, Tensor]:
        """Optimise the masks of one chunk; return masks, last scores and last losses."""
        height, width = x.shape[-2:]
        mask = initial.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([mask], lr=s["lr"])
        st_proxy, jitter = s["st_proxy"], s["jitter"]
        blurred = (_blur(x, s["blur_sigma"])
                   if self.inpainter is None or st_proxy == "blur" else None)
        proxy = (blurred if st_proxy == "blur" and blurred is not None
                 else x.mean((2, 3), keepdim=True).expand_as(x))
        generator = torch.Generator().manual_seed(seed)
        score = loss = torch.full((x.shape[0],), math.nan, dtype=x.dtype, device=x.device)
        with torch.enable_grad():
            for _ in range(s["n_iter"]):
                big = self._upsample(mask, (height, width), s["upsample"])
                phi = self._perturbed(x, big, blurred, proxy, st_proxy)
                if jitter:
                    dy, dx = torch.randint(0, 2 * jitter + 1, (2,), generator=generator).tolist()
                    phi = F.pad(phi, (jitter,) * 4, mode="replicate")[..., dy:dy + height,
                                                                        dx:dx + width]
                out = self.forward_func(phi, *args)
                if target is None and out.reshape(x.shape[0], -1).shape[1] != 1:
                    raise ValueError(
                        "`target` is required: the model returns "
                        f"{out.reshape(x.shape[0], -1).shape[1]} values per image")
                prob = torch.softmax(out, dim=1) if use_softmax else out
                score = _select_targets(prob, target).reshape(x.shape[0], -1).sum(1)
                loss = (s["l1_coeff"] * (1 - mask).abs().flatten(1).sum(1)
                        + s["tv_coeff"] * total_variation(mask, s["tv_beta"]) + score)
                (grad,) = torch.autograd.grad(loss.sum(), mask)
                mask.grad = grad
                optimizer.step()
                with torch.no_grad():
                    mask.clamp_(0.0, 1.0)
        return mask.detach(), score.detach(), loss.detach()
