"""Input-specific critical pathways: score every unit, keep the top ones, prune the rest.

A *unit* is one element of the output of one call of a prunable module (by default every
``nn.ReLU``). For a batch of inputs, :class:`CriticalPathway` scores all units of every call in one
forward and one backward pass, thresholds each sample by one global percentile, and returns a
:class:`Pathway`: the 0/1 masks of that batch, one per module call. ``Pathway.applied()`` is a
context manager that multiplies each module output by its mask, so any Captum method run inside
it sees the pruned network.

Known (Khakzar et al., arXiv 1911.11081 / CVPR 2021, authors' code): units are ReLU outputs,
one mask per call; score ``|a * dS/da|`` with ``S`` the target logit; one global percentile per
input with numpy's linear interpolation, units with ``score <= thr`` pruned; the weights are
untouched and later layers recomputed. Chosen here: ``sparsity = 0`` prunes nothing (the
authors' ``<=`` rule would still prune the units tied at the minimum score); a pathway computed
at a batch of size ``B`` is applied to a forward batch of size ``k * B`` by tiling (``"repeat"``,
Captum's IntegratedGradients order) or ``"repeat_interleave"``.
"""

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
    cast,
)

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from captum_ext._compat import (
    TargetType,
    _expand_additional_forward_args,
    _expand_target,
    _format_additional_forward_args,
    _format_tensor_into_tuples,
    _run_forward,
    _select_targets,
)
from captum_ext._utils import check_fraction, check_int_at_least

SCORINGS = ("taylor", "neuron_int_grad", "random")
#: Default fraction of pruned units: best stamp distance on the stamp benchmark (paired against
#: Saliency over 64 images; see docs/pruning.md). The authors' code default is 0.85.
DEFAULT_SPARSITY = 0.95
EXPANSIONS = ("repeat", "repeat_interleave")
HookFn = Callable[[int, nn.Module, Tensor], Tensor]


# ----------------------------------------------------------------------------------------------
# validation and small tensor helpers
# ----------------------------------------------------------------------------------------------


def find_prunable_modules(
    model: nn.Module, module_types: Sequence[Type[nn.Module]] = (nn.ReLU,)
) -> List[nn.Module]:
    """Return the distinct submodules of ``model`` (itself included) of one of ``module_types``.

    Args:
        model (nn.Module): the network.
        module_types (sequence of nn.Module subclasses): which module types hold prunable units.
                    Default: ``(nn.ReLU,)``.

    Returns:
        list of nn.Module: in ``model.modules()`` order. Raises ``ValueError`` when empty.

    Examples::

        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> find_prunable_modules(net)
        [ReLU()]
    """
    types = _check_module_types(module_types)
    found = [m for m in model.modules() if isinstance(m, types)]
    if not found:
        names = ", ".join(t.__name__ for t in types)
        raise ValueError(
            f"`model` has no prunable modules of type(s) {names}; functional calls such as "
            "F.relu cannot be pruned, pass other `module_types` or use nn.ReLU modules"
        )
    return found


def _check_module_types(module_types: Any) -> Tuple[Type[nn.Module], ...]:
    if isinstance(module_types, type):
        module_types = (module_types,)
    if not isinstance(module_types, (tuple, list)) or not module_types:
        raise TypeError("`module_types` must be a non-empty sequence of nn.Module subclasses")
    for t in module_types:
        if not (isinstance(t, type) and issubclass(t, nn.Module)):
            raise TypeError(f"`module_types` must hold nn.Module subclasses, got {t!r}")
    return tuple(module_types)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {tuple(choices)}, got {value!r}")


def percentile_threshold(scores: Tensor, q: float) -> Tensor:
    """Per-row ``numpy.quantile(row, q)`` with linear interpolation, via ``torch.kthvalue``.

    ``torch.quantile`` refuses rows of more than 2^24 elements (VGG16 has 13.6 M ReLU units per
    224x224 image); ``kthvalue`` has no such limit and costs O(n) per row. The interpolation
    mirrors numpy's ``_lerp`` so that thresholds agree with numpy on the same values.

    Args:
        scores (Tensor): (B, N) floating-point scores.
        q (float): quantile in [0, 1].

    Returns:
        Tensor: (B,) thresholds, dtype of ``scores``.

    Examples::

        >>> percentile_threshold(torch.tensor([[0.0, 1.0, 2.0, 10.0]]), 0.5)
        tensor([1.5000])
    """
    if scores.dim() != 2 or scores.shape[1] == 0:
        raise ValueError(f"`scores` must be (B, N) with N > 0, got {tuple(scores.shape)}")
    n = scores.shape[1]
    position = q * (n - 1)
    lower = min(int(math.floor(position)), n - 1)
    gamma = position - lower
    low = torch.kthvalue(scores, lower + 1, dim=1).values
    if gamma == 0.0:
        return low
    high = torch.kthvalue(scores, min(lower + 2, n), dim=1).values
    diff = high - low
    if gamma >= 0.5:
        return high - diff * (1.0 - gamma)
    return low + diff * gamma


