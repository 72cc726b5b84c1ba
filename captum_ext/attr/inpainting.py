"""Inpainting versions of Captum's perturbation methods.

Captum's ``Occlusion``, ``FeatureAblation``, ``Lime``, ``KernelShap`` and
``ShapleyValueSampling`` remove a feature by replacing it with a baseline,
``x * (1 - m) + baseline * m``. The classes here replace it with an *inpainted* fill instead
(Agarwal and Nguyen, ACCV 2020): every perturbed sample gets its own fill of its own hole,
computed in one batched inpainter call per forward batch, so ``perturbations_per_eval`` still
batches the work.

Route (version independent, public API only): the parent method runs unchanged with a
*sentinel* baseline, a value no image contains (``SENTINEL = -49152``, exact in every float
dtype); ``x * 0 + s * 1 == s`` and ``x * 1 + s * 0 == x`` exactly, so the sentinel marks the
removed pixels bit for bit. The model is wrapped by a forward function that finds the sentinel
pixels of each image input, inpaints them in one call, and only then runs the model. Inputs
that already contain the sentinel value are refused. ``baselines`` keeps a meaning: it is the
value of an image that is removed entirely (no boundary to inpaint from, e.g. the empty
coalition of ``ShapleyValueSampling``; default: the inpainter's own fallback, 0 for the
built-ins; a constant inpainter fills it with its constant) and of removed entries of
non-image inputs (default 0).
"""

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Tuple, Union

import torch
from captum.attr import FeatureAblation, KernelShap, Lime, Occlusion, ShapleyValueSampling
from captum.log import log_usage
from torch import Tensor

from captum_ext._compat import TargetType, TensorOrTupleOfTensorsGeneric
from captum_ext._utils import as_tuple
from captum_ext.inpaint.base import apply_inpainter
from captum_ext.inpaint.registry import InpainterLike, get_inpainter

#: The baseline value that marks removed entries (exactly representable in fp16, bf16, fp32).
SENTINEL = -49152.0

BaselineArg = Union[None, int, float, Tensor, Tuple[Union[int, float, Tensor], ...]]


def binary_cosine_similarity(kernel_width: float = 0.25) -> Callable[..., Tensor]:
    """LIME's image kernel on the binary interpretable sample ``z`` (not on the image).

    ``exp(-d^2 / (2 w^2)) = sqrt(exp(-d^2 / w^2))`` with ``d = 1 - cos(z, 1)``, the cosine
    distance of ``z`` to the all-ones vector (the original image); an all-zero ``z`` has
    ``d = 1``. The default width 0.25 is LIME's for images.

    Args:
        kernel_width (float): the kernel width ``w``. Default: 0.25.

    Returns:
        callable: a ``similarity_func`` for Captum's ``Lime``.

    Examples::

        >>> sim = binary_cosine_similarity()
        >>> float(sim(None, None, torch.ones(1, 5)))
        1.0
    """
    if not kernel_width > 0:
        raise ValueError(f"`kernel_width` must be > 0, got {kernel_width}")

    def similarity(_original: Any, _perturbed: Any, interpretable: Tensor, **_: Any) -> Tensor:
        z = interpretable.float().flatten()
        norm = z.norm()
        cos = z.sum() / (norm * z.numel() ** 0.5) if norm > 0 else z.new_zeros(())
        return torch.exp(-((1 - cos) ** 2) / (2 * kernel_width**2))

    return similarity


class _InpaintingForward:
    """Calls the model after inpainting the sentinel entries of the first ``n`` arguments."""

    def __init__(self, forward_func: Callable[..., Any]) -> None:
        self.forward_func = forward_func
        self.inpainter: Optional[Callable[[Tensor, Tensor], Tensor]] = None
        self.fallbacks: Optional[Tuple[Any, ...]] = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fallbacks is None:
            return self.forward_func(*args, **kwargs)
        count = len(self.fallbacks)
        filled = [self._fill(x, fb) for x, fb in zip(args[:count], self.fallbacks)]
        return self.forward_func(*filled, *args[count:], **kwargs)

    def _fill(self, x: Any, fallback: Any) -> Any:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            return x
        missing = x == SENTINEL
        if not bool(missing.any()):
            return x
        if fallback is not None:
            fallback = _expand_fallback(fallback, x)
        if x.dim() != 4:  # not an image batch: removed entries take the baseline
            return torch.where(missing, 0.0 if fallback is None else fallback, x)
        holes = missing.any(dim=1, keepdim=True)
        filled = apply_inpainter(self.inpainter, x, holes, fallback)
        return torch.where(missing, filled, x)  # channels not removed keep their values


