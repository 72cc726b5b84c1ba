"""Attributions of the network pruned to each input's critical pathway.

:class:`PrunedAttribution` runs any Captum gradient method (Saliency, InputXGradient,
IntegratedGradients, GradientShap, DeepLift(Shap), GuidedBackprop, ...) on the network pruned by a
:class:`~captum_ext.attr.pathway.Pathway` computed at the inputs themselves;
:class:`PathwayGradient` is the Saliency case, the paper's "pathway gradient" (Khakzar et al.,
CVPR 2021, arXiv 2103.16886). ``attribute(..., return_diagnostics=True)`` also returns a
:class:`PathwayDiagnostics`.
"""

import inspect
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
    Literal,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
    cast,
    overload,
)

import torch
from captum.attr import (
    Attribution,
    DeepLift,
    GradientAttribution,
    GradientShap,
    LayerDeepLift,
    LayerGradientShap,
    NoiseTunnel,
    Saliency,
)
from captum.log import log_usage
from torch import Tensor, nn

from captum_ext._checks import check_choice, check_fraction, check_target
from captum_ext._compat import (
    TargetType,
    TensorOrTupleOfTensorsGeneric,
    _format_additional_forward_args,
    _run_forward,
)
from captum_ext._utils import preserved_model_state, warn_external
from captum_ext.attr.pathway import (
    DEFAULT_SPARSITY,
    EXPANSIONS,
    PRESETS,
    CriticalPathway,
    ExpansionType,
    Pathway,
    check_inputs,
    default_target,
    resolve_preset,
)


@dataclass(frozen=True)
class PathwayDiagnostics:
    """What pruning did, returned by ``attribute(..., return_diagnostics=True)``.

    Args:
        pathway (Pathway or None): the pathway (masks, scores, thresholds); None for a batch
                    of 0.
        sparsity (float): the requested fraction of pruned units.
        realized_sparsity (Tensor): (B,) the fraction actually pruned (>= ``sparsity *
                    (U - 1) / U``; more where scores tie at the threshold).
        thresholds (Tensor): (B,) per-sample score threshold (``-inf`` at sparsity 0).
        num_units (int): units per sample, all activation calls together.
        num_calls (int): activation calls (unit sets) per forward pass.
        target (TargetType): the target used (the predicted class when ``target=None``).
        target_prob (Tensor or None): (B,) softmax probability of the target, unpruned;
                    None unless the output is (B, C).
        pruned_target_prob (Tensor or None): (B,) the same for the pruned network.
        relative_prob_change (Tensor or None): (B,) ``(p_pruned - p) / p`` (the papers chose
                    the sparsity for a change of about 15%).

    Examples::

        >>> mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> _, diagnostics = PathwayGradient(mlp, sparsity=0.5).attribute(
        ...     torch.rand(3, 4), target=0, return_diagnostics=True)
        >>> diagnostics.num_units, diagnostics.num_calls, diagnostics.realized_sparsity.shape
        (8, 1, torch.Size([3]))
    """

    pathway: Optional[Pathway]
    sparsity: float
    realized_sparsity: Tensor
    thresholds: Tensor
    num_units: int
    num_calls: int
    target: TargetType
    target_prob: Optional[Tensor] = None
    pruned_target_prob: Optional[Tensor] = None
    relative_prob_change: Optional[Tensor] = None


def _diagnostics(pathway: Pathway, inputs: Tuple[Tensor, ...], args: Any) -> PathwayDiagnostics:
    probs: Dict[str, Optional[Tensor]] = {
        "target_prob": None, "pruned_target_prob": None, "relative_prob_change": None}
    if pathway.clean_output is not None and pathway.clean_output.dim() == 2:
        probs.update(pathway.probabilities(inputs, args))
    return PathwayDiagnostics(
        pathway=pathway,
        sparsity=pathway.sparsity,
        realized_sparsity=pathway.realized_sparsity(),
        thresholds=pathway.thresholds,
        num_units=pathway.num_units,
        num_calls=pathway.num_calls,
        target=pathway.target,
        **probs,
    )


def _empty_diagnostics(sparsity: float, target: TargetType, device: torch.device
                       ) -> PathwayDiagnostics:
    empty = torch.zeros(0, dtype=torch.float64, device=device)
    return PathwayDiagnostics(None, sparsity, empty, empty, 0, 0, target)


