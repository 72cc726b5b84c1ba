"""Attributions of the network pruned to each input's critical pathway.

:class:`PrunedAttribution` runs any Captum gradient method (Saliency, InputXGradient,
IntegratedGradients, GuidedBackprop, ...) on the network pruned by a
:class:`~captum_ext.attr.pathway.Pathway` computed at the inputs themselves;
:class:`PathwayGradient` is the Saliency case, the paper's "pathway gradient" (Khakzar et al.,
CVPR 2021, arXiv 2103.16886).
"""

from typing import Any, Callable, Optional, Sequence, Type, cast

from captum.attr import Attribution, GradientAttribution, Saliency
from captum.log import log_usage
from torch import Tensor, nn

from captum_ext._compat import TargetType, TensorOrTupleOfTensorsGeneric
from captum_ext._utils import check_fraction
from captum_ext.attr.pathway import (
    DEFAULT_SPARSITY,
    EXPANSIONS,
    CriticalPathway,
    Pathway,
    check_choice,
)


class PrunedAttribution(GradientAttribution):
    r"""Any Captum gradient method, run on the network pruned to each input's critical pathway.

    ``attribute(inputs, ...)`` first computes the pathway of ``inputs`` (one forward and one
    backward pass, see :class:`~captum_ext.attr.pathway.CriticalPathway`), then runs the wrapped
    method with the pathway's masks applied. The pathway is computed **once, at the inputs
    themselves**, and stays fixed while the method evaluates other points (the scaled inputs of
    IntegratedGradients, the baselines, ...): this is what "input-specific" means. Inside
    ``NoiseTunnel`` every noisy sample is an input of its own and gets its own pathway.

    A method that evaluates ``k`` points per input must stack them as ``k`` whole batches
    (``expansion="repeat"``, what IntegratedGradients does; row ``i`` uses the mask of sample
    ``i % B``) or sample by sample (``expansion="repeat_interleave"``, row ``i`` uses sample
    ``i // k``; what Captum's NoiseTunnel and GradientShap do). So
    ``NoiseTunnel(PathwayGradient(model))`` prunes at every noisy copy, while
    ``PrunedAttribution(lambda f: NoiseTunnel(Saliency(f)), model,
    expansion="repeat_interleave")`` keeps the clean input's pathway for all copies.

    Known vs chosen: the pathway (ReLU units, ``|a * dS/da|``, global percentile, prune
    ``score <= thr``) follows the authors' code; running methods other than the plain gradient
    on the pruned network, and ``sparsity = 0`` meaning no pruning at all, are choices of this
    package. ``compute_convergence_delta`` called directly (outside ``attribute``) sees the
    unpruned network; the delta returned by ``attribute(..., return_convergence_delta=True)`` is
    that of the pruned one.

    Args:
        method (Callable[..., Attribution]): a Captum attribution class (or any factory)
                    called as ``method(forward_func, **method_kwargs)``.
        model (nn.Module): the network whose prunable modules are masked.
        sparsity (float): fraction of units pruned per input, in [0, 1). ``0`` prunes nothing.
                    Default: 0.95, chosen on the stamp benchmark (the authors' code uses 0.85,
                    the papers 0.70-0.90; see ``docs/pruning.md``).
        forward_func (Callable, optional): what the method explains; must call ``model``
                    once per evaluation. Default: ``model``.
        module_types (sequence of nn.Module subclasses): modules whose outputs are units.
                    Default: ``(nn.ReLU,)``.
        scoring (str): ``"taylor"`` (default), ``"neuron_int_grad"`` or ``"random"``.
        expansion (str): ``"repeat"`` (default) or ``"repeat_interleave"``, see above.
        pathway_kwargs (dict, optional): more arguments of ``CriticalPathway`` (``n_steps``,
                    ``internal_batch_size``, ``generator``).
        **method_kwargs: passed to ``method`` (e.g. ``multiply_by_inputs=False``).

    Examples::

        >>> import torch
        >>> from captum.attr import IntegratedGradients
        >>> _ = torch.manual_seed(0)
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(),
        ...                           torch.nn.Linear(16, 3)).eval()
        >>> pruned_ig = PrunedAttribution(IntegratedGradients, net, sparsity=0.7)
        >>> x = torch.randn(2, 4)
        >>> attr, delta = pruned_ig.attribute(x, target=1, n_steps=32,
        ...                                   return_convergence_delta=True)
        >>> attr.shape, bool(delta.abs().max() < 1e-4)
        (torch.Size([2, 4]), True)
    """

    def __init__(
        self,
        method: Callable[..., Attribution],
        model: nn.Module,
        sparsity: float = DEFAULT_SPARSITY,
        forward_func: Optional[Callable[..., Tensor]] = None,
        module_types: Sequence[Type[nn.Module]] = (nn.ReLU,),
        scoring: str = "taylor",
        expansion: str = "repeat",
        pathway_kwargs: Optional[dict] = None,
        **method_kwargs: Any,
    ) -> None:
        check_fraction("sparsity", sparsity)
        check_choice("expansion", expansion, EXPANSIONS)
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
        self.expansion = expansion

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
        """The critical pathway of ``inputs`` (masks, scores, diagnostics) at ``self.sparsity``.

        Args:
            inputs (Tensor or tuple of Tensor): the inputs.
            target (TargetType): Captum target; None picks the predicted class.
            additional_forward_args (Any, optional): extra arguments of ``forward_func``.

        Returns:
            Pathway
        """
        return self.finder.compute(inputs, target, self.sparsity, additional_forward_args)

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        target: TargetType = None,
        additional_forward_args: Any = None,
        **kwargs: Any,
    ) -> Any:
        r"""Attributions of the wrapped method on the pruned network.

        Args:
            inputs (Tensor or tuple of Tensor): inputs to explain (dim 0 = samples); the pathway
                        is computed here.
            target (int, tuple, Tensor or list, optional): Captum target. None picks the
                        predicted class of a (B, C) output (the papers' default), both for the
                        pathway and for the method.
            additional_forward_args (Any, optional): extra arguments of ``forward_func``.
            **kwargs: every other argument of the wrapped method's ``attribute`` (e.g.
                        ``baselines``, ``n_steps``, ``internal_batch_size``,
                        ``return_convergence_delta``).

        Returns:
            Whatever the wrapped method returns (attributions shaped like ``inputs``, plus a
            delta if asked for).
        """
        pathway = self.finder.compute(
            inputs, target, self.sparsity, additional_forward_args, keep_scores=False
        )
        with pathway.applied(self.expansion):
            return self.method.attribute.__wrapped__(  # type: ignore[attr-defined]
                self.method,
                inputs,
                target=pathway.target,
                additional_forward_args=additional_forward_args,
                **kwargs,
            )