def _expand_fallback(fallback: Any, x: Tensor) -> Tensor:
    value = torch.as_tensor(fallback, dtype=x.dtype, device=x.device)
    if value.dim() == x.dim() and value.shape[0] not in (1, x.shape[0]) \
            and x.shape[0] % value.shape[0] == 0:
        value = value.repeat((x.shape[0] // value.shape[0],) + (1,) * (x.dim() - 1))
    return torch.broadcast_to(value, x.shape)


def _fallbacks(inputs: Tuple[Tensor, ...], baselines: BaselineArg) -> Tuple[Any, ...]:
    if baselines is None:
        return (None,) * len(inputs)
    if isinstance(baselines, tuple):
        if len(baselines) != len(inputs):
            raise ValueError(f"`baselines` has {len(baselines)} entries for {len(inputs)} inputs")
        return baselines
    return (baselines,) * len(inputs)


class _InpaintingMixin:
    """Shared machinery: the forward wrapper, the inpainter, the sentinel context."""

    _inpainting_forward: _InpaintingForward
    inpainter: Callable[[Tensor, Tensor], Tensor]

    def _wrap_forward(self, forward_func: Callable[..., Any],
                      inpainter: InpainterLike) -> _InpaintingForward:
        self.inpainter = get_inpainter(inpainter)
        self._inpainting_forward = _InpaintingForward(forward_func)
        return self._inpainting_forward

    @contextmanager
    def _inpainting(self, inputs: TensorOrTupleOfTensorsGeneric, baselines: BaselineArg,
                    inpainter: Optional[InpainterLike]) -> Iterator[Any]:
        """Activate the wrapper; yields the sentinel baselines to hand to the parent."""
        inputs_tuple = as_tuple(inputs)
        for i, x in enumerate(inputs_tuple):
            if isinstance(x, Tensor) and x.is_floating_point() and bool((x == SENTINEL).any()):
                raise ValueError(
                    f"input {i} contains the sentinel value {SENTINEL}, which marks removed "
                    "pixels; shift or rescale the input"
                )
        wrapper = self._inpainting_forward
        saved = (wrapper.inpainter, wrapper.fallbacks)
        wrapper.inpainter = self.inpainter if inpainter is None else get_inpainter(inpainter)
        wrapper.fallbacks = _fallbacks(inputs_tuple, baselines)
        try:
            yield (SENTINEL,) * len(inputs_tuple) if isinstance(inputs, tuple) else SENTINEL
        finally:
            wrapper.inpainter, wrapper.fallbacks = saved

    @property
    def model_forward(self) -> Callable[..., Any]:
        """The wrapped model (``forward_func`` is the inpainting wrapper around it)."""
        return self._inpainting_forward.forward_func


_INPAINTER_DOC = """
        inpainter (str or callable): the fill, a name for
            :func:`captum_ext.inpaint.get_inpainter` (``"harmonic"``, ``"pull_push"``,
            ``"constant"``, ...) or any ``inpaint(images, holes) -> images``.
            Default: ``"harmonic"``."""


class InpaintingOcclusion(_InpaintingMixin, Occlusion):
    """Captum's :class:`~captum.attr.Occlusion` with every occluded window inpainted.

    Same ``attribute`` as Occlusion plus ``inpainter`` (overrides the constructor's).
    ``baselines`` is the value of an image removed entirely (default 0). Each window of each
    perturbed copy is filled by the inpainter, in one batched call per forward batch
    (``perturbations_per_eval`` copies); the score is Captum's: output difference averaged over
    all windows covering a pixel.

    Args:
        forward_func (Callable): the model.
        inpainter (str or callable): see :func:`captum_ext.inpaint.get_inpainter`.
            Default: ``"harmonic"``.

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
        >>> x = torch.rand(2, 3, 12, 12); _ = net(x)
        >>> attr = InpaintingOcclusion(net).attribute(x, sliding_window_shapes=(3, 4, 4),
        ...                                            strides=(3, 2, 2), target=0)
        >>> attr.shape
        torch.Size([2, 3, 12, 12])
    """

    def __init__(self, forward_func: Callable[..., Any],
                 inpainter: InpainterLike = "harmonic") -> None:
        Occlusion.__init__(self, self._wrap_forward(forward_func, inpainter))

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        sliding_window_shapes: Union[Tuple[int, ...], Tuple[Tuple[int, ...], ...]],
        strides: Union[None, int, Tuple[int, ...], Tuple[Union[int, Tuple[int, ...]], ...]] = None,
        baselines: BaselineArg = None,
        target: TargetType = None,
        additional_forward_args: Optional[object] = None,
        perturbations_per_eval: int = 1,
        show_progress: bool = False,
        inpainter: Optional[InpainterLike] = None,
    ) -> TensorOrTupleOfTensorsGeneric:
        with self._inpainting(inputs, baselines, inpainter) as sentinel:
            return Occlusion.attribute(
                self, inputs, sliding_window_shapes, strides=strides, baselines=sentinel,
                target=target, additional_forward_args=additional_forward_args,
                perturbations_per_eval=perturbations_per_eval, show_progress=show_progress,
            )


class InpaintingFeatureAblation(_InpaintingMixin, FeatureAblation):
    """Captum's :class:`~captum.attr.FeatureAblation` with each ablated feature inpainted.

    Same ``attribute`` as FeatureAblation plus ``inpainter``; ``baselines`` is the value of an
    image removed entirely. Use :func:`captum_ext.attr.grid_feature_mask` or
    :func:`captum_ext.attr.slic_feature_mask` for ``feature_mask``.

    Args:
        forward_func (Callable): the model.
        inpainter (str or callable): default ``"harmonic"``.

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
        >>> from captum_ext.attr.feature_masks import grid_feature_mask
        >>> mask = grid_feature_mask(8, 8, cell=4)
        >>> attr = InpaintingFeatureAblation(net).attribute(torch.rand(1, 3, 8, 8), target=1,
        ...                                                 feature_mask=mask)
        >>> attr.shape
        torch.Size([1, 3, 8, 8])
    """

    def __init__(self, forward_func: Callable[..., Any],
                 inpainter: InpainterLike = "harmonic") -> None:
        FeatureAblation.__init__(self, self._wrap_forward(forward_func, inpainter))

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineArg = None,
        target: TargetType = None,
        additional_forward_args: Optional[object] = None,
        feature_mask: Union[None, Tensor, Tuple[Tensor, ...]] = None,
        perturbations_per_eval: int = 1,
        show_progress: bool = False,
        inpainter: Optional[InpainterLike] = None,
        **kwargs: Any,
    ) -> TensorOrTupleOfTensorsGeneric:
        with self._inpainting(inputs, baselines, inpainter) as sentinel:
            return FeatureAblation.attribute(
                self, inputs, baselines=sentinel, target=target,
                additional_forward_args=additional_forward_args, feature_mask=feature_mask,
                perturbations_per_eval=perturbations_per_eval, show_progress=show_progress,
                **kwargs,
            )


