r"""IProp: propagate any attribution map over a pixel graph with a Markov reward process.

R. Yang, B. Wang, M. Bilgic, "Leveraging Local Structure for Improving Model Explanations: An
Information Propagation Approach", CIKM 2024 (arXiv 2409.16429). No public code exists; what the
paper states (one node per pixel, edge weights from spatial and colour information, the base
attribution as the reward of an MRP whose value is the new attribution, guaranteed convergence)
is followed, and the rest is chosen here (see ``docs/iprop.md``): a window graph with Gaussian
spatial and colour weights, ``P = D^-1 W``, ``V = R + gamma P V`` and the output
``(1 - gamma) V``, a weighted average of the base attributions in their own units.
"""

import sys
from contextlib import nullcontext
from dataclasses import dataclass, fields
from typing import Any, Dict, Literal, Optional, Tuple, Union, overload

import torch
from captum.attr import Attribution, LayerAttribution, NoiseTunnel
from captum.log import log_usage
from torch import Tensor, nn

from captum_ext._checks import check_choice, check_target
from captum_ext._compat import TensorOrTupleOfTensorsGeneric
from captum_ext._utils import (
    as_tuple,
    check_fraction,
    check_image_batch,
    check_int_at_least,
    check_positive,
    like_input,
    preserved_model_state,
    warn_external,
)
from captum_ext.propagate import (
    COLOR_SPACES,
    PRECONDITIONERS,
    SOLVERS,
    CSROperator,
    GraphOperator,
    SolveInfo,
    StencilOperator,
    min_max_scale,
    solve_mrp,
)

#: Chosen from the stamp-benchmark ablation (docs/iprop.md): the localisation scores grew with
#: gamma up to 0.999; 0.99 (a reach of about 10 pixels) keeps two thirds to three quarters of
#: 0.999's gain over the base method at a third of its CG iterations and keeps local detail
#: (as gamma -> 1 the map tends to the mean of each colour region). The design note's start
#: was 0.9.
DEFAULT_GAMMA = 0.99
#: Value iteration needs about log(tol (1 - gamma) / gamma) / log(gamma) steps: ~1400 at 0.99.
DEFAULT_MAX_ITER = 5000

REWARDS = ("signed", "abs", "sum")
INTERPOLATE_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")
#: Slack on the guide's [0, 1] range (float rounding of a scaled image).
_GUIDE_SLACK = 1e-3
OPERATORS = ("stencil", "csr")


def _check_options(
    gamma: float, radius: int, sigma_s: float, sigma_c: float, color_space: str, reward: str,
    solver: str, operator: str, tol: float, max_iter: int, self_loop: bool = True,
    rescale: bool = True, preconditioner: str = "jacobi",
) -> None:
    check_fraction("gamma", gamma)
    check_int_at_least("radius", radius, 0)
    check_positive("sigma_s", sigma_s, allow_inf=True)  # inf: a flat window
    check_positive("sigma_c", sigma_c, allow_inf=True)  # inf: colour ignored
    check_positive("tol", tol, allow_zero=True)
    check_int_at_least("max_iter", max_iter, 1)
    for name, flag in (("self_loop", self_loop), ("rescale", rescale)):
        if not isinstance(flag, bool):
            raise TypeError(f"`{name}` must be a bool, got {type(flag).__name__}")
    for name, value, allowed in (
        ("color_space", color_space, COLOR_SPACES),
        ("reward", reward, REWARDS),
        ("solver", solver, SOLVERS),
        ("operator", operator, OPERATORS),
        ("preconditioner", preconditioner, PRECONDITIONERS),
    ):
        check_choice(name, value, allowed)


def _check_finite(name: str, tensor: Tensor) -> None:
    flat = tensor.detach().flatten(1)  # amax / amin propagate NaN and keep inf: no boolean map
    bad = ~(torch.isfinite(flat.amax(dim=1)) & torch.isfinite(flat.amin(dim=1)))
    if bool(bad.any()):
        images = bad.nonzero().flatten().tolist()
        raise ValueError(
            f"`{name}` contains NaN or infinite values (images {images}); propagating them "
            f"would spread them over the whole image"
        )