def _expand_rows(mask: Tensor, rows: int, expansion: str) -> Tensor:
    batch = mask.shape[0]
    if rows == batch:
        return mask
    if rows % batch != 0:
        raise RuntimeError(
            f"a pathway computed for a batch of {batch} cannot be applied to a forward batch of "
            f"{rows} rows; it must be a multiple of {batch}"
        )
    if expansion == "repeat":
        return mask.repeat((rows // batch,) + (1,) * (mask.dim() - 1))
    return mask.repeat_interleave(rows // batch, dim=0)


# ----------------------------------------------------------------------------------------------
# call-indexed forward hooks
# ----------------------------------------------------------------------------------------------


class CallHooks:
    """Forward hooks that see every call of the given modules with its index in the forward pass.

    The counter is reset by a forward pre-hook on ``root`` (so ``forward_func`` must call ``root``
    once per evaluation). When ``call_modules`` is given, the ``i``-th call must be a call of
    ``call_modules[i]`` (a forward pass that differs from the recorded one raises). The hooks are
    removed on exit, also when the body raises.

    Args:
        root (nn.Module): the module whose call starts a forward pass.
        modules (sequence of nn.Module): the hooked modules.
        fn (Callable[[int, nn.Module, Tensor], Tensor]): ``fn(call_index, module, output)``;
                    returns the tensor that replaces the module output.
        call_modules (list of nn.Module, optional): the expected module of each call.
    """

    def __init__(
        self,
        root: nn.Module,
        modules: Sequence[nn.Module],
        fn: HookFn,
        call_modules: Optional[Sequence[nn.Module]] = None,
    ) -> None:
        self.root = root
        self.modules = list(dict.fromkeys(modules))
        self.fn = fn
        self.call_modules = call_modules
        self.count = 0
        self._handles: List[RemovableHandle] = []

    def _reset(self, *_: Any) -> None:
        self.count = 0

    def _hook(self, module: nn.Module, _inputs: Any, output: Any) -> Tensor:
        if not isinstance(output, Tensor):
            raise TypeError(f"prunable module {module!r} must return a Tensor")
        index = self.count
        expected = self.call_modules
        if expected is not None and (index >= len(expected) or expected[index] is not module):
            raise RuntimeError(
                "the forward pass calls the prunable modules differently from the pass the "
                "pathway was computed on (dynamic control flow, or `forward_func` does not call "
                "`model` exactly once per evaluation)"
            )
        self.count += 1
        return self.fn(index, module, output)

    def __enter__(self) -> "CallHooks":
        try:
            self._handles.append(self.root.register_forward_pre_hook(self._reset))
            for module in self.modules:
                self._handles.append(module.register_forward_hook(self._hook))
        except BaseException:
            self.remove()
            raise
        return self

    def remove(self) -> None:
        """Remove every hook this object installed."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __exit__(self, *exc: Any) -> None:
        self.remove()


# ----------------------------------------------------------------------------------------------
# the pathway (result)
# ----------------------------------------------------------------------------------------------


@dataclass
class Pathway:
    """The critical pathway of one batch: a 0/1 mask per call of a prunable module.

    Args:
        model (nn.Module): the network whose modules are masked (``root`` of the hooks).
        forward_func (Callable): the function evaluated (usually ``model``).
        call_modules (list of nn.Module): the module of each call, in forward order.
        masks (list of Tensor): bool masks ``(B, *unit_shape)``, True = kept, one per call.
        scores (list of Tensor): the unit scores of each call (detached), same shapes (empty
                    when computed with ``keep_scores=False``).
        thresholds (Tensor): (B,) the per-sample threshold; units with ``score <= thr`` pruned.
        sparsity (float): the requested fraction of pruned units.
        target (TargetType): the target used for scoring (formatted, one per sample or shared).
        clean_output (Tensor): the unpruned forward output (detached), for diagnostics.
    """

    model: nn.Module
    forward_func: Callable[..., Tensor]
    call_modules: List[nn.Module]
    masks: List[Tensor]
    scores: List[Tensor]
    thresholds: Tensor
    sparsity: float
    target: TargetType = None
    clean_output: Optional[Tensor] = field(default=None, repr=False)

    @property
    def batch_size(self) -> int:
        """Number of samples the pathway was computed for."""
        return int(self.masks[0].shape[0])

    @property
    def num_calls(self) -> int:
        """Number of module calls (e.g. 17 for torchvision ResNet-18)."""
        return len(self.masks)

    def flat_masks(self) -> Tensor:
        """(B, U) bool: every unit of every call, in forward order."""
        return torch.cat([m.reshape(m.shape[0], -1) for m in self.masks], dim=1)

    def realized_sparsity(self) -> Tensor:
        """(B,) the fraction of units actually pruned.

        At least ``floor(sparsity * (U - 1)) + 1`` of the ``U`` units go (more when scores tie
        at the threshold), so it is ``>= sparsity * (U - 1) / U``.
        """
        return 1.0 - self.flat_masks().float().mean(dim=1)

    @contextmanager
    def applied(self, expansion: str = "repeat") -> Iterator["Pathway"]:
        """Context manager: every call of a pruned module returns ``output * mask``.

        Args:
            expansion (str): how a forward batch of ``k * B`` rows maps to the ``B`` masks:
                        ``"repeat"`` (row ``i`` uses mask ``i % B``; Captum's
                        IntegratedGradients and LayerIntegratedGradients order) or
                        ``"repeat_interleave"`` (row ``i`` uses mask ``i // k``).
                        Default: ``"repeat"``.

        Examples::

            >>> _ = torch.manual_seed(0)
            >>> net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
            >>> x = torch.randn(2, 3)
            >>> pathway = CriticalPathway(net).compute(x, target=0, sparsity=0.5)
            >>> with pathway.applied():
            ...     pruned = net(x)
            >>> pruned.shape
            torch.Size([2, 2])
        """
        check_choice("expansion", expansion, EXPANSIONS)
        cache: Dict[Tuple[Any, ...], Tensor] = {}

        def mask_output(index: int, _module: nn.Module, output: Tensor) -> Tensor:
            key = (index, output.shape[0], output.dtype, output.device)
            if key not in cache:
                mask = self.masks[index].to(device=output.device, dtype=output.dtype)
                cache[key] = _expand_rows(mask, output.shape[0], expansion)
            mask = cache[key]
            if mask.shape != output.shape:
                raise RuntimeError(
                    f"call {index} returned shape {tuple(output.shape)}, the pathway holds a "
                    f"mask of shape {tuple(mask.shape)}"
                )
            return output * mask

        with CallHooks(self.model, self.call_modules, mask_output, self.call_modules):
            yield self

    def diagnostics(
        self, inputs: Union[Tensor, Tuple[Tensor, ...]], additional_forward_args: Any = None
    ) -> Dict[str, Tensor]:
        """Realised sparsity and the relative change of the target probability caused by pruning.

        One forward pass of the pruned network (no gradient) at the inputs the pathway was
        computed for.

        Args:
            inputs (Tensor or tuple of Tensor): the same inputs as given to ``compute``.
            additional_forward_args (Any, optional): as given to ``compute``.

        Returns:
            dict with ``"realized_sparsity"`` (B,), ``"target_prob"`` (B,) of the unpruned net,
            ``"pruned_target_prob"`` (B,) and ``"relative_prob_change"`` (B,) =
            ``(p_pruned - p) / p`` (softmax over dim 1 of a 2-D output).
        """
        if self.clean_output is None or self.clean_output.dim() != 2:
            raise ValueError("diagnostics need a forward_func returning (B, num_classes) logits")
        inputs_tuple = _format_tensor_into_tuples(inputs)
        args = _format_additional_forward_args(additional_forward_args)
        with torch.no_grad(), self.applied():
            pruned = _run_forward(self.forward_func, inputs_tuple, None, args)
        clean_p = _select_targets(torch.softmax(self.clean_output.float(), dim=1), self.target)
        pruned_p = _select_targets(torch.softmax(pruned.detach().float(), dim=1), self.target)
        return {
            "realized_sparsity": self.realized_sparsity(),
            "target_prob": clean_p,
            "pruned_target_prob": pruned_p,
            "relative_prob_change": (pruned_p - clean_p) / clean_p,
        }


# ----------------------------------------------------------------------------------------------
# the pathway finder (scoring + thresholding)
# ----------------------------------------------------------------------------------------------


def default_target(output: Tensor, target: TargetType) -> TargetType:
    """``target``, or the predicted class per sample when ``target`` is None and the output is
    (B, C) with C > 1 (the papers' default); otherwise ``target`` unchanged."""
    if target is None and output.dim() == 2 and output.shape[1] > 1:
        return output.argmax(dim=1).detach()
    return target


class CriticalPathway:
    r"""Finds the critical pathway of each input: the units to keep, by a global percentile.

    ``compute(inputs, target, sparsity)`` returns a :class:`Pathway`. Scoring rules:

    - ``"taylor"`` (the paper's NeuronMCT, default): ``|a * dS/da|`` from one forward and one
      backward pass of the unpruned network; ``S`` is the target output (pre-softmax logit).
    - ``"neuron_int_grad"``: for each call separately, the call's output is scaled by
      ``alpha`` at the midpoints of ``n_steps`` equal bins of (0, 1) (all other calls unscaled),
      ``dS/d(alpha a)`` is averaged over ``alpha``, and the score is ``|a * mean grad|``
      (integrated gradients of that call from 0; every call scored, unlike the authors' code).
      Costs ``n_steps * num_calls`` forward and backward sample evaluations.
    - ``"random"``: uniform random scores, a control with the same sparsity.

    Each sample is thresholded by ``thr = quantile(scores, sparsity)`` over all its units (linear
    interpolation, as ``numpy.percentile``); units with ``score <= thr`` are pruned, except that
    ``sparsity = 0`` prunes nothing. The realised sparsity is at least
    ``sparsity * (U - 1) / U`` for ``U`` units, more where scores tie (e.g. dead ReLUs score 0).

    The model is not changed: only forward hooks (removed on exit) are used; its mode is left as
    is (call ``model.eval()`` yourself, as for any Captum method).

    Args:
        model (nn.Module): the network; its prunable submodules are found by type.
        forward_func (Callable, optional): what is evaluated; must call ``model`` exactly once.
                    Default: ``model``.
        module_types (sequence of nn.Module subclasses): default ``(nn.ReLU,)``.
        scoring (str): ``"taylor"``, ``"neuron_int_grad"`` or ``"random"``. Default ``"taylor"``.
        n_steps (int): steps of ``"neuron_int_grad"``. Default 8.
        internal_batch_size (int, optional): rows per forward pass of ``"neuron_int_grad"``.
        generator (torch.Generator, optional): random source of ``"random"``.

    Examples::

        >>> _ = torch.manual_seed(0)
        >>> net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
        ...                     nn.Linear(16, 3))
        >>> pathway = CriticalPathway(net).compute(torch.randn(5, 4), sparsity=0.75)
        >>> pathway.num_calls, tuple(pathway.masks[0].shape)
        (2, (5, 16))
        >>> pathway.realized_sparsity()
        tensor([0.7500, 0.7500, 0.7500, 0.7500, 0.7500])
    """

    def __init__(
        self,
        model: nn.Module,
        forward_func: Optional[Callable[..., Tensor]] = None,
        module_types: Sequence[Type[nn.Module]] = (nn.ReLU,),
        scoring: str = "taylor",
        n_steps: int = 8,
        internal_batch_size: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"`model` must be an nn.Module, got {type(model).__name__}")
        if forward_func is not None and not callable(forward_func):
            raise TypeError("`forward_func` must be callable")
        check_choice("scoring", scoring, SCORINGS)
        check_int_at_least("n_steps", n_steps, 1)
        if internal_batch_size is not None:
            check_int_at_least("internal_batch_size", internal_batch_size, 1)
        self.model = model
        self.forward_func = forward_func if forward_func is not None else model
        self.modules = find_prunable_modules(model, module_types)
        self.scoring = scoring
        self.n_steps = n_steps
        self.internal_batch_size = internal_batch_size
        self.generator = generator

    # -- public ------------------------------------------------------------------------------

    def compute(
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        target: TargetType = None,
        sparsity: float = DEFAULT_SPARSITY,
        additional_forward_args: Any = None,
        keep_scores: bool = True,
    ) -> Pathway:
        """Score every unit at ``inputs`` and threshold each sample.

        Args:
            inputs (Tensor or tuple of Tensor): batch of inputs (dim 0 = samples).
            target (int, tuple, Tensor or list, optional): Captum target; None picks the
                        predicted class of a (B, C) output.
            sparsity (float): fraction of units pruned per sample, in [0, 1). Default 0.95
                        (``DEFAULT_SPARSITY``).
            additional_forward_args (Any, optional): extra arguments of ``forward_func``.
            keep_scores (bool): keep the float scores in the pathway (``False`` frees that
                        memory before the pruned pass; ``scores`` is then empty). Default True.

        Returns:
            Pathway: masks, scores, thresholds and the unpruned output.
        """
        check_fraction("sparsity", sparsity)
        inputs_tuple = tuple(
            x.detach().requires_grad_(x.is_floating_point())
            for x in _format_tensor_into_tuples(inputs)
        )
        args = _format_additional_forward_args(additional_forward_args)
        call_modules, taylor, output, target, flat = self._taylor_pass(inputs_tuple, target, args)
        if self.scoring == "taylor":
            scores = taylor
        elif self.scoring == "random":
            scores = [
                torch.rand(a.shape, generator=self.generator, device="cpu").to(a.device)
                for a in taylor
            ]
        else:
            scores = self._neuron_int_grad_scores(inputs_tuple, target, args, call_modules)
        if self.scoring != "taylor":
            del taylor
            flat = torch.cat([sc.reshape(sc.shape[0], -1) for sc in scores], dim=1)
        masks, thresholds = threshold_scores(scores, sparsity, flat=flat)
        return Pathway(
            model=self.model,
            forward_func=self.forward_func,
            call_modules=call_modules,
            masks=masks,
            scores=scores if keep_scores else [],
            thresholds=thresholds,
            sparsity=float(sparsity),
            target=target,
            clean_output=output.detach(),
        )

    # -- scoring passes ----------------------------------------------------------------------

    def _taylor_pass(
        self, inputs: Tuple[Tensor, ...], target: TargetType, args: Any, clone: bool = False
    ) -> Tuple[List[nn.Module], List[Tensor], Tensor, TargetType, Tensor]:
        """One forward + one backward: the calls, ``|a * dS/da|`` per call, output, target.

        The scores are views into one (B, U) buffer (also returned), filled call by call while
        the activations and gradients are released. Activations are recorded as they are; if a
        later inplace op changed one (its version moved), the pass is redone with the hooks
        returning copies, so the recorded values stay intact.
        """
        modules: List[nn.Module] = []
        outputs: List[Optional[Tensor]] = []
        versions: List[int] = []

        def record(_index: int, module: nn.Module, output: Tensor) -> Tensor:
            modules.append(module)
            outputs.append(output)
            versions.append(output._version)
            return output.clone() if clone else output

        batch = inputs[0].shape[0]
        with torch.enable_grad(), CallHooks(self.model, self.modules, record):
            output = _run_forward(self.forward_func, inputs, None, args)
            if not modules:
                raise ValueError("`forward_func` never called a prunable module of `model`")
            changed = any(cast(Tensor, a)._version != v for a, v in zip(outputs, versions))
            if not (changed and not clone):
                target = default_target(output, target)
                selected = _select_targets(output, target)
                if selected.numel() != batch:
                    raise ValueError(
                        "`target` must select one scalar output per sample, got "
                        f"{selected.numel()} values for {batch} samples"
                    )
                grads = list(torch.autograd.grad(selected.sum(), outputs, allow_unused=True))
        if changed and not clone:
            return self._taylor_pass(inputs, target, args, clone=True)
        if any(a is None or a.dim() == 0 or a.shape[0] != batch for a in outputs):
            raise ValueError("prunable modules must return tensors with the batch as dim 0")
        first = cast(Tensor, outputs[0])
        sizes = [cast(Tensor, a)[0].numel() for a in outputs]
        flat = torch.empty(batch, sum(sizes), dtype=first.dtype, device=first.device)
        scores: List[Tensor] = []
        offset = 0
        for i, size in enumerate(sizes):
            a, g = cast(Tensor, outputs[i]), grads[i]
            view = flat[:, offset:offset + size].view(a.shape)
            if g is None:
                view.zero_()
            else:
                torch.mul(g, a.detach(), out=view).abs_()
            outputs[i] = grads[i] = None  # release as we go
            scores.append(view)
            offset += size
        return modules, scores, output, target, flat

    def _neuron_int_grad_scores(
        self,
        inputs: Tuple[Tensor, ...],
        target: TargetType,
        args: Any,
        call_modules: List[nn.Module],
    ) -> List[Tensor]:
        """Per call: ``|a * mean_alpha dS/d(alpha a)|``, the other calls unscaled."""
        batch = inputs[0].shape[0]
        steps = self.n_steps
        alphas_all = (torch.arange(steps, dtype=torch.float64) + 0.5) / steps
        per_chunk = max(1, (self.internal_batch_size or batch * steps) // batch)
        scores: List[Tensor] = []
        for call in range(len(call_modules)):
            grad_sum: Optional[Tensor] = None
            value: Optional[Tensor] = None
            for start in range(0, steps, per_chunk):
                alphas = alphas_all[start:start + per_chunk]
                grad, value = self._scaled_call_grad(inputs, target, args, call_modules, call,
                                                     alphas)
                grad_sum = grad if grad_sum is None else grad_sum + grad
            assert grad_sum is not None and value is not None
            scores.append((value * grad_sum / steps).abs())
        return scores

    def _scaled_call_grad(
        self,
        inputs: Tuple[Tensor, ...],
        target: TargetType,
        args: Any,
        call_modules: List[nn.Module],
        call: int,
        alphas: Tensor,
    ) -> Tuple[Tensor, Tensor]:
        """Sum over ``alphas`` of ``dS/d(alpha a)`` for one call, and the unscaled ``a``."""
        batch = inputs[0].shape[0]
        k = alphas.numel()
        expanded = tuple(torch.cat([x] * k, dim=0) for x in inputs)
        exp_args = _expand_additional_forward_args(args, k) if args is not None else None
        exp_target = _expand_target(target, k)
        captured: List[Tensor] = []

        def scale(index: int, _module: nn.Module, output: Tensor) -> Tensor:
            if index != call:
                return output
            factor = alphas.to(device=output.device, dtype=output.dtype).repeat_interleave(batch)
            scaled = output * factor.view((-1,) + (1,) * (output.dim() - 1))
            captured.extend([output.detach()[:batch].clone(), scaled])
            return scaled

        with torch.enable_grad(), CallHooks(self.model, self.modules, scale, call_modules):
            output = _run_forward(self.forward_func, expanded, None, exp_args)
            selected = _select_targets(output, exp_target)
            (grad,) = torch.autograd.grad(selected.sum(), captured[1], allow_unused=True)
        value = captured[0]
        if grad is None:
            return torch.zeros_like(value), value
        return grad.reshape((k, batch) + tuple(grad.shape[1:])).sum(dim=0), value


def threshold_scores(
    scores: Sequence[Tensor], sparsity: float, flat: Optional[Tensor] = None
) -> Tuple[List[Tensor], Tensor]:
    """Masks (True = kept) from per-call scores by one global percentile per sample.

    Args:
        scores (sequence of Tensor): ``(B, *unit_shape)`` per call.
        sparsity (float): quantile in [0, 1); ``0`` keeps every unit.
        flat (Tensor, optional): the same scores as one (B, U) tensor, if already at hand.

    Returns:
        (masks, thresholds): bool masks shaped like ``scores``; (B,) thresholds
        (``-inf`` for ``sparsity = 0``).

    Examples::

        >>> masks, thr = threshold_scores([torch.tensor([[0.0, 3.0], [1.0, 1.0]]),
        ...                                torch.tensor([[2.0], [1.0]])], 0.5)
        >>> masks[0].tolist(), masks[1].tolist(), thr.tolist()
        ([[False, True], [False, False]], [[False], [False]], [2.0, 1.0])
    """
    check_fraction("sparsity", sparsity)
    if flat is None:
        flat = torch.cat([s.reshape(s.shape[0], -1) for s in scores], dim=1)
    if sparsity == 0:
        thresholds = torch.full((flat.shape[0],), -math.inf, dtype=flat.dtype, device=flat.device)
        return [torch.ones_like(s, dtype=torch.bool) for s in scores], thresholds
    thresholds = percentile_threshold(flat, float(sparsity))
    shape = (-1,)
    masks = [s > thresholds.view(shape + (1,) * (s.dim() - 1)) for s in scores]
    return masks, thresholds
