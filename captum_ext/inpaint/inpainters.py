"""Built-in inpainters: harmonic (default), pull-push, constant, mean, blur, noise, and the
optional OpenCV (Telea, Navier-Stokes) and scikit-image (biharmonic) back-ends.

Every inpainter is a callable ``inpaint(images, holes) -> images``; the interface and its
base class :class:`~captum_ext.inpaint.base.Inpainter` live in :mod:`captum_ext.inpaint.base`
(this module imports from there, never the other way round). The classes here validate their
arguments, never look at the removed content, and return known pixels unchanged.
"""

from typing import Optional, Tuple, Union

__all__ = [
    "BiharmonicInpainter", "BlurInpainter", "ConstantInpainter", "HarmonicInpainter",
    "Inpainter", "MeanInpainter", "NoiseInpainter", "OpenCVInpainter", "PullPushInpainter",
]

import torch
from torch import Tensor

from captum_ext._checks import check_int_at_least, check_positive
from captum_ext.inpaint.base import FallbackType, Inpainter, _fallback_like
from captum_ext.inpaint.harmonic import _harmonic_fill, _pull_push_fill


class HarmonicInpainter(Inpainter):
    """Harmonic (Laplace) fill, coarse-to-fine: the default inpainter.

    Each missing pixel becomes the average of its four neighbours (Neumann condition at the
    image border), so the fill is the smoothest surface that meets the hole's boundary. It is
    linear in the image, hence works in any normalised space. See
    :func:`captum_ext.inpaint.harmonic.harmonic_fill` for the solver.

    Args:
        sweeps (int): red-black SOR sweeps on the finest level. Default: 8.
        coarsest (int): pyramid stops at this size. Default: 12.
        omega (float): over-relaxation factor in (0, 2). Default: 1.5.
        tol (float, optional): sweep the finest level until the largest update is below this.
        max_sweeps (int): cap when ``tol`` is given. Default: 5000.
        fallback (float or Tensor): value of all-hole images. Default: 0.

    Examples::

        >>> ramp = torch.arange(8.).repeat(1, 1, 8, 1)       # x-ramp, 8 x 8
        >>> holes = torch.zeros(1, 1, 8, 8); holes[..., 2:6, 2:6] = 1
        >>> out = HarmonicInpainter(tol=1e-6)(ramp, holes)
        >>> bool(torch.allclose(out, ramp, atol=1e-4))
        True
    """

    def __init__(self, sweeps: int = 8, coarsest: int = 12, omega: float = 1.5,
                 tol: Optional[float] = None, max_sweeps: int = 5000,
                 fallback: FallbackType = 0.0) -> None:
        super().__init__(fallback)
        check_int_at_least("sweeps", sweeps, 0)
        check_int_at_least("coarsest", coarsest, 1)
        check_int_at_least("max_sweeps", max_sweeps, 0)
        check_positive("omega", omega)
        if not omega < 2:
            raise ValueError(f"`omega` must be in (0, 2), got {omega}")
        if tol is not None:
            check_positive("tol", tol)
        self.sweeps, self.coarsest, self.omega = sweeps, coarsest, float(omega)
        self.tol, self.max_sweeps = tol, max_sweeps

    self_compositing = True

    def fill(self, images: Tensor, holes: Tensor) -> Tensor:
        return _harmonic_fill(images, holes, self.sweeps, self.coarsest, self.omega,
                              self.tol, self.max_sweeps)

    def __repr__(self) -> str:
        return f"HarmonicInpainter(sweeps={self.sweeps}, omega={self.omega}, tol={self.tol})"


class PullPushInpainter(Inpainter):
    """Pull-push fill: one pass down a masked-average pyramid and back up (fast, blobby).

    Examples::

        >>> x = torch.ones(1, 3, 8, 8); holes = torch.zeros(1, 1, 8, 8); holes[..., :4, :4] = 1
        >>> bool(torch.allclose(PullPushInpainter()(x, holes), x))
        True
    """

    self_compositing = True

    def fill(self, images: Tensor, holes: Tensor) -> Tensor:
        return _pull_push_fill(images, holes)


