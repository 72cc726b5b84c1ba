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
removed entries bit for bit. The model is wrapped by a forward function that finds the
sentinel entries of each image input, inpaints them in one call (through
:func:`captum_ext.inpaint.apply_inpainter`, which zeroes the hole first), and only then runs
the model. Inputs that already contain the sentinel value are refused.

- **Integer and boolean inputs** cannot hold the sentinel: they travel through the parent
  method as a float64 copy, and the wrapper hands the model exactly the tensor Captum would
  have built (same values, same dtype: Captum's type promotion of the input with the
  baseline); the fill is cast to that dtype as Captum casts a baseline (truncation for
  integers; round in your own inpainter if you want rounding).
- **Per-example values** (``baselines`` of shape ``(B, ...)``, a :class:`ConstantInpainter`
  with one row per example): the wrapper knows which example every perturbed row belongs to
  (an example index travels with ``additional_forward_args`` through Captum's own batching
  and per-example splitting), so each row gets its own example's value, also in Lime and
  KernelShap, which attribute one example at a time.
- ``baselines`` keeps a meaning: the value of an image removed entirely (no boundary to
  inpaint from, e.g. the empty coalition of ``ShapleyValueSampling``; default: the
  inpainter's own fallback, 0 for the built-ins; a constant inpainter fills it with its
  constant) and of removed entries of non-image inputs (default 0).

With a constant inpainter equal to ``baselines`` each class reproduces its Captum parent
exactly, including integer inputs, per-example baselines and ``attribute_future``.
"""

import math
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import torch
from captum.attr import FeatureAblation, KernelShap, Lime, Occlusion, ShapleyValueSampling
from captum.log import log_usage
from torch import Tensor, nn

from captum_ext._checks import (
    check_choice,
    check_finite,
    check_int_at_least,
    check_positive,
    check_target,
)
from captum_ext._compat import (
    SkLearnRidge,
    TargetType,
    TensorOrTupleOfTensorsGeneric,
    _format_additional_forward_args,
)
from captum_ext._utils import as_tuple, preserved_model_state, warn_external
from captum_ext.attr.feature_masks import slic_feature_mask
from captum_ext.inpaint.base import Inpainter, _apply_inpainter
from captum_ext.inpaint.registry import InpainterLike, resolve_inpainter

__all__ = [
    "InpaintingFeatureAblation",
    "InpaintingKernelShap",
    "InpaintingLime",
    "InpaintingOcclusion",
    "InpaintingShapleyValueSampling",
    "PAPER_PRESETS",
    "SENTINEL",
    "binary_cosine_similarity",
]

#: The baseline value that marks removed entries (exactly representable in fp16, bf16, fp32).
SENTINEL = -49152.0

BaselineArg = Union[None, int, float, Tensor, Tuple[Union[int, float, Tensor], ...]]

#: Settings of Agarwal and Nguyen's code (anguyen8/generative-attribution-methods), used by
#: ``preset="paper"``. ``lime``: ``formal_LIME_single_image.py`` (500 samples, SLIC 50 /
#: compactness 30 / sigma 3, a softmax model) with the ``lime`` package's image explainer
#: (kernel width 0.25 on the cosine distance to the all-ones sample, ridge surrogate alpha 1
#: from ``lime_base``'s default). ``occlusion``: ``SP_test.sh`` (patch 29, stride 3, all
#: channels at once, softmax outputs, 224 x 224 ImageNet inputs).
PAPER_PRESETS: "MappingProxyType[str, MappingProxyType[str, Any]]" = MappingProxyType({
    "lime": MappingProxyType({
        "n_samples": 500, "n_segments": 50, "compactness": 30.0, "sigma": 3.0,
        "kernel_width": 0.25, "ridge_alpha": 1.0, "softmax": True,
    }),
    "occlusion": MappingProxyType({
        "window": 29, "stride": 3, "softmax": True, "image_size": 224,
    }),
})


def binary_cosine_similarity(kernel_width: float = 0.25) -> Callable[..., Tensor]:
    """LIME's image kernel on the binary interpretable sample ``z`` (not on the image).

    ``exp(-d^2 / (2 w^2)) = sqrt(exp(-d^2 / w^2))`` with ``d = 1 - cos(z, 1)``, the cosine
    distance of ``z`` to the all-ones vector (the original image); an all-zero ``z`` has
    ``d = 1``. The default width 0.25 is LIME's for images.

    Args:
        kernel_width (float): the kernel width ``w`` (finite, > 0). Default: 0.25.

    Returns:
        callable: a ``similarity_func`` for Captum's ``Lime``.

    Examples::

        >>> sim = binary_cosine_similarity()
        >>> float(sim(None, None, torch.ones(1, 5)))
        1.0
    """
    check_positive("kernel_width", kernel_width)

    def similarity(_original: Any, _perturbed: Any, interpretable: Tensor, **_: Any) -> Tensor:
        z = interpretable.float().flatten()
        norm = z.norm()
        cos = z.sum() / (norm * z.numel() ** 0.5) if norm > 0 else z.new_zeros(())
        return torch.exp(-((1 - cos) ** 2) / (2 * kernel_width**2))

    similarity.kernel_width = kernel_width  # type: ignore[attr-defined]
    return similarity


class _Softmax(nn.Module):
    """``softmax(model(*args), dim=1)``: the probability outputs of the paper's presets."""

    def __init__(self, model: Callable[..., Any]) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        return torch.softmax(self.model(*args, **kwargs), dim=1)


