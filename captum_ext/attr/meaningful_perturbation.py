"""Meaningful Perturbation (Fong and Vedaldi, ICCV 2017), with blur or inpainting fill.

A low-resolution mask ``m`` (1 = keep) is optimised per image so that the perturbed image
``Phi = x * M + F * (1 - M)`` (``M`` = ``m`` upsampled) has a low target probability while
deleting as little as possible:

    loss = l1_coeff * sum|1 - m| + tv_coeff * sum |grad m|^tv_beta + p_c(Phi)

minimised with Adam, ``m`` clamped to [0, 1] after every step; the saliency is ``1 - M``.

- ``fill="blur"`` (the original): ``F`` is the Gaussian-blurred image (it still carries the
  removed content at low frequencies).
- an inpainter (Agarwal and Nguyen, ACCV 2020): the mask is binarised at
  ``tau = max(0.5, (max M + min M) / 2)``, the hole ``M_b == 0`` is re-inpainted every
  iteration, and the gradient passes straight through:
  ``M_st = M + (M_b - M).detach()``, ``Phi = x * M_st + I.detach() * (1 - M_st)``.

  Chosen here: the forward pass sees only ``x`` (kept) or the inpainted fill (removed), but
  the gradient ``x - I`` is zero wherever ``I == x``, and an inpainter that keeps known pixels
  exactly (all of ours) returns ``I == x`` on every kept pixel: the mask could never leave its
  all-ones start. (A generative network's output only approximates ``x`` there.) So on kept
  pixels ``I`` is replaced by a removal proxy, ``st_proxy``: the per-image channel mean
  (default), the blurred image, or a second inpainting with the kept pixels as the hole.

Hyperparameter defaults are those of Agarwal and Nguyen at 224 x 224 (28 x 28 mask, jitter 4,
blur radius 10, Adam lr 0.1, 300 iterations, ``1e-4`` and ``1e-2``); the mask size, jitter and
blur sigma scale with the image when left as ``None``.
"""

import math
from typing import Any, Callable, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from captum.attr import PerturbationAttribution
from captum.log import log_usage
from torch import Tensor

from captum_ext._compat import TargetType, _select_targets
from captum_ext._utils import check_image_batch, check_int_at_least, check_positive
from captum_ext.inpaint.base import apply_inpainter
from captum_ext.inpaint.registry import InpainterLike, get_inpainter


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


def binarise(mask: Tensor) -> Tensor:
    """Keep (1) where ``mask >= tau``, ``tau = max(0.5, (max + min) / 2)`` per image.

    Examples::

        >>> binarise(torch.tensor([[[[0.2, 0.9], [0.6, 0.7]]]])).flatten().tolist()
        [0.0, 1.0, 1.0, 1.0]
    """
    flat = mask.flatten(1)
    tau = ((flat.amax(1) + flat.amin(1)) / 2).clamp_min(0.5).view(-1, 1, 1, 1)
    return (mask >= tau).to(mask.dtype)