class ConstantInpainter(Inpainter):
    """Fill the hole with a constant: the one constant fill (Captum's usual baseline).

    ``inpainter=c`` (a number or a tensor) anywhere in captum-ext means ``ConstantInpainter(c)``.
    A constant needs no boundary, so an image that is entirely hole is filled with it too.

    Args:
        value (float or Tensor): the fill; a tensor must broadcast to the images (e.g. shape
            ``(C, 1, 1)`` for one value per channel). A 4-D tensor with one row per example
            of an attribution call (``(B, C, H, W)``, like Captum's per-example ``baselines``)
            is a per-example fill: the attribution classes give every perturbed copy of
            example ``i`` row ``i``. Must be finite. Default: 0.

    Examples::

        >>> holes = torch.zeros(1, 1, 2, 2); holes[..., 0, 0] = 1
        >>> ConstantInpainter(5.0)(torch.ones(1, 1, 2, 2), holes).flatten().tolist()
        [5.0, 1.0, 1.0, 1.0]
    """

    needs_boundary = False

    def __init__(self, value: Union[float, Tensor] = 0.0) -> None:
        if not isinstance(value, (int, float, Tensor)) or isinstance(value, bool):
            raise TypeError(f"`value` must be a number or a Tensor, got {type(value).__name__}")
        if not bool(torch.isfinite(torch.as_tensor(value, dtype=torch.float64)).all()):
            raise ValueError(f"`value` must be finite, got {value}")
        super().__init__(value)
        self.value = value

    def fill(self, images: Tensor, holes: Tensor) -> Tensor:
        return _fallback_like(images, self.value, name="value")

    def for_examples(self, index: Tensor) -> "Inpainter":
        value = self.value
        if isinstance(value, Tensor) and value.dim() == 4 and value.shape[0] > 1:
            if int(index.max()) >= value.shape[0]:
                raise ValueError(
                    f"the constant fill has {value.shape[0]} rows, one per example, but the "
                    f"batch has {int(index.max()) + 1} examples"
                )
            return ConstantInpainter(value[index.to(value.device)])
        return self

    def __repr__(self) -> str:
        return f"ConstantInpainter({self.value!r})"


def _known_mean_std(images: Tensor, holes: Tensor) -> Tuple[Tensor, Tensor]:
    known = (~holes).to(images.dtype)
    count = known.sum((-2, -1), keepdim=True).clamp_min(1.0)
    mean = (images * known).sum((-2, -1), keepdim=True) / count
    var = (((images - mean) * known) ** 2).sum((-2, -1), keepdim=True) / count
    return mean, var.sqrt()


class MeanInpainter(Inpainter):
    """Fill the hole with each image's per-channel mean of the known pixels.

    Examples::

        >>> x = torch.tensor([[[[1., 3.], [0., 0.]]]]); holes = torch.tensor([[[[0, 0], [1, 1]]]])
        >>> MeanInpainter()(x, holes).flatten().tolist()
        [1.0, 3.0, 2.0, 2.0]
    """

    def fill(self, images: Tensor, holes: Tensor) -> Tensor:
        return _known_mean_std(images, holes)[0].expand_as(images)


class NoiseInpainter(Inpainter):
    """Fill the hole with Gaussian noise of each image's per-channel known mean and std.

    Args:
        scale (float): multiplies the known standard deviation. Default: 1.
        generator (torch.Generator, optional): for reproducible noise.

    Examples::

        >>> x = torch.randn(2, 3, 8, 8); holes = torch.zeros(2, 1, 8, 8); holes[:, :, 2:5] = 1
        >>> out = NoiseInpainter(generator=torch.Generator().manual_seed(0))(x, holes)
        >>> torch.equal(out[:, :, :2], x[:, :, :2])
        True
    """

    def __init__(self, scale: float = 1.0, generator: Optional[torch.Generator] = None,
                 fallback: FallbackType = 0.0) -> None:
        super().__init__(fallback)
        check_positive("scale", scale, allow_zero=True)
        self.scale, self.generator = float(scale), generator

    def fill(self, images: Tensor, holes: Tensor) -> Tensor:
        mean, std = _known_mean_std(images, holes)
        noise = torch.randn(images.shape, generator=self.generator, dtype=images.dtype,
                            device="cpu" if self.generator is not None else images.device)
        return mean + self.scale * std * noise.to(images.device)