# --------------------------------------------------------------------------------------------
# dtype rules: the tensor Captum would hand the model for an input of ``dtype`` and a baseline
# --------------------------------------------------------------------------------------------


def _probe(baseline: Any, dtype: torch.dtype) -> Any:
    if baseline is None:
        return False if dtype == torch.bool else 0
    if isinstance(baseline, Tensor):
        return baseline.detach().cpu().reshape(-1)[:1] if baseline.dim() > 0 else \
            baseline.detach().cpu()
    return baseline


def _promote_ablation(dtype: torch.dtype, baseline: Any) -> torch.dtype:
    """``x * (1 - m) + b * m`` (Occlusion, FeatureAblation, Lime, KernelShap)."""
    one = torch.ones(1, dtype=dtype)
    return (one * one + _probe(baseline, dtype) * one).dtype


def _promote_shapley(dtype: torch.dtype, baseline: Any) -> torch.dtype:
    """ShapleyValueSampling: a number is first cast into the input's dtype (``full_like``)."""
    probe = _probe(baseline, dtype)
    start = torch.ones(1, dtype=dtype) if not isinstance(probe, Tensor) else probe.reshape(1)
    one = torch.ones(1, dtype=dtype)
    return (start * torch.ones(1, dtype=start.dtype) + one * one).dtype


# --------------------------------------------------------------------------------------------
# the forward wrapper
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CallState:
    inpainter: Callable[[Tensor, Tensor], Tensor]
    fallbacks: Tuple[Any, ...]
    in_dtypes: Tuple[torch.dtype, ...]
    out_dtypes: Tuple[torch.dtype, ...]
    batch_size: int
    #: dtype of an unperturbed batch: "input" (Occlusion, FeatureAblation: the initial
    #: evaluation), "promoted" (ShapleyValueSampling: coalitions), "lime" (promoted, except
    #: Captum's first call on the whole batch when it holds more than one example)
    unperturbed: str = "input"
    calls: List[int] = field(default_factory=lambda: [0])


class _InpaintingForward:
    """Calls the model after inpainting the sentinel entries of the inputs.

    While an ``attribute`` call is active, the last positional argument is the example index
    of every row (appended by the attribution class to ``additional_forward_args``).
    """

    def __init__(self, forward_func: Callable[..., Any]) -> None:
        self.forward_func = forward_func
        self.state: Optional[_CallState] = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        state = self.state
        if state is None:
            return self.forward_func(*args, **kwargs)
        count = len(state.in_dtypes)
        index = args[-1]
        rows = args[0].shape[0] if isinstance(args[0], Tensor) and args[0].dim() > 0 else None
        if not isinstance(index, Tensor) or index.dim() != 1 or \
                (rows is not None and index.shape[0] != rows):
            raise RuntimeError(  # pragma: no cover - guards Captum's batching contract
                "internal error: the example index did not travel with the perturbed rows"
            )
        filled = [self._fill(x, i, index, state) for i, x in enumerate(args[:count])]
        state.calls[0] += 1
        return self.forward_func(*filled, *args[count:-1], **kwargs)

    @staticmethod
    def _rows(value: Any, x: Tensor, index: Tensor, batch_size: int) -> Any:
        """Per-example values (first dimension = batch size) for every row of ``x``."""
        if isinstance(value, Tensor) and value.dim() == x.dim() and value.dim() > 0 \
                and value.shape[0] == batch_size and batch_size > 1:
            return value.to(x.device)[index.to(x.device)]
        return value

    def _fill(self, x: Any, i: int, index: Tensor, state: _CallState) -> Any:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            return x
        in_dtype, out_dtype = state.in_dtypes[i], state.out_dtypes[i]
        missing = x == SENTINEL
        if not bool(missing.any()):  # unperturbed: the dtype Captum gives such a batch
            as_input = state.unperturbed == "input" or (
                state.unperturbed == "lime" and state.batch_size > 1 and state.calls[0] == 0)
            dtype = in_dtype if as_input else out_dtype
            return x if x.dtype == dtype else x.to(dtype)
        fallback = self._rows(state.fallbacks[i], x, index, state.batch_size)
        if x.dim() != 4:  # not an image batch: removed entries take the baseline
            value = torch.as_tensor(0.0 if fallback is None else fallback, device=x.device)
            return torch.where(missing, value.to(x.dtype), x).to(out_dtype)
        work = out_dtype if out_dtype.is_floating_point else torch.get_default_dtype()
        images = x.to(work)
        inpainter = state.inpainter
        if isinstance(inpainter, Inpainter):
            inpainter = inpainter.for_examples(index)
        if isinstance(fallback, Tensor):
            fallback = fallback.to(images.device)
        holes = missing.any(dim=1, keepdim=True)
        # the known pixels come from inputs checked once per call (NaN policy)
        filled = _apply_inpainter(inpainter, images, holes, fallback, check_known=False)
        # channels that were not removed keep their exact values (channel-dependent masks)
        return torch.where(missing, filled.to(x.dtype), x).to(out_dtype)