class InpaintingShapleyValueSampling(_InpaintingMixin, ShapleyValueSampling):
    """Captum's :class:`~captum.attr.ShapleyValueSampling`, absent features inpainted.

    Every coalition is an image with the absent features as one hole, inpainted in one call;
    the empty coalition (everything removed) takes ``baselines`` (default 0).

    Args:
        forward_func (Callable): the model.
        inpainter (str or callable): default ``"harmonic"``.

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
        >>> from captum_ext.attr.feature_masks import grid_feature_mask
        >>> svs = InpaintingShapleyValueSampling(net)
        >>> attr = svs.attribute(torch.rand(1, 3, 8, 8), target=0,
        ...                      feature_mask=grid_feature_mask(8, 8, cell=4), n_samples=2)
        >>> attr.shape
        torch.Size([1, 3, 8, 8])
    """

    def __init__(self, forward_func: Callable[..., Any],
                 inpainter: InpainterLike = "harmonic") -> None:
        ShapleyValueSampling.__init__(self, self._wrap_forward(forward_func, inpainter))

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineArg = None,
        target: TargetType = None,
        additional_forward_args: Optional[object] = None,
        feature_mask: Union[None, Tensor, Tuple[Tensor, ...]] = None,
        n_samples: int = 25,
        perturbations_per_eval: int = 1,
        show_progress: bool = False,
        inpainter: Optional[InpainterLike] = None,
    ) -> TensorOrTupleOfTensorsGeneric:
        with self._inpainting(inputs, baselines, inpainter) as sentinel:
            return ShapleyValueSampling.attribute(
                self, inputs, baselines=sentinel, target=target,
                additional_forward_args=additional_forward_args, feature_mask=feature_mask,
                n_samples=n_samples, perturbations_per_eval=perturbations_per_eval,
                show_progress=show_progress,
            )