def auto_expansion(method: Attribution) -> str:
    """The row order of the forward batches ``method`` evaluates (see ``expansion_index``).

    DeepLift and DeepLiftShap (and their layer versions) evaluate the inputs (each repeated
    per baseline) followed by the baselines: ``"interleave_halves"``. GradientShap and
    NoiseTunnel repeat each sample in a row: ``"repeat_interleave"``. Anything else is taken to
    stack whole batches (IntegratedGradients): ``"repeat"``.

    Examples::

        >>> from captum.attr import GradientShap, IntegratedGradients
        >>> net = torch.nn.Linear(2, 2)
        >>> auto_expansion(GradientShap(net)), auto_expansion(IntegratedGradients(net))
        ('repeat_interleave', 'repeat')
    """
    if isinstance(method, (DeepLift, LayerDeepLift)):
        return "interleave_halves"
    if isinstance(method, (GradientShap, LayerGradientShap, NoiseTunnel)):
        return "repeat_interleave"
    return "repeat"


def _like_inputs(inputs: Any, values: Sequence[Tensor]) -> Any:
    return tuple(values) if isinstance(inputs, tuple) else values[0]


class PrunedAttribution(GradientAttribution):
    r"""Any Captum gradient method, run on the network pruned to each input's critical pathway.

    ``attribute`` takes exactly the wrapped method's arguments (bound with its signature, so
    ``PrunedAttribution(IntegratedGradients, model).attribute(x, baselines, target=3)`` binds as
    for Captum's ``IntegratedGradients``), plus the keyword ``return_diagnostics``. It first
    computes the pathway of ``inputs`` (one forward and one backward pass, see
    :class:`~captum_ext.attr.pathway.CriticalPathway`), then runs the wrapped method with the
    pathway's masks applied. The pathway is computed **once, at the inputs themselves**, and
    stays fixed while the method evaluates other points (the scaled inputs of
    IntegratedGradients, the baselines, ...): this is what "input-specific" means. Inside
    ``NoiseTunnel`` every noisy sample is an input of its own and gets its own pathway.

    Units are the outputs of every ReLU-family activation call (``nn.ReLU``/``nn.ReLU6``
    modules and ``F.relu``/``torch.relu``/``relu_``/``F.relu6``/``hardtanh``/``clamp(min=0)``
    calls, each call its own unit set), so torchvision's ResNets, VGG, DenseNet, GoogLeNet,
    Inception-v3 and MobileNet-v2 work as they are. At ``sparsity = 0`` nothing is intercepted
    and the result is exactly the wrapped method's (with the predicted class as default target).

    A method that evaluates ``k`` points per input stacks them in some row order; the pathway's
    sample ``i`` must be applied to the rows of sample ``i``. ``expansion="auto"`` (default)
    picks the order from the method: ``"interleave_halves"`` for DeepLift / DeepLiftShap,
    ``"repeat_interleave"`` for GradientShap and NoiseTunnel (row ``i`` -> sample ``i // k``),
    ``"repeat"`` otherwise (IntegratedGradients: row ``i`` -> sample ``i % B``). Pass one of these
    names, or a callable ``(rows, batch) -> sample index per row``, for other compositions (e.g.
    ``NoiseTunnel(IntegratedGradients)``). So ``NoiseTunnel(PathwayGradient(model))`` prunes at
    every noisy copy, while ``PrunedAttribution(lambda f: NoiseTunnel(Saliency(f)), model)`` keeps
    the clean input's pathway for all copies.

    Known vs chosen: the pathway (ReLU units, ``|a * dS/da|``, global percentile, prune
    ``score <= thr``) follows the authors' code; running methods other than the plain gradient
    on the pruned network, functional activations as units, and ``sparsity = 0`` meaning no
    pruning are choices of this package. ``compute_convergence_delta`` called directly (outside
    ``attribute``) sees the unpruned network; the delta returned by
    ``attribute(..., return_convergence_delta=True)`` is that of the pruned one.

    Args:
        method (Callable[..., Attribution]): a Captum attribution class (or any factory)
                    called as ``method(forward_func, **method_kwargs)``.
        model (nn.Module): the network whose activations are masked.
        sparsity (float, optional): fraction of units pruned per input, in [0, 1). ``0`` prunes
                    nothing. Default: 0.95, chosen on the stamp benchmark (see
                    ``docs/pruning.md``); ``preset="paper"`` gives the authors' 0.85.
        forward_func (Callable, optional): what the method explains; must call ``model``
                    once per evaluation. Default: ``model``.
        module_types (sequence of nn.Module subclasses, optional): extra module types whose
                    outputs are units (e.g. ``nn.GELU``); ReLU-family modules need none.
        scoring (str, optional): ``"taylor"`` (default), ``"neuron_int_grad"`` or ``"random"``.
        expansion (str or Callable): ``"auto"`` (default), ``"repeat"``,
                    ``"repeat_interleave"``, ``"interleave_halves"`` or a callable, see above.
        pathway_kwargs (dict, optional): more arguments of ``CriticalPathway`` (``n_steps``,
                    ``internal_batch_size``, ``generator``, ``activations``).
        preset (str, optional): the papers' settings, a key of
                    :data:`~captum_ext.attr.pathway.PRESETS`: ``"paper"`` (sparsity 0.85, the
                    authors' code), ``"paper-resnet50"`` (0.75), ``"paper-vgg16"`` (0.90),
                    ``"paper-sanity"`` (0.70); not together with ``sparsity``/``scoring``.
        **method_kwargs: passed to ``method`` (e.g. ``multiply_by_inputs=False``).

    Examples::

        >>> import torch
        >>> from captum.attr import IntegratedGradients
        >>> _ = torch.manual_seed(0)
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(),
        ...                           torch.nn.Linear(16, 3)).eval()
        >>> pruned_ig = PrunedAttribution(IntegratedGradients, net, sparsity=0.7)
        >>> x = torch.randn(2, 4)
        >>> attr, delta = pruned_ig.attribute(x, torch.zeros(2, 4), target=1, n_steps=32,
        ...                                   return_convergence_delta=True)
        >>> attr.shape, bool(delta.abs().max() < 1e-4)
        (torch.Size([2, 4]), True)
        >>> attr, diag = pruned_ig.attribute(x, target=1, return_diagnostics=True)
        >>> diag.num_calls, diag.realized_sparsity.shape
        (1, torch.Size([2]))
    """

    def __init__(
        self,
        method: Callable[..., Attribution],
        model: nn.Module,
        sparsity: Optional[float] = None,
        forward_func: Optional[Callable[..., Tensor]] = None,
        module_types: Optional[Sequence[Type[nn.Module]]] = None,
        scoring: Optional[str] = None,
        expansion: ExpansionType = "auto",
        pathway_kwargs: Optional[dict] = None,
        preset: Optional[str] = None,
        **method_kwargs: Any,
    ) -> None:
        sparsity, scoring = resolve_preset(preset, sparsity, scoring)
        check_fraction("sparsity", sparsity)
        if not callable(expansion):
            check_choice("expansion", expansion, ("auto",) + EXPANSIONS)
        if not callable(method):
            raise TypeError("`method` must be a Captum attribution class or factory")
        self.finder = CriticalPathway(
            model, forward_func, module_types=module_types, scoring=scoring,
            **(pathway_kwargs or {}),
        )
        GradientAttribution.__init__(self, self.finder.forward_func)
        self.method = method(self.finder.forward_func, **method_kwargs)
        if not isinstance(self.method, Attribution):
            raise TypeError(f"`method` must build a captum Attribution, got {self.method!r}")
        self.sparsity = float(sparsity)
        self.preset = preset
        self.expansion: ExpansionType = (
            auto_expansion(self.method) if expansion == "auto" else expansion)
        self._signature = inspect.signature(self.method.attribute)

    @property
    def multiplies_by_inputs(self) -> bool:
        return self.method.multiplies_by_inputs

    def has_convergence_delta(self) -> bool:
        return self.method.has_convergence_delta()

    def pathway(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        target: TargetType = None,
        additional_forward_args: Any = None,
    ) -> Pathway:
        """Deprecated: use ``attribute(..., return_diagnostics=True)``, whose diagnostics hold
        the pathway, or ``CriticalPathway.compute``.

        Returns:
            Pathway: the critical pathway of ``inputs`` at ``self.sparsity``.
        """
        warn_external(
            "`PrunedAttribution.pathway()` is deprecated; use `attribute(..., "
            "return_diagnostics=True)` (diagnostics.pathway) or `CriticalPathway.compute`",
            DeprecationWarning,
        )
        return self.finder.compute(inputs, target, self.sparsity, additional_forward_args)

    # -- the shared procedure ------------------------------------------------------------------

    def _run(
        self,
        inputs: Any,
        target: TargetType,
        additional_forward_args: Any,
        call: Callable[[TargetType], Any],
        return_diagnostics: bool,
        delta_requested: bool = False,
    ) -> Any:
        """Validate, compute the pathway, run ``call(target)`` with it applied."""
        inputs_tuple = check_inputs(inputs)
        batch = inputs_tuple[0].shape[0]
        check_target(target, batch)
        args = _format_additional_forward_args(additional_forward_args)
        if batch == 0:
            result: Any = _like_inputs(inputs, [torch.zeros_like(x) for x in inputs_tuple])
            if delta_requested:
                result = (result, torch.zeros(0, device=inputs_tuple[0].device))
            if return_diagnostics:
                return result, _empty_diagnostics(self.sparsity, target,
                                                  inputs_tuple[0].device)
            return result
        with preserved_model_state(self.finder.model):
            if self.sparsity == 0 and not return_diagnostics:
                if target is None:
                    with torch.no_grad():
                        output = _run_forward(self.finder.forward_func, inputs_tuple, None, args)
                    target = default_target(output, target)
                return call(target)
            pathway = self.finder._compute(
                inputs_tuple, target, self.sparsity, args, keep_scores=return_diagnostics,
                factors=True,
            )
            with pathway.applied(self.expansion):
                result = call(pathway.target)
            if return_diagnostics:
                return result, _diagnostics(pathway, inputs_tuple, args)
            return result

    # -- attribute -------------------------------------------------------------------------------

    @overload
    def attribute(self, *args: Any, return_diagnostics: Literal[False] = False,
                  **kwargs: Any) -> Any: ...

    @overload
    def attribute(self, *args: Any, return_diagnostics: Literal[True],
                  **kwargs: Any) -> Tuple[Any, PathwayDiagnostics]: ...

    @log_usage()
    def attribute(self, *args: Any, return_diagnostics: bool = False, **kwargs: Any) -> Any:
        r"""Attributions of the wrapped method on the pruned network.

        Takes exactly the wrapped method's arguments (``inputs``, ``baselines``, ``target``,
        ``additional_forward_args``, ``n_steps``, ...), positional or keyword, bound with its
        signature. ``target=None`` picks the predicted class of a (B, C) output (the papers'
        default), both for the pathway and for the method. ``inputs`` must be finite; a
        ``target`` list or tensor needs one entry per sample; a batch of 0 returns empty
        attributions shaped like ``inputs``.

        Args:
            *args, **kwargs: the wrapped method's ``attribute`` arguments.
            return_diagnostics (bool): also return a :class:`PathwayDiagnostics` (costs one
                        no-grad forward pass for the target probabilities). Default: False.

        Returns:
            Whatever the wrapped method returns, and with ``return_diagnostics=True`` a tuple
            ``(that, PathwayDiagnostics)``.
        """
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{type(self.method).__name__}.attribute: {error}") from None
        arguments = bound.arguments
        var_kw = next((p.name for p in self._signature.parameters.values()
                       if p.kind is inspect.Parameter.VAR_KEYWORD), None)
        extra = cast(Dict[str, Any], arguments.get(var_kw, {})) if var_kw else {}

        def get(name: str) -> Any:
            return arguments[name] if name in arguments else extra.get(name)

        if "inputs" in arguments:
            inputs = arguments["inputs"]
        elif bound.args:
            inputs = bound.args[0]
        else:
            raise TypeError("`inputs` is required")
        delta = bool(get("return_convergence_delta"))

        def call(target: TargetType) -> Any:
            if "target" in self._signature.parameters:
                arguments["target"] = target
            elif var_kw is not None:
                extra["target"] = target
                arguments[var_kw] = extra
            return self.method.attribute(*bound.args, **bound.kwargs)

        return self._run(inputs, get("target"), get("additional_forward_args"), call,
                         return_diagnostics, delta)