def _fallbacks(inputs: Tuple[Tensor, ...], baselines: BaselineArg) -> Tuple[Any, ...]:
    if baselines is None:
        return (None,) * len(inputs)
    if isinstance(baselines, tuple):
        if len(baselines) != len(inputs):
            raise ValueError(f"`baselines` has {len(baselines)} entries for {len(inputs)} inputs")
        values = baselines
    else:
        values = (baselines,) * len(inputs)
    for value in values:
        if isinstance(value, Tensor):
            check_finite("baselines", value)
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(
                f"`baselines` must be numbers or tensors, got {type(value).__name__}"
            )
        elif not math.isfinite(value):
            raise ValueError(f"`baselines` must be finite, got {value}")
    return tuple(values)


class _InpaintingMixin:
    """Shared machinery: the forward wrapper, the inpainter, the per-call context."""

    _inpainting_forward: _InpaintingForward
    _model: Callable[..., Any]
    inpainter: Callable[[Tensor, Tensor], Tensor]
    preset: Optional[str]
    #: Captum's dtype rule for the perturbed input of this method.
    _promote: Callable[[torch.dtype, Any], torch.dtype] = staticmethod(_promote_ablation)
    _unperturbed = "input"

    def _wrap_forward(self, forward_func: Callable[..., Any], inpainter: InpainterLike,
                      preset: Optional[str] = None, softmax: bool = False) -> _InpaintingForward:
        if not callable(forward_func):
            raise TypeError(f"`forward_func` must be callable, got {type(forward_func).__name__}")
        if preset is not None:
            check_choice("preset", preset, ("paper",))
        self.preset = preset
        self.inpainter = resolve_inpainter(inpainter)
        self._model = forward_func
        inner = _Softmax(forward_func) if softmax else forward_func
        self._inpainting_forward = _InpaintingForward(inner)
        return self._inpainting_forward

    @contextmanager
    def _inpainting(self, inputs: TensorOrTupleOfTensorsGeneric, baselines: BaselineArg,
                    inpainter: Optional[InpainterLike], additional_forward_args: Any,
                    target: TargetType = None, perturbations_per_eval: int = 1,
                    n_samples: Optional[int] = None,
                    ) -> Iterator[Tuple[Any, Any, Tuple[Any, ...]]]:
        """Activate the wrapper for one call.

        Yields ``(inputs, baselines, additional_forward_args)`` to hand to the parent: the
        inputs (float64 copies of integer and boolean inputs), the sentinel baselines, and the
        user's arguments with the example index appended.
        """
        is_tuple = isinstance(inputs, tuple)
        inputs_tuple = as_tuple(inputs)
        if not inputs_tuple:
            raise ValueError("`inputs` must hold at least one tensor")
        carriers = []
        fallbacks = _fallbacks(inputs_tuple, baselines)
        out_dtypes = []
        for i, (x, fallback) in enumerate(zip(inputs_tuple, fallbacks)):
            name = f"inputs[{i}]" if is_tuple else "inputs"
            if not isinstance(x, Tensor):
                raise TypeError(f"`{name}` must be a torch.Tensor, got {type(x).__name__}")
            check_finite(name, x)
            out_dtype = self._promote(x.dtype, fallback)
            out_dtypes.append(out_dtype)
            if x.is_floating_point() and out_dtype == x.dtype:
                carrier = x
            else:
                if not x.is_floating_point() and x.numel() and \
                        bool((x.to(torch.float64).abs() > 2.0**53).any()):
                    raise ValueError(f"`{name}` has integers beyond 2**53, which cannot be "
                                     "carried exactly")
                carrier = x.to(torch.float64)
            if bool((carrier == SENTINEL).any()):
                raise ValueError(
                    f"`{name}` contains the sentinel value {SENTINEL}, which marks removed "
                    "pixels; shift or rescale the input"
                )
            carriers.append(carrier)
        batch_size = inputs_tuple[0].shape[0] if inputs_tuple[0].dim() > 0 else 1
        check_target(target, batch_size)
        check_int_at_least("perturbations_per_eval", perturbations_per_eval, 1)
        if n_samples is not None:
            check_int_at_least("n_samples", n_samples, 1)
        index = torch.arange(batch_size, device=inputs_tuple[0].device)
        user_args = _format_additional_forward_args(additional_forward_args)
        args = (index,) if user_args is None else tuple(user_args) + (index,)
        state = _CallState(
            inpainter=self.inpainter if inpainter is None else resolve_inpainter(inpainter),
            fallbacks=fallbacks, in_dtypes=tuple(x.dtype for x in inputs_tuple),
            out_dtypes=tuple(out_dtypes), batch_size=batch_size, unperturbed=self._unperturbed,
        )
        wrapper = self._inpainting_forward
        saved = wrapper.state
        sentinel: Any = (SENTINEL,) * len(carriers) if is_tuple else SENTINEL
        with ExitStack() as stack:
            if isinstance(self._model, nn.Module):
                stack.enter_context(preserved_model_state(self._model))
            wrapper.state = state
            try:
                yield (tuple(carriers) if is_tuple else carriers[0]), sentinel, args
            finally:
                wrapper.state = saved

    @staticmethod
    def _empty_result(inputs: TensorOrTupleOfTensorsGeneric) -> Optional[Any]:
        """Attributions for a batch of 0 examples (no model run), else None."""
        inputs_tuple = as_tuple(inputs)
        first = inputs_tuple[0] if inputs_tuple else None
        if not isinstance(first, Tensor) or first.dim() == 0 or first.shape[0] != 0:
            return None
        zeros = tuple(torch.zeros(x.shape, device=x.device, dtype=x.dtype if x.is_floating_point()
                                  else torch.get_default_dtype()) for x in inputs_tuple)
        return zeros if isinstance(inputs, tuple) else zeros[0]

    @property
    def model_forward(self) -> Callable[..., Any]:
        """The wrapped model (``forward_func`` is the inpainting wrapper around it)."""
        return self._model

    def _no_future(self, parent: str) -> None:
        raise NotImplementedError(
            f"attribute_future is not implemented for {type(self).__name__}: Captum's "
            f"{parent} does not implement it either; call `attribute` (with a forward function "
            "that returns tensors)"
        )