class InpaintingLime(_InpaintingMixin, Lime):
    """Captum's :class:`~captum.attr.Lime` with the "off" features of each sample inpainted.

    All "off" features of one sample form one hole, inpainted in one call. The default
    ``similarity_func`` is :func:`binary_cosine_similarity` (LIME's image kernel, width 0.25,
    on the binary sample ``z``): the perturbed images Captum passes to a similarity function
    hold the sentinel, not the fill, so a custom one must use the interpretable sample (its
    third argument). Other arguments as in Captum (``interpretable_model`` defaults to
    Captum's Lasso; the paper used ridge, alpha 1: pass
    ``captum_ext._compat.SkLearnRidge(alpha=1.0)``).

    Args:
        forward_func (Callable): the model.
        interpretable_model, similarity_func, perturb_func: as in Captum's ``Lime``.
        inpainter (str or callable): default ``"harmonic"``.

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
        >>> from captum_ext.attr.feature_masks import grid_feature_mask
        >>> lime = InpaintingLime(net)
        >>> attr = lime.attribute(torch.rand(1, 3, 8, 8), target=0, n_samples=8,
        ...                       feature_mask=grid_feature_mask(8, 8, cell=4))
        >>> attr.shape
        torch.Size([1, 3, 8, 8])
    """

    def __init__(
        self,
        forward_func: Callable[..., Any],
        interpretable_model: Optional[Any] = None,
        similarity_func: Optional[Callable[..., Any]] = None,
        perturb_func: Optional[Callable[..., Any]] = None,
        inpainter: InpainterLike = "harmonic",
    ) -> None:
        Lime.__init__(
            self, self._wrap_forward(forward_func, inpainter), interpretable_model,
            similarity_func if similarity_func is not None else binary_cosine_similarity(),
            perturb_func,
        )

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineArg = None,
        target: TargetType = None,
        additional_forward_args: Optional[object] = None,
        feature_mask: Union[None, Tensor, Tuple[Tensor, ...]] = None,
        n_samples: int = 25,
        perturbations_per_eval: int = 1,
        return_input_shape: bool = True,
        show_progress: bool = False,
        inpainter: Optional[InpainterLike] = None,
    ) -> TensorOrTupleOfTensorsGeneric:
        with self._inpainting(inputs, baselines, inpainter) as sentinel:
            return Lime.attribute(
                self, inputs, baselines=sentinel, target=target,
                additional_forward_args=additional_forward_args, feature_mask=feature_mask,
                n_samples=n_samples, perturbations_per_eval=perturbations_per_eval,
                return_input_shape=return_input_shape, show_progress=show_progress,
            )


class InpaintingKernelShap(_InpaintingMixin, KernelShap):
    """Captum's :class:`~captum.attr.KernelShap` with the absent features of each coalition
    inpainted (the empty coalition takes ``baselines``, default 0).

    Args:
        forward_func (Callable): the model.
        inpainter (str or callable): default ``"harmonic"``.

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
        >>> from captum_ext.attr.feature_masks import grid_feature_mask
        >>> attr = InpaintingKernelShap(net).attribute(torch.rand(1, 3, 8, 8), target=0,
        ...     n_samples=16, feature_mask=grid_feature_mask(8, 8, cell=4))
        >>> attr.shape
        torch.Size([1, 3, 8, 8])
    """

    def __init__(self, forward_func: Callable[..., Any],
                 inpainter: InpainterLike = "harmonic") -> None:
        KernelShap.__init__(self, self._wrap_forward(forward_func, inpainter))

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineArg = None,
        target: TargetType = None,
        additional_forward_args: Optional[object] = None,
        feature_mask: Union[None, Tensor, Tuple[Tensor, ...]] = None,
        n_samples: int = 25,
        perturbations_per_eval: int = 1,
        return_input_shape: bool = True,
        show_progress: bool = False,
        inpainter: Optional[InpainterLike] = None,
    ) -> TensorOrTupleOfTensorsGeneric:
        with self._inpainting(inputs, baselines, inpainter) as sentinel:
            return KernelShap.attribute(
                self, inputs, baselines=sentinel, target=target,
                additional_forward_args=additional_forward_args, feature_mask=feature_mask,
                n_samples=n_samples, perturbations_per_eval=perturbations_per_eval,
                return_input_shape=return_input_shape, show_progress=show_progress,
            )