def _check_guide_range(guide: Tensor) -> None:
    """The colour bandwidth is in units of a [0, 1] image: refuse 0..255 or normalised guides."""
    if guide.numel() == 0:
        return
    low, high = (float(v) for v in torch.aminmax(guide))
    if low < -_GUIDE_SLACK or high > 1.0 + _GUIDE_SLACK:
        raise ValueError(
            f"`guide` must have values in [0, 1] (got min {low:.4g}, max {high:.4g}): "
            "`sigma_c` is in those units, so a 0..255 or normalised image leaves every pixel "
            "unconnected and the maps unchanged; pass e.g. "
            "`captum_ext.propagate.min_max_scale(images)` or `images / 255`"
        )


def _check_radius(radius: int, guide: Tensor) -> None:
    height, width = guide.shape[2:]
    if radius >= max(height, width):
        raise ValueError(
            f"`radius`={radius} must be smaller than the image ({height}x{width}): the window "
            f"would reach past every border"
        )


def _called_by_noise_tunnel(method: Attribution, depth: int = 8) -> bool:
    """Whether ``method.attribute`` runs inside ``NoiseTunnel(method).attribute`` (on noisy inputs)."""
    frame = sys._getframe(1)
    for _ in range(depth):
        if frame is None:
            break
        caller = frame.f_locals.get("self")
        if isinstance(caller, NoiseTunnel) and caller.attribution_method is method:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _match_guide(guide: Tensor, attributions: Tensor) -> Tensor:
    """Check the guide against the maps; repeat a guide of batch ``B`` for ``k B`` maps."""
    check_image_batch("guide", guide)
    a_batch, g_batch = attributions.shape[0], guide.shape[0]
    if guide.shape[2:] != attributions.shape[2:]:
        raise ValueError(
            f"`guide` has spatial size {tuple(guide.shape[2:])} but the attributions have "
            f"{tuple(attributions.shape[2:])}; upsample low-resolution maps first (e.g. "
            f"captum.attr.LayerAttribution.interpolate)"
        )
    if g_batch != a_batch:
        if g_batch == 0 or a_batch % g_batch != 0:
            raise ValueError(
                f"`guide` has batch size {g_batch} but the attributions have {a_batch}"
            )
        # NoiseTunnel and sensitivity_max repeat each input with repeat_interleave
        guide = guide.repeat_interleave(a_batch // g_batch, dim=0)
    return guide


@dataclass(frozen=True)
class IPropDiagnostics(SolveInfo):
    """What the solver did for each image, returned with ``return_diagnostics=True``.

    The fields of :class:`~captum_ext.propagate.SolveInfo`: ``solver``, ``iterations`` (the
    most any image needed), ``residual``, ``error_bound`` (per image, relative to its
    ``max|R|``), ``converged`` (every image met ``tol``), ``image_iterations`` and
    ``image_converged`` (per image).

    Examples::

        >>> maps, diagnostics = propagate(torch.rand(2, 1, 8, 8), torch.rand(2, 3, 8, 8),
        ...                               gamma=0.9, return_diagnostics=True)
        >>> diagnostics.converged, diagnostics.image_iterations.shape
        (True, torch.Size([2]))
    """

    @classmethod
    def from_solve_info(cls, info: SolveInfo) -> "IPropDiagnostics":
        """The same record as an ``IPropDiagnostics``."""
        return cls(**{f.name: getattr(info, f.name) for f in fields(info)})


@overload
def propagate(
    attributions: Tensor,
    guide: Tensor,
    gamma: float = ...,
    radius: int = ...,
    sigma_s: float = ...,
    sigma_c: float = ...,
    color_space: str = ...,
    self_loop: bool = ...,
    reward: str = ...,
    rescale: bool = ...,
    solver: str = ...,
    preconditioner: str = ...,
    operator: str = ...,
    affinity: Optional[Tensor] = ...,
    tol: float = ...,
    max_iter: int = ...,
    return_info: Literal[False] = ...,
    *,
    return_diagnostics: Literal[False] = ...,
) -> Tensor: ...


@overload
def propagate(
    attributions: Tensor,
    guide: Tensor,
    gamma: float = ...,
    radius: int = ...,
    sigma_s: float = ...,
    sigma_c: float = ...,
    color_space: str = ...,
    self_loop: bool = ...,
    reward: str = ...,
    rescale: bool = ...,
    solver: str = ...,
    preconditioner: str = ...,
    operator: str = ...,
    affinity: Optional[Tensor] = ...,
    tol: float = ...,
    max_iter: int = ...,
    return_info: bool = ...,
    *,
    return_diagnostics: Literal[True],
) -> Tuple[Tensor, "IPropDiagnostics"]: ...


@overload
def propagate(
    attributions: Tensor,
    guide: Tensor,
    gamma: float = ...,
    radius: int = ...,
    sigma_s: float = ...,
    sigma_c: float = ...,
    color_space: str = ...,
    self_loop: bool = ...,
    reward: str = ...,
    rescale: bool = ...,
    solver: str = ...,
    preconditioner: str = ...,
    operator: str = ...,
    affinity: Optional[Tensor] = ...,
    tol: float = ...,
    max_iter: int = ...,
    return_info: bool = ...,
    *,
    return_diagnostics: bool = ...,
) -> Union[Tensor, Tuple[Tensor, "IPropDiagnostics"]]: ...


def propagate(
    attributions: Tensor,
    guide: Tensor,
    gamma: float = DEFAULT_GAMMA,
    radius: int = 1,
    sigma_s: float = 1.0,
    sigma_c: float = 0.1,
    color_space: str = "rgb",
    self_loop: bool = True,
    reward: str = "signed",
    rescale: bool = True,
    solver: str = "cg",
    preconditioner: str = "jacobi",
    operator: str = "stencil",
    affinity: Optional[Tensor] = None,
    tol: float = 1e-4,
    max_iter: int = DEFAULT_MAX_ITER,
    return_info: bool = False,
    *,
    return_diagnostics: bool = False,
) -> Union[Tensor, Tuple[Tensor, "IPropDiagnostics"]]:
    r"""Propagate ready-made attribution maps over the pixel graph of a guide image.

    Solves ``V = R + gamma P V`` for every channel of every map (the reward ``R``) on the window
    graph of ``guide`` and returns ``(1 - gamma) V``: a weighted average of the rewards, so a
    constant map is unchanged, values stay within ``[min R, max R]`` and ``gamma = 0`` returns
    the maps. The result is within ``tol * max|R|`` of the exact solution (per image).

    Args:
        attributions (Tensor): (B, C, H, W) maps, e.g. a Captum method's output.
        guide (Tensor): (B', C', H, W) image with values in [0, 1] whose colours define the
            graph (usually the input images, min-max scaled); ``B`` must be a multiple of ``B'``
            (a guide of ``B'`` images is repeated with ``repeat_interleave``).
        gamma (float): discount in [0, 1): how far information travels. Default 0.99
            (chosen by the ablation in ``docs/iprop.md``).
        radius (int): window radius; ``(2 r + 1)^2`` neighbours. Default 1.
        sigma_s (float): spatial bandwidth in pixels. Default 1.0.
        sigma_c (float): colour bandwidth (in guide units, or Lab / 100). Default 0.1.
        color_space (str): ``"rgb"`` (the guide's channels) or ``"lab"`` (kornia). Default rgb.
        self_loop (bool): include the edge ``i -> i``. Default True.
        reward (str): ``"signed"`` (each channel as is), ``"abs"`` (``|R|``) or ``"sum"``
            (the channel sum, propagated once and broadcast back to C channels).
        rescale (bool): return ``(1 - gamma) V`` (True) or the value ``V`` itself.
        solver (str): ``"cg"`` (conjugate gradient) or ``"value_iteration"``. Default cg.
        preconditioner (str): CG's preconditioner, ``"jacobi"`` (default) or ``"multigrid"``
            (an aggregation V-cycle: about half the iterations at gamma 0.99, each 3-4x the
            cost, so about twice the wall time; stencil operators only, Jacobi otherwise).
            See ``docs/iprop.md``.
        operator (str): ``"stencil"`` or ``"csr"``; ignored when ``affinity`` is given.
        affinity (Tensor, optional): a user-given non-negative (sparse) affinity of size
            (B H W, B H W) used instead of the window graph (``guide`` is then only checked for
            shape).
        tol (float): error tolerance relative to each image's ``max|R|``. Default 1e-4.
        max_iter (int): iteration cap (a ``RuntimeWarning`` when hit). Default 5000.
        return_info (bool): deprecated alias of ``return_diagnostics``.
        return_diagnostics (bool): also return an :class:`IPropDiagnostics` (per image:
            iterations, residual, error bound, converged). Default False.

    Returns:
        Tensor of the attributions' shape, or ``(maps, IPropDiagnostics)`` with
        ``return_diagnostics=True``.

    Examples::

        >>> image = torch.zeros(1, 3, 8, 8); image[..., 4:] = 1.0  # two flat halves
        >>> saliency = torch.zeros(1, 1, 8, 8); saliency[..., 2, 2] = 1.0
        >>> out = propagate(saliency, image, gamma=0.9)
        >>> out.shape, bool(out[..., :4].sum() > 100 * out[..., 4:].sum())  # stays on its side
        (torch.Size([1, 1, 8, 8]), True)
    """
    _check_options(gamma, radius, sigma_s, sigma_c, color_space, reward, solver, operator, tol,
                   max_iter, self_loop, rescale, preconditioner)
    if return_info:
        warn_external("`return_info` is deprecated and will be removed in the next release; use "
                      "`return_diagnostics=True`", DeprecationWarning)
        return_diagnostics = True
    check_image_batch("attributions", attributions)
    _check_finite("attributions", attributions)
    guide = _match_guide(guide, attributions).detach()
    _check_finite("guide", guide)
    if affinity is None:
        _check_guide_range(guide)
        _check_radius(radius, guide)
    rewards = attributions.detach()
    if reward == "abs":
        rewards = rewards.abs()
    elif reward == "sum":
        rewards = rewards.sum(dim=1, keepdim=True)
    graph = _build_operator(guide, radius, sigma_s, sigma_c, color_space, self_loop, operator,
                            affinity, rewards.dtype)
    values, info = solve_mrp(graph, rewards, gamma, solver, tol, max_iter,
                             preconditioner=preconditioner)
    if rescale:
        values = values * (1.0 - gamma)
    values = values.expand_as(attributions).contiguous() if reward == "sum" else values
    return (values, IPropDiagnostics.from_solve_info(info)) if return_diagnostics else values


def _build_operator(
    guide: Tensor, radius: int, sigma_s: float, sigma_c: float, color_space: str,
    self_loop: bool, operator: str, affinity: Optional[Tensor], dtype: torch.dtype,
) -> GraphOperator:
    batch, _, height, width = guide.shape
    if affinity is not None:
        return CSROperator(affinity.to(dtype), shape=(batch, height, width))
    stencil = StencilOperator.from_guide(
        guide.to(dtype), radius=radius, sigma_s=sigma_s, sigma_c=sigma_c,
        color_space=color_space, self_loop=self_loop,
    )
    return stencil if operator == "stencil" else CSROperator.from_stencil(stencil)


class IProp(Attribution):
    r"""Information propagation (IProp) of any Captum attribution over a pixel graph.

    ``attribute`` runs the base method with the usual Captum arguments, then propagates every
    channel of its output with a Markov reward process on the window graph of a guide image
    (:func:`propagate`): ``V = R + gamma P V`` with ``P = D^-1 W`` the row-normalised colour and
    space affinities, and returns ``(1 - gamma) V``. Attributions flow along regions of similar
    colour and are blocked by edges. Base maps of lower resolution (e.g. ``LayerGradCam``) are
    upsampled to the input size with :meth:`LayerAttribution.interpolate` first.

    ``attribute(..., return_diagnostics=True)`` also returns what the solver did per image
    (:class:`IPropDiagnostics`: iterations, residual, error bound, converged). The stateful
    ``last_info`` of earlier releases is a deprecated alias.

    Compose with smoothing as ``IProp(NoiseTunnel(base))``: the smoothed map is propagated over
    the clean inputs. ``NoiseTunnel(IProp(base))`` would build each graph from a noisy copy
    (pass ``guide=`` the clean images if you need that order).

    Args:
        base_method (Attribution): any Captum attribution method (also ``NoiseTunnel`` or a
            layer method whose output is a spatial map).
        gamma (float): discount in [0, 1). Default 0.99 (chosen by the ablation).
        radius (int): window radius. Default 1.
        sigma_s (float): spatial bandwidth in pixels. Default 1.0.
        sigma_c (float): colour bandwidth. Default 0.1.
        color_space (str): ``"rgb"`` or ``"lab"``. Default ``"rgb"``.
        self_loop (bool): keep the edge ``i -> i``. Default True.
        reward (str): ``"signed"``, ``"abs"`` or ``"sum"`` (see :func:`propagate`).
        rescale (bool): return ``(1 - gamma) V`` rather than ``V``. Default True.
        solver (str): ``"cg"`` or ``"value_iteration"``. Default ``"cg"``.
        preconditioner (str): ``"jacobi"`` or ``"multigrid"`` (see :func:`propagate`).
        operator (str): ``"stencil"`` or ``"csr"``. Default ``"stencil"``.
        tol (float): error tolerance relative to each image's ``max|R|``. Default 1e-4.
        max_iter (int): iteration cap. Default 5000.
        interpolate_mode (str): how smaller base maps are upsampled. Default ``"bilinear"``.

    Examples::

        >>> from captum.attr import Saliency
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(),
        ...                           torch.nn.LazyLinear(2))
        >>> images = torch.rand(2, 3, 16, 16)
        >>> _ = net(images)
        >>> iprop = IProp(Saliency(net), gamma=0.9)
        >>> attr, diagnostics = iprop.attribute(images, target=1, return_diagnostics=True)
        >>> attr.shape, diagnostics.converged, diagnostics.image_iterations.shape
        (torch.Size([2, 3, 16, 16]), True, torch.Size([2]))
    """

    def __init__(
        self,
        base_method: Attribution,
        gamma: float = DEFAULT_GAMMA,
        radius: int = 1,
        sigma_s: float = 1.0,
        sigma_c: float = 0.1,
        color_space: str = "rgb",
        self_loop: bool = True,
        reward: str = "signed",
        rescale: bool = True,
        solver: str = "cg",
        preconditioner: str = "jacobi",
        operator: str = "stencil",
        tol: float = 1e-4,
        max_iter: int = DEFAULT_MAX_ITER,
        interpolate_mode: str = "bilinear",
    ) -> None:
        if not isinstance(base_method, Attribution):
            raise TypeError(
                "`base_method` must be a captum.attr.Attribution, got "
                f"{type(base_method).__name__}; use `propagate` for ready-made maps"
            )
        _check_options(gamma, radius, sigma_s, sigma_c, color_space, reward, solver, operator,
                       tol, max_iter, self_loop, rescale, preconditioner)
        check_choice("interpolate_mode", interpolate_mode, INTERPOLATE_MODES)
        super().__init__(base_method.forward_func)
        self.base_method = base_method
        self.options: Dict[str, Any] = dict(
            gamma=gamma, radius=radius, sigma_s=sigma_s, sigma_c=sigma_c,
            color_space=color_space, self_loop=self_loop, reward=reward, rescale=rescale,
            solver=solver, preconditioner=preconditioner, operator=operator, tol=tol,
            max_iter=max_iter,
        )
        self.interpolate_mode = interpolate_mode
        self._last_diagnostics: Tuple[IPropDiagnostics, ...] = ()

    @property
    def last_info(self) -> Tuple[IPropDiagnostics, ...]:
        """Deprecated: the diagnostics of the last call, one per input tensor.

        Use ``attribute(..., return_diagnostics=True)``.
        """
        warn_external("`IProp.last_info` is deprecated and will be removed in the next release; "
                      "use `attribute(..., return_diagnostics=True)`", DeprecationWarning)
        return self._last_diagnostics

    @overload
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        guide: Optional[Union[Tensor, Tuple[Tensor, ...]]] = ...,
        *,
        return_diagnostics: Literal[False] = ...,
        **base_kwargs: Any,
    ) -> TensorOrTupleOfTensorsGeneric: ...

    @overload
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        guide: Optional[Union[Tensor, Tuple[Tensor, ...]]] = ...,
        *,
        return_diagnostics: Literal[True],
        **base_kwargs: Any,
    ) -> Tuple[TensorOrTupleOfTensorsGeneric,
               Union[IPropDiagnostics, Tuple[IPropDiagnostics, ...]]]: ...

    @log_usage()
    def attribute(  # type: ignore[misc]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        guide: Optional[Union[Tensor, Tuple[Tensor, ...]]] = None,
        *,
        return_diagnostics: bool = False,
        **base_kwargs: Any,
    ) -> Union[
        TensorOrTupleOfTensorsGeneric,
        Tuple[TensorOrTupleOfTensorsGeneric, Union[IPropDiagnostics, Tuple[IPropDiagnostics, ...]]],
    ]:
        r"""Base attributions of ``inputs``, propagated over each input's pixel graph.

        Args:
            inputs (Tensor or tuple[Tensor, ...]): (B, C, H, W) images (a tuple of them for
                multi-input models); passed to the base method as is.
            guide (Tensor or tuple[Tensor, ...], optional): the image(s) defining the graph,
                values in [0, 1], one per input, same H and W; batch B or a divisor of B (a
                guide of B' images is repeated ``B / B'`` times with ``repeat_interleave``, as
                ``NoiseTunnel`` and ``sensitivity_max`` repeat the inputs).
                Default: the inputs, min-max scaled to [0, 1] per image.
            return_diagnostics (bool): also return an :class:`IPropDiagnostics` (a tuple of
                them, one per input tensor, for tuple inputs). Default False.
            **base_kwargs: passed to ``base_method.attribute`` (``target``, ``baselines``,
                ``additional_forward_args``, ``nt_type``, ...).

        Returns:
            Attributions in the structure of ``inputs`` (the base method's channel count, the
            inputs' spatial size; an empty batch gives zeros of the inputs' shape without
            running the model), or ``(attributions, diagnostics)`` with
            ``return_diagnostics=True``. A base method returning a convergence delta is not
            supported.
        """
        input_tuple = as_tuple(inputs)
        for index, tensor in enumerate(input_tuple):
            name = f"inputs[{index}]" if isinstance(inputs, tuple) else "inputs"
            check_image_batch(name, tensor)
            _check_finite(name, tensor)
        check_target(base_kwargs.get("target"), input_tuple[0].shape[0])
        guides = self._guides(input_tuple, guide, isinstance(inputs, tuple))
        if input_tuple[0].shape[0] == 0:  # an empty batch: an empty result, no model run
            base: Any = like_input(inputs, [torch.zeros_like(t) for t in input_tuple])
        else:
            model = self.forward_func
            state = preserved_model_state(model) if isinstance(model, nn.Module) else nullcontext()
            with state:
                base = self.base_method.attribute(inputs, **base_kwargs)
        if isinstance(base, tuple) != isinstance(inputs, tuple) or (
            isinstance(base, tuple) and len(base) != len(input_tuple)
        ):
            raise ValueError("the base method must return one attribution per input tensor "
                             "(convergence deltas are not supported)")
        outputs, infos = [], []
        for maps, tensor, image in zip(as_tuple(base), input_tuple, guides):
            maps = self._to_input_size(maps, tensor)
            values, info = propagate(maps, image, return_diagnostics=True, **self.options)
            outputs.append(values)
            infos.append(info)
        self._last_diagnostics = tuple(infos)
        attributions = like_input(inputs, outputs)
        if not return_diagnostics:
            return attributions
        return attributions, (tuple(infos) if isinstance(inputs, tuple) else infos[0])

    def _guides(
        self, inputs: Tuple[Tensor, ...], guide: Optional[Union[Tensor, Tuple[Tensor, ...]]],
        is_tuple: bool,
    ) -> Tuple[Tensor, ...]:
        for tensor in inputs:
            _check_radius(self.options["radius"], tensor)
        if guide is None:
            if _called_by_noise_tunnel(self):
                warn_external(
                    "NoiseTunnel(IProp(...)) without `guide=` builds each graph from a noisy "
                    "copy of the inputs, whose colour edges are mostly noise, so little is "
                    "propagated; use IProp(NoiseTunnel(base_method)) to propagate the smoothed "
                    "map over the clean image, or pass `guide=` (the clean images in [0, 1])",
                    UserWarning,
                )
            return tuple(min_max_scale(tensor.detach()) for tensor in inputs)
        guides = as_tuple(guide)  # a tensor guide also fits a 1-tuple of inputs (sensitivity_max)
        if len(guides) != len(inputs) or (isinstance(guide, tuple) and not is_tuple):
            raise ValueError(
                f"`guide` must match the structure of `inputs` ({len(inputs)} tensor(s))"
            )
        for tensor, image in zip(inputs, guides):
            check_image_batch("guide", image)
            _check_finite("guide", image)
            _check_guide_range(image)
            if image.shape[2:] != tensor.shape[2:]:
                raise ValueError(
                    f"`guide` has spatial size {tuple(image.shape[2:])} but the inputs have "
                    f"{tuple(tensor.shape[2:])}"
                )
        return guides

    def _to_input_size(self, maps: Tensor, tensor: Tensor) -> Tensor:
        if not isinstance(maps, Tensor) or maps.dim() != 4:
            shape = tuple(maps.shape) if isinstance(maps, Tensor) else type(maps).__name__
            raise ValueError(f"the base method must return (B, C, H, W) maps, got {shape}")
        if maps.shape[2:] == tensor.shape[2:]:
            return maps
        if maps.shape[2] > tensor.shape[2] or maps.shape[3] > tensor.shape[3]:
            raise ValueError(
                f"base attributions of size {tuple(maps.shape[2:])} are larger than the inputs "
                f"{tuple(tensor.shape[2:])}"
            )
        return LayerAttribution.interpolate(maps, tuple(tensor.shape[2:]), self.interpolate_mode)

    def has_convergence_delta(self) -> bool:
        return False

    @property
    def multiplies_by_inputs(self) -> bool:
        return bool(getattr(self.base_method, "multiplies_by_inputs", False))