class PathwayGradient(PrunedAttribution):
    r"""Pathway gradient: the **signed** input gradient of the network pruned to the input's pathway.

    Unlike Captum's ``Saliency`` (``abs=True`` by default), ``attribute`` returns the signed
    gradient by default (``abs=False``), as the paper and the authors' code do; pass
    ``abs=True`` for Saliency's convention. ``sparsity = 0`` gives exactly Captum's
    ``Saliency(abs=False)`` on any model.

    For each input, the units (outputs of every ReLU-family activation call, functional or
    module, one mask per call) with the lowest ``|a * dS/da|`` are pruned until ``sparsity`` of
    them are gone (one global percentile per input), and the gradient of the pruned network's
    target output with respect to the input is returned. Cost: 2 forward + 2 backward passes
    per batch (the scoring backward stops at the first activation).

    Args:
        model (nn.Module): the network (call ``model.eval()`` first, as for any Captum method).
        sparsity (float, optional): fraction of units pruned per input, in [0, 1). Default:
                    0.95 (stamp benchmark, ``docs/pruning.md``); ``preset="paper"`` gives the
                    authors' 0.85.
        forward_func (Callable, optional): what is explained; must call ``model`` once.
                    Default: ``model``.
        module_types (sequence of nn.Module subclasses, optional): extra module types whose
                    outputs are units (ReLU-family activations need none).
        scoring (str, optional): ``"taylor"`` (paper, default), ``"neuron_int_grad"`` or
                    ``"random"`` (control).
        pathway_kwargs (dict, optional): more arguments of ``CriticalPathway``.
        preset (str, optional): ``"paper"``, ``"paper-resnet50"``, ``"paper-vgg16"`` or
                    ``"paper-sanity"`` (see ``PRESETS``).

    Examples::

        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),
        ...                           torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 4)).eval()
        >>> x = torch.randn(2, 3, 8, 8)
        >>> attributions = PathwayGradient(net, sparsity=0.7).attribute(x, target=0)
        >>> attributions.shape
        torch.Size([2, 3, 8, 8])
        >>> PathwayGradient(net, preset="paper").sparsity
        0.85
    """

    def __init__(
        self,
        model: nn.Module,
        sparsity: Optional[float] = None,
        forward_func: Optional[Callable[..., Tensor]] = None,
        module_types: Optional[Sequence[Type[nn.Module]]] = None,
        scoring: Optional[str] = None,
        pathway_kwargs: Optional[dict] = None,
        preset: Optional[str] = None,
    ) -> None:
        super().__init__(
            Saliency, model, sparsity=sparsity, forward_func=forward_func,
            module_types=module_types, scoring=scoring, pathway_kwargs=pathway_kwargs,
            preset=preset,
        )

    @property
    def multiplies_by_inputs(self) -> bool:
        return False

    @overload  # type: ignore[override]
    def attribute(self, inputs: TensorOrTupleOfTensorsGeneric, target: TargetType = None,
                  abs: bool = False, additional_forward_args: Any = None, *,
                  return_diagnostics: Literal[False] = False) -> TensorOrTupleOfTensorsGeneric:
        ...

    @overload
    def attribute(self, inputs: TensorOrTupleOfTensorsGeneric, target: TargetType = None,
                  abs: bool = False, additional_forward_args: Any = None, *,
                  return_diagnostics: Literal[True]
                  ) -> Tuple[TensorOrTupleOfTensorsGeneric, PathwayDiagnostics]:
        ...

    @log_usage()
    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        target: TargetType = None,
        abs: bool = False,
        additional_forward_args: Any = None,
        *,
        return_diagnostics: bool = False,
    ) -> Union[TensorOrTupleOfTensorsGeneric,
               Tuple[TensorOrTupleOfTensorsGeneric, PathwayDiagnostics]]:
        r"""The gradient of the pruned network's target output with respect to ``inputs``.

        Args:
            inputs (Tensor or tuple of Tensor): inputs (dim 0 = samples); must be finite.
            target (int, tuple, Tensor or list, optional): Captum target (a list or tensor
                        has one entry per sample); None picks the predicted class of a (B, C)
                        output.
            abs (bool): return ``|gradient|`` (Captum Saliency's default) instead of the signed
                        gradient (the paper's). Default: False.
            additional_forward_args (Any, optional): extra arguments of ``forward_func``.
            return_diagnostics (bool): also return a :class:`PathwayDiagnostics`.
                        Default: False.

        Returns:
            Tensor or tuple of Tensor: attributions shaped like ``inputs`` (and the diagnostics
            with ``return_diagnostics=True``).
        """
        saliency = cast(Saliency, self.method)

        def call(target: TargetType) -> Any:
            return saliency.attribute.__wrapped__(  # type: ignore[attr-defined]
                saliency, inputs, target=target, abs=abs,
                additional_forward_args=additional_forward_args,
            )

        return cast(Any, self._run(inputs, target, additional_forward_args, call,
                                   return_diagnostics))


__all__ = [
    "DEFAULT_SPARSITY",
    "PRESETS",
    "PathwayDiagnostics",
    "PathwayGradient",
    "PrunedAttribution",
    "auto_expansion",
]