class PathwayGradient(PrunedAttribution):
    r"""Pathway gradient: the input gradient of the network pruned to the input's pathway.

    For each input, the units (ReLU outputs, one mask per module call) with the lowest
    ``|a * dS/da|`` are pruned until ``sparsity`` of them are gone (one global percentile per
    input), and the gradient of the pruned network's target output with respect to the input is
    returned (signed by default, as in the paper). Cost: 2 forward + 2 backward passes per batch.
    ``sparsity = 0`` gives exactly Captum's ``Saliency(abs=False)``.

    Args:
        model (nn.Module): the network (call ``model.eval()`` first, as for any Captum method).
        sparsity (float): fraction of units pruned per input, in [0, 1). Default: 0.95
                    (stamp benchmark; the authors' code uses 0.85).
        forward_func (Callable, optional): what is explained; must call ``model`` once.
                    Default: ``model``.
        module_types (sequence of nn.Module subclasses): default ``(nn.ReLU,)``.
        scoring (str): ``"taylor"`` (paper), ``"neuron_int_grad"`` or ``"random"`` (control).
        pathway_kwargs (dict, optional): more arguments of ``CriticalPathway``.

    Examples::

        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),
        ...                           torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 4)).eval()
        >>> x = torch.randn(2, 3, 8, 8)
        >>> attributions = PathwayGradient(net, sparsity=0.7).attribute(x, target=0)
        >>> attributions.shape
        torch.Size([2, 3, 8, 8])
    """

    def __init__(
        self,
        model: nn.Module,
        sparsity: float = DEFAULT_SPARSITY,
        forward_func: Optional[Callable[..., Tensor]] = None,
        module_types: Sequence[Type[nn.Module]] = (nn.ReLU,),
        scoring: str = "taylor",
        pathway_kwargs: Optional[dict] = None,
    ) -> None:
        super().__init__(
            Saliency, model, sparsity=sparsity, forward_func=forward_func,
            module_types=module_types, scoring=scoring, pathway_kwargs=pathway_kwargs,
        )

    @property
    def multiplies_by_inputs(self) -> bool:
        return False

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        target: TargetType = None,
        abs: bool = False,
        additional_forward_args: Any = None,
    ) -> TensorOrTupleOfTensorsGeneric:
        r"""The gradient of the pruned network's target output with respect to ``inputs``.

        Args:
            inputs (Tensor or tuple of Tensor): inputs (dim 0 = samples).
            target (int, tuple, Tensor or list, optional): Captum target; None picks the
                        predicted class of a (B, C) output.
            abs (bool): return ``|gradient|`` (Captum Saliency's default) instead of the signed
                        gradient (the paper's). Default: False.
            additional_forward_args (Any, optional): extra arguments of ``forward_func``.

        Returns:
            Tensor or tuple of Tensor: attributions shaped like ``inputs``.
        """
        return cast(
            TensorOrTupleOfTensorsGeneric,
            PrunedAttribution.attribute.__wrapped__(  # type: ignore[attr-defined]
                self, inputs, target=target, additional_forward_args=additional_forward_args,
                abs=abs,
            ),
        )


__all__ = ["DEFAULT_SPARSITY", "PathwayGradient", "PrunedAttribution"]