def _window(inputs: TensorOrTupleOfTensorsGeneric, size: int) -> Tuple[int, int, int]:
    first = as_tuple(inputs)[0]
    if not isinstance(first, Tensor) or first.dim() != 4:
        raise ValueError("`preset='paper'` needs a 4-D image batch (B, C, H, W) as `inputs`")
    return (first.shape[1], size, size)


class InpaintingOcclusion(_InpaintingMixin, Occlusion):
    """Captum's :class:`~captum.attr.Occlusion` with every occluded window inpainted.

    Each window of each perturbed copy is filled by the inpainter, in one batched call per
    forward batch (``perturbations_per_eval`` copies); the score is Captum's: output
    difference averaged over all windows covering a pixel.

    Args:
        forward_func (Callable): the model.
        inpainter (str, number, Tensor, Inpainter or callable): the fill, resolved by
            :func:`captum_ext.inpaint.resolve_inpainter`: a name (``"harmonic"``,
            ``"pull_push"``, ``"blur"``, ...), a number or tensor (a constant, Captum's
            baseline), an :class:`~captum_ext.inpaint.Inpainter`, or a callable
            ``inpaint(images, holes) -> images`` that must not rely on the content of the hole
            (it is zeroed before the call). Default: ``"blur"``, the normalised Gaussian blur
            of the known pixels, which beat ``"harmonic"`` and the other cheap fills on the
            ground-truth metrics of the stamp benchmark on both StampNet and ResNet-18 with
            8 x 8 windows (docs/defaults.md); ``InpaintingFeatureAblation`` defaults to it
            too, the other ``Inpainting*`` classes keep ``"harmonic"``.
        preset (str, optional): ``"paper"``: the sliding-patch settings of Agarwal and
            Nguyen's code (:data:`PAPER_PRESETS` ``["occlusion"]``): softmax outputs, a 29 x 29
            window over all channels, stride 3 (chosen there for 224 x 224 inputs; other sizes
            warn). Default: None (Captum's behaviour: raw outputs, window and strides required).

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
        >>> x = torch.rand(2, 3, 12, 12); _ = net(x)
        >>> attr = InpaintingOcclusion(net).attribute(x, sliding_window_shapes=(3, 4, 4),
        ...                                            strides=(3, 2, 2), target=0)
        >>> attr.shape
        torch.Size([2, 3, 12, 12])
    """

    def __init__(self, forward_func: Callable[..., Any], inpainter: InpainterLike = "blur",
                 preset: Optional[str] = None) -> None:
        Occlusion.__init__(self, self._wrap_forward(forward_func, inpainter, preset,
                                                    softmax=preset == "paper"))

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        sliding_window_shapes: Union[None, Tuple[int, ...], Tuple[Tuple[int, ...], ...]] = None,
        strides: Union[None, int, Tuple[int, ...], Tuple[Union[int, Tuple[int, ...]], ...]] = None,
        baselines: BaselineArg = None,
        target: TargetType = None,
        additional_forward_args: Optional[object] = None,
        perturbations_per_eval: int = 1,
        show_progress: bool = False,
        inpainter: Optional[InpainterLike] = None,
    ) -> TensorOrTupleOfTensorsGeneric:
        """Occlusion attributions with each occluded window inpainted.

        Args:
            inputs (Tensor or tuple[Tensor, ...]): as in Captum. Image inputs are 4-D
                ``(B, C, H, W)``; other inputs take ``baselines`` in removed entries. Integer
                and boolean inputs work as in Captum. NaN or inf raises a ``ValueError``.
            sliding_window_shapes, strides: as in Captum's ``Occlusion.attribute``. With
                ``preset="paper"`` they default to ``(C, 29, 29)`` and ``(C, 3, 3)``; without
                a preset ``sliding_window_shapes`` is required.
            baselines (scalar, Tensor or tuple, optional): the value of an image removed
                entirely and of removed entries of non-image inputs; per-example tensors
                ``(B, ...)`` are used per example. Default: the inpainter's fallback (0).
            target, additional_forward_args, perturbations_per_eval, show_progress: as in
                Captum.
            inpainter (optional): overrides the constructor's fill for this call (same forms).

        Returns:
            Tensor or tuple[Tensor, ...]: attributions with the inputs' shapes, as Captum's.

        Examples::

            >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
            >>> x = torch.rand(1, 3, 8, 8)
            >>> occ = InpaintingOcclusion(net, inpainter=0.0)   # a constant: Captum's Occlusion
            >>> ours = occ.attribute(x, sliding_window_shapes=(3, 4, 4), target=0)
            >>> bool(torch.equal(ours, Occlusion(net).attribute(x, sliding_window_shapes=(3, 4, 4),
            ...                                                  baselines=0.0, target=0)))
            True
            >>> occ.attribute(x, sliding_window_shapes=(3, 4, 4), target=0,
            ...               inpainter="harmonic").shape
            torch.Size([1, 3, 8, 8])
        """
        if self.preset == "paper":
            settings = PAPER_PRESETS["occlusion"]
            window = _window(inputs, settings["window"])
            if sliding_window_shapes is None:
                sliding_window_shapes = window
                if strides is None:
                    strides = (window[0], settings["stride"], settings["stride"])
            size = settings["image_size"]
            if tuple(as_tuple(inputs)[0].shape[-2:]) != (size, size):
                warn_external(
                    f"preset='paper' uses the paper's {settings['window']}-pixel window and "
                    f"stride {settings['stride']}, chosen for {size} x {size} inputs; these inputs "
                    f"are {tuple(as_tuple(inputs)[0].shape[-2:])}"
                )
        if sliding_window_shapes is None:
            raise TypeError("`sliding_window_shapes` is required (or use preset='paper')")
        empty = self._empty_result(inputs)
        if empty is not None:
            return empty
        with self._inpainting(inputs, baselines, inpainter, additional_forward_args, target,
                              perturbations_per_eval) as (carried, sentinel, args):
            return Occlusion.attribute(
                self, carried, sliding_window_shapes, strides=strides, baselines=sentinel,
                target=target, additional_forward_args=args,
                perturbations_per_eval=perturbations_per_eval, show_progress=show_progress,
            )

    def attribute_future(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Not implemented (Captum's Occlusion does not implement it either).

        Raises:
            NotImplementedError: always.
        """
        self._no_future("Occlusion")


class InpaintingFeatureAblation(_InpaintingMixin, FeatureAblation):
    """Captum's :class:`~captum.attr.FeatureAblation` with each ablated feature inpainted.

    Use :func:`captum_ext.attr.grid_feature_mask` or :func:`captum_ext.attr.slic_feature_mask`
    for ``feature_mask``.

    Args:
        forward_func (Callable): the model (for :meth:`attribute_future`, one that returns a
            ``torch.futures.Future``).
        inpainter (str, number, Tensor, Inpainter or callable): the fill, see
            :class:`InpaintingOcclusion`. Default: ``"blur"``, which beat ``"harmonic"`` and
            the other cheap fills on the ground-truth metrics of the stamp benchmark over SLIC
            superpixels on both StampNet and ResNet-18 (docs/defaults.md).

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
                 inpainter: InpainterLike = "blur") -> None:
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
        """Feature-ablation attributions with each ablated feature inpainted.

        Args:
            inputs (Tensor or tuple[Tensor, ...]): as in Captum; integer and boolean inputs
                work as in Captum. NaN or inf raises a ``ValueError``.
            baselines (scalar, Tensor or tuple, optional): the value of an image removed
                entirely and of removed entries of non-image inputs; per-example tensors
                ``(B, ...)`` are used per example. Default: the inpainter's fallback (0).
            target, additional_forward_args, feature_mask, perturbations_per_eval,
                show_progress, **kwargs: as in Captum's ``FeatureAblation.attribute``.
            inpainter (optional): overrides the constructor's fill for this call.

        Returns:
            Tensor or tuple[Tensor, ...]: attributions with the inputs' shapes.

        Examples::

            >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
            >>> x = torch.randint(0, 255, (2, 3, 4, 4))             # integer images work
            >>> mask = torch.arange(4).repeat_interleave(4).view(1, 1, 4, 4)
            >>> fa = InpaintingFeatureAblation(lambda t: net(t.float()), inpainter=7)
            >>> ours = fa.attribute(x, baselines=7, target=1, feature_mask=mask)
            >>> theirs = FeatureAblation(lambda t: net(t.float())).attribute(
            ...     x, baselines=7, target=1, feature_mask=mask)
            >>> bool(torch.equal(ours, theirs))
            True
        """
        empty = self._empty_result(inputs)
        if empty is not None:
            return empty
        with self._inpainting(inputs, baselines, inpainter, additional_forward_args, target,
                              perturbations_per_eval) as (carried, sentinel, args):
            return FeatureAblation.attribute(
                self, carried, baselines=sentinel, target=target, additional_forward_args=args,
                feature_mask=feature_mask, perturbations_per_eval=perturbations_per_eval,
                show_progress=show_progress, **kwargs,
            )

    @log_usage()
    def attribute_future(  # type: ignore[override]
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
    ) -> Any:
        """:meth:`attribute` for a forward function that returns a ``torch.futures.Future``.

        The removed features are inpainted before the forward function is called (Captum's
        ``attribute_future`` calls it synchronously), so the result equals :meth:`attribute`'s.

        Returns:
            torch.futures.Future: the attributions.

        Examples::

            >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
            >>> def future_net(x):
            ...     fut = torch.futures.Future(); fut.set_result(net(x)); return fut
            >>> x, mask = torch.rand(1, 3, 4, 4), torch.arange(4).repeat(4).view(1, 1, 4, 4)
            >>> fut = InpaintingFeatureAblation(future_net).attribute_future(
            ...     x, target=0, feature_mask=mask)
            >>> now = InpaintingFeatureAblation(net).attribute(x, target=0, feature_mask=mask)
            >>> bool(torch.allclose(fut.wait(), now))
            True
        """
        with self._inpainting(inputs, baselines, inpainter, additional_forward_args, target,
                              perturbations_per_eval) as (carried, sentinel, args):
            return FeatureAblation.attribute_future(
                self, carried, baselines=sentinel, target=target, additional_forward_args=args,
                feature_mask=feature_mask, perturbations_per_eval=perturbations_per_eval,
                show_progress=show_progress, **kwargs,
            )


class InpaintingShapleyValueSampling(_InpaintingMixin, ShapleyValueSampling):
    """Captum's :class:`~captum.attr.ShapleyValueSampling`, absent features inpainted.

    Every coalition is an image with the absent features as one hole, inpainted in one call;
    the empty coalition (everything removed) takes ``baselines`` (default 0), since an image
    without a known pixel has nothing to inpaint from.

    Args:
        forward_func (Callable): the model (for :meth:`attribute_future`, one that returns a
            ``torch.futures.Future``).
        inpainter (str, number, Tensor, Inpainter or callable): the fill, see
            :class:`InpaintingOcclusion`. Default: ``"harmonic"``.

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
        >>> from captum_ext.attr.feature_masks import grid_feature_mask
        >>> svs = InpaintingShapleyValueSampling(net)
        >>> attr = svs.attribute(torch.rand(1, 3, 8, 8), target=0,
        ...                      feature_mask=grid_feature_mask(8, 8, cell=4), n_samples=2)
        >>> attr.shape
        torch.Size([1, 3, 8, 8])
    """

    _promote = staticmethod(_promote_shapley)
    _unperturbed = "promoted"

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
        """Shapley value sampling with absent features inpainted.

        Args:
            inputs (Tensor or tuple[Tensor, ...]): as in Captum; integer and boolean inputs
                work as in Captum (a number baseline is cast into the input's dtype first, as
                Captum does). NaN or inf raises a ``ValueError``.
            baselines (scalar, Tensor or tuple, optional): the empty coalition's value and that
                of removed entries of non-image inputs; per-example tensors are used per
                example. Default: the inpainter's fallback (0).
            target, additional_forward_args, feature_mask, n_samples, perturbations_per_eval,
                show_progress: as in Captum's ``ShapleyValueSampling.attribute`` (the
                permutations come from the global torch RNG, as in Captum).
            inpainter (optional): overrides the constructor's fill for this call.

        Returns:
            Tensor or tuple[Tensor, ...]: attributions with the inputs' shapes.

        Examples::

            >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 1))
            >>> x, mask = torch.rand(1, 3, 4, 4), torch.arange(4).repeat(4).view(1, 1, 4, 4)
            >>> attr = InpaintingShapleyValueSampling(net).attribute(
            ...     x, baselines=0.0, target=0, feature_mask=mask, n_samples=3)
            >>> per_feature = attr[0, 0, 0]                      # one value per feature
            >>> gap = net(x) - net(torch.zeros_like(x))          # efficiency: sums to the gap
            >>> bool(torch.allclose(per_feature.sum(), gap.squeeze(), atol=1e-5))
            True
        """
        empty = self._empty_result(inputs)
        if empty is not None:
            return empty
        with self._inpainting(inputs, baselines, inpainter, additional_forward_args, target,
                              perturbations_per_eval, n_samples) as (carried, sentinel, args):
            return ShapleyValueSampling.attribute(
                self, carried, baselines=sentinel, target=target, additional_forward_args=args,
                feature_mask=feature_mask, n_samples=n_samples,
                perturbations_per_eval=perturbations_per_eval, show_progress=show_progress,
            )

    def attribute_future(  # type: ignore[override]
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
    ) -> Any:
        """:meth:`attribute` for a forward function that returns a ``torch.futures.Future``.

        The absent features are inpainted before the forward function is called (Captum calls
        it synchronously), so the result equals :meth:`attribute`'s for the same RNG state.

        Returns:
            torch.futures.Future: the attributions.

        Examples::

            >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
            >>> def future_net(x):
            ...     fut = torch.futures.Future(); fut.set_result(net(x)); return fut
            >>> x, mask = torch.rand(1, 3, 4, 4), torch.arange(4).repeat(4).view(1, 1, 4, 4)
            >>> _ = torch.manual_seed(0)
            >>> fut = InpaintingShapleyValueSampling(future_net).attribute_future(
            ...     x, target=0, feature_mask=mask, n_samples=2)
            >>> _ = torch.manual_seed(0)
            >>> now = InpaintingShapleyValueSampling(net).attribute(
            ...     x, target=0, feature_mask=mask, n_samples=2)
            >>> bool(torch.allclose(fut.wait(), now))
            True
        """
        with self._inpainting(inputs, baselines, inpainter, additional_forward_args, target,
                              perturbations_per_eval, n_samples) as (carried, sentinel, args):
            return ShapleyValueSampling.attribute_future(
                self, carried, baselines=sentinel, target=target, additional_forward_args=args,
                feature_mask=feature_mask, n_samples=n_samples,
                perturbations_per_eval=perturbations_per_eval, show_progress=show_progress,
            )


class _LimeMixin(_InpaintingMixin):
    """Preset handling and the call shared by :class:`InpaintingLime` and ``KernelShap``."""

    _default_samples = 25
    _unperturbed = "lime"

    def _preset_arguments(self, inputs: TensorOrTupleOfTensorsGeneric, feature_mask: Any,
                          n_samples: Optional[int]) -> Tuple[Any, int]:
        if self.preset != "paper":
            return feature_mask, self._default_samples if n_samples is None else n_samples
        settings = PAPER_PRESETS["lime"]
        if feature_mask is None:
            if isinstance(inputs, tuple):
                raise ValueError("`preset='paper'` builds SLIC superpixels for one image "
                                 "input; pass `feature_mask` for tuple inputs")
            feature_mask = slic_feature_mask(inputs, settings["n_segments"],
                                             settings["compactness"], settings["sigma"])
        return feature_mask, settings["n_samples"] if n_samples is None else n_samples

    def _attribute_lime(self, parent: Any, inputs: TensorOrTupleOfTensorsGeneric,
                        baselines: BaselineArg, target: TargetType, additional_forward_args: Any,
                        feature_mask: Any, n_samples: Optional[int], perturbations_per_eval: int,
                        return_input_shape: bool, show_progress: bool,
                        inpainter: Optional[InpainterLike]) -> TensorOrTupleOfTensorsGeneric:
        empty = self._empty_result(inputs)
        if empty is not None and return_input_shape:
            return empty
        feature_mask, samples = self._preset_arguments(inputs, feature_mask, n_samples)
        with self._inpainting(inputs, baselines, inpainter, additional_forward_args, target,
                              perturbations_per_eval, samples) as (carried, sentinel, args):
            return parent.attribute(
                self, carried, baselines=sentinel, target=target, additional_forward_args=args,
                feature_mask=feature_mask, n_samples=samples,
                perturbations_per_eval=perturbations_per_eval,
                return_input_shape=return_input_shape, show_progress=show_progress,
            )


class InpaintingLime(_LimeMixin, Lime):
    """Captum's :class:`~captum.attr.Lime` with the "off" features of each sample inpainted.

    All "off" features of one sample form one hole, inpainted in one call. The default
    ``similarity_func`` is :func:`binary_cosine_similarity` (LIME's image kernel, width 0.25,
    on the binary sample ``z``): the perturbed images Captum passes to a similarity function
    hold the sentinel, not the fill, so a custom one must use the interpretable sample (its
    third argument). Batches are attributed one example at a time, as Captum's Lime does, and
    per-example ``baselines`` or constant fills are applied per example.

    Args:
        forward_func (Callable): the model.
        interpretable_model (optional): as in Captum (default: Captum's Lasso; with
            ``preset="paper"``: ridge, alpha 1).
        similarity_func (optional): default :func:`binary_cosine_similarity` ``(0.25)``.
        perturb_func (optional): as in Captum.
        inpainter (str, number, Tensor, Inpainter or callable): the fill, see
            :class:`InpaintingOcclusion`. Default: ``"harmonic"``.
        preset (str, optional): ``"paper"``: the LIME settings of Agarwal and Nguyen's code
            (:data:`PAPER_PRESETS` ``["lime"]``): softmax outputs, a ridge surrogate
            (alpha 1), 500 samples, SLIC superpixels (50 segments, compactness 30, sigma 3)
            when no ``feature_mask`` is given, LIME's kernel of width 0.25. Not reproduced: the
            ``lime`` package's first sample is all ones and its sampling is numpy's; Captum
            draws every sample from the torch RNG. Default: None (Captum's defaults).

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
        preset: Optional[str] = None,
    ) -> None:
        forward = self._wrap_forward(forward_func, inpainter, preset, softmax=preset == "paper")
        settings: Dict[str, Any] = dict(PAPER_PRESETS["lime"]) if preset == "paper" else {}
        if interpretable_model is None and settings:
            interpretable_model = SkLearnRidge(alpha=settings["ridge_alpha"])
        if similarity_func is None:
            similarity_func = binary_cosine_similarity(settings.get("kernel_width", 0.25))
        Lime.__init__(self, forward, interpretable_model, similarity_func, perturb_func)

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        baselines: BaselineArg = None,
        target: TargetType = None,
        additional_forward_args: Optional[object] = None,
        feature_mask: Union[None, Tensor, Tuple[Tensor, ...]] = None,
        n_samples: Optional[int] = None,
        perturbations_per_eval: int = 1,
        return_input_shape: bool = True,
        show_progress: bool = False,
        inpainter: Optional[InpainterLike] = None,
    ) -> TensorOrTupleOfTensorsGeneric:
        """LIME attributions with the "off" features of every sample inpainted.

        Args:
            inputs (Tensor or tuple[Tensor, ...]): as in Captum; integer and boolean inputs
                work as in Captum. NaN or inf raises a ``ValueError``.
            baselines (scalar, Tensor or tuple, optional): the value of an image with every
                feature off and of removed entries of non-image inputs; per-example tensors
                ``(B, ...)`` are used per example. Default: the inpainter's fallback (0).
            target, additional_forward_args, perturbations_per_eval, return_input_shape,
                show_progress: as in Captum's ``Lime.attribute``.
            feature_mask (optional): as in Captum; with ``preset="paper"`` and no mask, SLIC
                superpixels with the paper's settings.
            n_samples (int, optional): as in Captum. Default: 25 (Captum's), 500 with
                ``preset="paper"``.
            inpainter (optional): overrides the constructor's fill for this call.

        Returns:
            Tensor or tuple[Tensor, ...]: as Captum's ``Lime.attribute``.

        Examples::

            >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
            >>> x, mask = torch.rand(2, 3, 4, 4), torch.arange(4).repeat(4).view(1, 1, 4, 4)
            >>> base = torch.rand(2, 3, 4, 4)                   # one baseline per example
            >>> kwargs = dict(target=0, feature_mask=mask, n_samples=10)
            >>> _ = torch.manual_seed(0)
            >>> ours = InpaintingLime(net, inpainter=base).attribute(x, baselines=base, **kwargs)
            >>> _ = torch.manual_seed(0)
            >>> theirs = Lime(net, similarity_func=binary_cosine_similarity()).attribute(
            ...     x, baselines=base, **kwargs)
            >>> bool(torch.equal(ours, theirs))
            True
        """
        return self._attribute_lime(Lime, inputs, baselines, target, additional_forward_args,
                                    feature_mask, n_samples, perturbations_per_eval,
                                    return_input_shape, show_progress, inpainter)

    def attribute_future(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Not implemented (Captum's Lime does not implement it either).

        Raises:
            NotImplementedError: always.
        """
        self._no_future("Lime")


class InpaintingKernelShap(_LimeMixin, KernelShap):
    """Captum's :class:`~captum.attr.KernelShap` with the absent features of each coalition
    inpainted (the empty coalition takes ``baselines``, default 0). Batches are attributed one
    example at a time, as in Captum, with per-example ``baselines`` applied per example.

    Args:
        forward_func (Callable): the model.
        inpainter (str, number, Tensor, Inpainter or callable): the fill, see
            :class:`InpaintingOcclusion`. Default: ``"harmonic"``.

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
        """Kernel SHAP attributions with the absent features of each coalition inpainted.

        Args:
            inputs (Tensor or tuple[Tensor, ...]): as in Captum; integer and boolean inputs
                work as in Captum. NaN or inf raises a ``ValueError``.
            baselines (scalar, Tensor or tuple, optional): the empty coalition's value and that
                of removed entries of non-image inputs; per-example tensors ``(B, ...)`` are
                used per example. Default: the inpainter's fallback (0).
            target, additional_forward_args, feature_mask, n_samples, perturbations_per_eval,
                return_input_shape, show_progress: as in Captum's ``KernelShap.attribute``.
            inpainter (optional): overrides the constructor's fill for this call.

        Returns:
            Tensor or tuple[Tensor, ...]: as Captum's ``KernelShap.attribute``.

        Examples::

            >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
            >>> x, mask = torch.rand(2, 3, 4, 4), torch.arange(4).repeat(4).view(1, 1, 4, 4)
            >>> base = torch.rand(2, 3, 4, 4)                   # one baseline per example
            >>> _ = torch.manual_seed(0)
            >>> ours = InpaintingKernelShap(net, inpainter=base).attribute(
            ...     x, baselines=base, target=0, feature_mask=mask, n_samples=12)
            >>> _ = torch.manual_seed(0)
            >>> theirs = KernelShap(net).attribute(x, baselines=base, target=0,
            ...                                     feature_mask=mask, n_samples=12)
            >>> bool(torch.equal(ours, theirs))
            True
        """
        return self._attribute_lime(
            KernelShap, inputs, baselines, target, additional_forward_args, feature_mask,
            n_samples, perturbations_per_eval, return_input_shape, show_progress, inpainter)

    def attribute_future(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Not implemented (Captum's KernelShap does not implement it either).

        Raises:
            NotImplementedError: always.
        """
        self._no_future("KernelShap")