def _blur(images: Tensor, sigma: float) -> Tensor:
    from kornia.filters import gaussian_blur2d

    height, width = images.shape[-2:]
    size = tuple(min(2 * int(3 * sigma + 0.5) + 1, 2 * ((n - 1) // 2) + 1) for n in (height, width))
    return gaussian_blur2d(images, size, (sigma, sigma), border_type="reflect")


class MeaningfulPerturbation(PerturbationAttribution):
    """Meaningful Perturbation: an optimised deletion mask, with blur or inpainting fill.

    Args:
        forward_func (Callable): the classifier (logits, or probabilities with
            ``use_softmax=False``).
        fill (str or callable): ``"blur"`` (the original: blend with the blurred image), or
            an inpainter (a name for :func:`captum_ext.inpaint.get_inpainter`, e.g.
            ``"harmonic"``, or a callable); use ``captum_ext.inpaint.BlurInpainter()`` for a
            blur *inpainter*. Default: ``"blur"``.

    Examples::

        >>> _ = torch.manual_seed(0); net = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
        >>> x = torch.rand(2, 3, 16, 16); _ = net(x)
        >>> mp = MeaningfulPerturbation(net, fill="harmonic")
        >>> sal = mp.attribute(x, target=0, n_iter=3)
        >>> sal.shape, bool((sal >= 0).all() and (sal <= 1).all())
        (torch.Size([2, 3, 16, 16]), True)
    """

    def __init__(self, forward_func: Callable[..., Tensor], fill: InpainterLike = "blur") -> None:
        super().__init__(forward_func)
        self.fill = fill if fill == "blur" else get_inpainter(fill)

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inputs: Tensor,
        target: TargetType = None,
        additional_forward_args: Optional[Tuple[Any, ...]] = None,
        mask_shape: Optional[Tuple[int, int]] = None,
        n_iter: int = 300,
        lr: float = 0.1,
        l1_coeff: float = 1e-4,
        tv_coeff: float = 1e-2,
        tv_beta: float = 3.0,
        jitter: Optional[int] = None,
        blur_sigma: Optional[float] = None,
        upsample: str = "nearest",
        st_proxy: str = "mean",
        use_softmax: bool = True,
        seed: int = 0,
        internal_batch_size: Optional[int] = None,
        return_mask: bool = False,
    ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        r"""Optimise a deletion mask per image and return the saliency ``1 - M``.

        Args:
            inputs (Tensor): images ``(B, C, H, W)``.
            target (int, tuple, Tensor or list, optional): output index per image, as in
                Captum.
            additional_forward_args (tuple, optional): extra model arguments.
            mask_shape (tuple of two ints, optional): mask size; default ``(ceil(H/8),
                ceil(W/8))`` (28 x 28 at 224).
            n_iter (int): Adam iterations. Default: 300.
            lr (float): Adam learning rate. Default: 0.1.
            l1_coeff (float): weight of ``sum |1 - m|``. Default: 1e-4.
            tv_coeff (float): weight of the total variation. Default: 1e-2.
            tv_beta (float): total-variation exponent. Default: 3.
            jitter (int, optional): random shift of ``Phi`` by up to this many pixels each
                iteration; default ``round(4 H / 224)``.
            blur_sigma (float, optional): blur of ``fill="blur"``; default ``10 H / 224``.
            upsample (str): ``"nearest"`` or ``"bilinear"`` mask upsampling. Default:
                ``"nearest"``.
            st_proxy (str): inpainting fill only: the value of ``I`` on kept pixels, which
                sets their straight-through gradient ``x - I``: ``"mean"`` (per-image channel
                mean), ``"blur"`` (blurred image) or ``"inpaint"`` (inpaint the kept pixels
                from the removed ones). Default: ``"mean"``.
            use_softmax (bool): apply softmax to the output before taking ``p_c``. Default: True.
            seed (int): seeds the jitter offsets. Default: 0.
            internal_batch_size (int, optional): optimise this many images at a time.
            return_mask (bool): also return the low-resolution masks ``(B, 1, h, w)``.

        Returns:
            Tensor: saliency ``1 - M`` of the shape of ``inputs`` (the same for every channel),
            and the masks if ``return_mask``.
        """
        if isinstance(inputs, tuple):
            raise TypeError("`inputs` must be a single image tensor for MeaningfulPerturbation")
        check_image_batch("inputs", inputs)
        check_int_at_least("n_iter", n_iter, 0)
        for name, value in (("lr", lr), ("tv_beta", tv_beta)):
            check_positive(name, value)
        for name, value in (("l1_coeff", l1_coeff), ("tv_coeff", tv_coeff)):
            check_positive(name, value, allow_zero=True)
        if upsample not in ("nearest", "bilinear"):
            raise ValueError(f"`upsample` must be 'nearest' or 'bilinear', got {upsample!r}")
        height, width = inputs.shape[-2:]
        if mask_shape is None:
            mask_shape = (math.ceil(height / 8), math.ceil(width / 8))
        if len(mask_shape) != 2 or min(mask_shape) < 1:
            raise ValueError(f"`mask_shape` must be (h, w) of positive ints, got {mask_shape}")
        jitter = round(4 * height / 224) if jitter is None else jitter
        check_int_at_least("jitter", jitter, 0)
        blur_sigma = 10.0 * height / 224 if blur_sigma is None else blur_sigma
        check_positive("blur_sigma", blur_sigma)
        if st_proxy not in ("mean", "blur", "inpaint"):
            raise ValueError(f"`st_proxy` must be 'mean', 'blur' or 'inpaint', got {st_proxy!r}")
        if internal_batch_size is not None:
            check_int_at_least("internal_batch_size", internal_batch_size, 1)
        options = dict(mask_shape=tuple(mask_shape), n_iter=n_iter, lr=lr, l1_coeff=l1_coeff,
                       tv_coeff=tv_coeff, tv_beta=tv_beta, jitter=jitter, blur_sigma=blur_sigma,
                       upsample=upsample, st_proxy=st_proxy, use_softmax=use_softmax, seed=seed)
        step = internal_batch_size or inputs.shape[0]
        masks = []
        for start in range(0, inputs.shape[0], step):  # chunks of images (memory bound)
            stop = min(start + step, inputs.shape[0])
            masks.append(self._optimise(inputs[start:stop].detach(), _chunk(target, start, stop),
                                        additional_forward_args, **options))
        mask = torch.cat(masks)
        saliency = 1 - self._upsample(mask, (height, width), upsample)
        saliency = saliency.expand_as(inputs).contiguous()
        return (saliency, mask) if return_mask else saliency

    @staticmethod
    def _upsample(mask: Tensor, size: Tuple[int, int], mode: str) -> Tensor:
        if mode == "nearest":
            return F.interpolate(mask, size=size, mode="nearest")
        return F.interpolate(mask, size=size, mode="bilinear", align_corners=False)

    def _perturbed(self, x: Tensor, big_mask: Tensor, blurred: Optional[Tensor],
                   proxy: Optional[Tensor], st_proxy: str) -> Tensor:
        if self.fill == "blur":
            return x * big_mask + blurred * (1 - big_mask)
        with torch.no_grad():
            keep = binarise(big_mask)
            filled = apply_inpainter(self.fill, x, keep == 0)
            if st_proxy == "inpaint":
                proxy = apply_inpainter(self.fill, x, keep == 1)
            filled = torch.where(keep == 1, proxy, filled)  # gradient-only on kept pixels
        straight = big_mask + (keep - big_mask).detach()
        return x * straight + filled * (1 - straight)

    def _optimise(self, x: Tensor, target: TargetType, additional_forward_args: Any, *,
                  mask_shape: Tuple[int, int], n_iter: int, lr: float, l1_coeff: float,
                  tv_coeff: float, tv_beta: float, jitter: int, blur_sigma: float,
                  upsample: str, st_proxy: str, use_softmax: bool, seed: int) -> Tensor:
        height, width = x.shape[-2:]
        mask = torch.ones(x.shape[0], 1, *mask_shape, dtype=x.dtype, device=x.device,
                          requires_grad=True)
        optimiser = torch.optim.Adam([mask], lr=lr)
        blurred = _blur(x, blur_sigma) if self.fill == "blur" or st_proxy == "blur" else None
        proxy = blurred if st_proxy == "blur" else x.mean((2, 3), keepdim=True).expand_as(x)
        generator = torch.Generator().manual_seed(seed)
        extra = () if additional_forward_args is None else (
            additional_forward_args if isinstance(additional_forward_args, tuple)
            else (additional_forward_args,))
        with torch.enable_grad():
            for _ in range(n_iter):
                big = self._upsample(mask, (height, width), upsample)
                phi = self._perturbed(x, big, blurred, proxy, st_proxy)
                if jitter:
                    dy, dx = torch.randint(0, 2 * jitter + 1, (2,), generator=generator).tolist()
                    phi = F.pad(phi, (jitter,) * 4, mode="replicate")[..., dy:dy + height,
                                                                        dx:dx + width]
                out = self.forward_func(phi, *extra)
                prob = torch.softmax(out, dim=1) if use_softmax else out
                score = _select_targets(prob, target).reshape(x.shape[0], -1).sum(1)
                loss = (l1_coeff * (1 - mask).abs().flatten(1).sum(1)
                        + tv_coeff * total_variation(mask, tv_beta) + score).sum()
                (grad,) = torch.autograd.grad(loss, mask)
                mask.grad = grad
                optimiser.step()
                with torch.no_grad():
                    mask.clamp_(0.0, 1.0)
        return mask.detach()


def _chunk(target: TargetType, start: int, stop: int) -> TargetType:
    if isinstance(target, Tensor) and target.numel() > 1:
        return target[start:stop]
    if isinstance(target, list):
        return target[start:stop]
    return target