class BlurInpainter(Inpainter):
    """Fill the hole with a normalised Gaussian blur of the known pixels (kornia).

    ``fill = blur(x * K) / blur(K)`` with ``K`` the known mask: a smooth fill that, under this
    interface, never sees the removed content (the classic leaking blur, which blurs the
    original image, is :class:`~captum_ext.attr.MeaningfulPerturbation`'s ``inpainter="blur"``).
    Where no known pixel lies within the kernel, the per-image known mean is used.

    Args:
        sigma (float): Gaussian standard deviation in pixels. Default: 10.

    Examples::

        >>> x = torch.ones(1, 3, 16, 16); holes = torch.zeros(1, 1, 16, 16); holes[..., 4:8, 4:8] = 1
        >>> bool(torch.allclose(BlurInpainter(3.0)(x, holes), x))
        True
    """

    def __init__(self, sigma: float = 10.0, fallback: FallbackType = 0.0) -> None:
        super().__init__(fallback)
        check_positive("sigma", sigma)
        self.sigma = float(sigma)

    def fill(self, images: Tensor, holes: Tensor) -> Tensor:
        from kornia.filters import gaussian_blur2d

        known = (~holes).to(images.dtype)
        height, width = images.shape[-2:]
        size_h, size_w = (min(2 * int(3 * self.sigma + 0.5) + 1, 2 * ((n - 1) // 2) + 1)
                          for n in (height, width))
        sigma = (self.sigma, self.sigma)
        num = gaussian_blur2d(images * known, (size_h, size_w), sigma, border_type="reflect")
        den = gaussian_blur2d(known, (size_h, size_w), sigma, border_type="reflect")
        mean = _known_mean_std(images, holes)[0]
        ok = den > 1e-4
        return torch.where(ok, num / den.clamp_min(1e-4), mean.expand_as(images))


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"this inpainter needs `{module}`, which is not installed; install it with "
            f"`pip install {extra}`"
        ) from err


class OpenCVInpainter(Inpainter):
    """OpenCV's Telea or Navier-Stokes inpainting, per image and channel on the CPU.

    Channels are inpainted one at a time as 16-bit images (each channel's value range mapped to
    0..65535 and back), so any value range works.
    Needs ``opencv-python(-headless)``; raises ``ImportError`` naming it when missing.

    Args:
        method (str): ``"telea"`` or ``"ns"``. Default: ``"telea"``.
        radius (float): neighbourhood radius in pixels. Default: 3.

    Examples::

        >>> x = torch.ones(1, 1, 8, 8); holes = torch.zeros(1, 1, 8, 8); holes[..., 3:5, 3:5] = 1
        >>> bool(torch.allclose(OpenCVInpainter("ns")(x, holes), x))
        True
    """

    def __init__(self, method: str = "telea", radius: float = 3.0,
                 fallback: FallbackType = 0.0) -> None:
        super().__init__(fallback)
        if method not in ("telea", "ns"):
            raise ValueError(f"`method` must be 'telea' or 'ns', got {method!r}")
        check_positive("radius", radius)
        self.method, self.radius = method, float(radius)
        _require("cv2", "opencv-python-headless")

    def fill(self, images: Tensor, holes: Tensor) -> Tensor:
        cv2 = _require("cv2", "opencv-python-headless")
        import numpy as np

        flag = cv2.INPAINT_TELEA if self.method == "telea" else cv2.INPAINT_NS
        data = images.detach().to("cpu", torch.float64)
        # OpenCV's float32 path returns garbage in the hole (seen with opencv 5.0); map each
        # image channel's value range to 16 bits, inpaint, and map back.
        low = data.amin(dim=(2, 3), keepdim=True)
        span = (data.amax(dim=(2, 3), keepdim=True) - low).clamp_min(1e-12)
        codes = ((data - low) / span * 65535.0).round().to(torch.int32).numpy().astype(np.uint16)
        masks = holes.to("cpu", torch.uint8).numpy()
        out = np.empty_like(codes)
        for i in range(codes.shape[0]):  # OpenCV works on one 2-D image at a time
            for ch in range(codes.shape[1]):
                out[i, ch] = cv2.inpaint(np.ascontiguousarray(codes[i, ch]), masks[i, 0],
                                         self.radius, flag)
        filled = torch.from_numpy(out.astype(np.float64)) / 65535.0 * span + low
        return filled.to(images.device, images.dtype)


class BiharmonicInpainter(Inpainter):
    """scikit-image's biharmonic inpainting (``skimage.restoration.inpaint_biharmonic``).

    Smooth (C1) fill from a sparse solve per image on the CPU; slow on large holes.
    Raises ``ImportError`` naming scikit-image when missing.

    Examples::

        >>> x = torch.ones(1, 2, 8, 8); holes = torch.zeros(1, 1, 8, 8); holes[..., 3:5, 3:5] = 1
        >>> bool(torch.allclose(BiharmonicInpainter()(x, holes), x, atol=1e-5))
        True
    """

    def __init__(self, fallback: FallbackType = 0.0) -> None:
        super().__init__(fallback)
        _require("skimage.restoration", "scikit-image")

    def fill(self, images: Tensor, holes: Tensor) -> Tensor:
        restoration = _require("skimage.restoration", "scikit-image")
        import numpy as np

        data = images.detach().to("cpu", torch.float64).numpy()
        masks = holes.to("cpu").numpy()[:, 0]
        out = np.stack([
            restoration.inpaint_biharmonic(data[i], masks[i], channel_axis=0)
            for i in range(data.shape[0])  # the solver takes one image at a time
        ])
        return torch.from_numpy(out).to(images.device, images.dtype)
