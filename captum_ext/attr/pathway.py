"""Input-specific critical pathways: score every unit, keep the top ones, prune the rest.

A *unit* is one element of the output of one call of a prunable activation. By default every
call of a ReLU-family function is one unit set, whether the model calls it as a module
(``nn.ReLU``, ``nn.ReLU6``, ``nn.Hardtanh``) or functionally (``F.relu``, ``torch.relu``,
``Tensor.relu_``, ``F.relu6``, ``F.hardtanh``, ``clamp(min=0)``), in place or not: the calls are
intercepted with a :class:`torch.overrides.TorchFunctionMode` while the model runs, so no model
has to be rewritten. A module called twice (torchvision's ``BasicBlock``) gives two unit sets.

For a batch of inputs, :class:`CriticalPathway` scores all units of every call in one forward
and one backward pass, thresholds each sample by one global percentile, and returns a
:class:`Pathway`: the 0/1 masks of that batch, one per activation call. ``Pathway.applied()`` is
a context manager that multiplies each activation output by its mask, so any Captum method run
inside it sees the pruned network.

Known (Khakzar et al., arXiv 1911.11081 / CVPR 2021, authors' code): units are ReLU outputs,
one mask per call; score ``|a * dS/da|`` with ``S`` the target logit; one global percentile per
input with numpy's linear interpolation, units with ``score <= thr`` pruned; the weights are
untouched and later layers recomputed. The authors hook ``nn.ReLU`` modules only; intercepting
functional calls (and ReLU6 / hardtanh / ``clamp(min=0)``) is a choice of this package, so that
GoogLeNet, Inception-v3, DenseNet's last ReLU and MobileNet-v2 are pruned as ResNets are.
Chosen here too: ``sparsity = 0`` prunes nothing (the authors' ``<=`` rule would still prune the
units tied at the minimum score); a pathway computed at a batch of size ``B`` is applied to a
forward batch of size ``k * B`` by an *expansion* rule (see :func:`expansion_index`).
"""

import math
from concurrent.futures import ThreadPoolExecutor
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

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils.hooks import RemovableHandle

from captum_ext._checks import (
    check_choice,
    check_finite,
    check_fraction,
    check_int_at_least,
    check_target,
    expand_target,
    select_additional_args,
    select_target,
)
from captum_ext._compat import (
    TargetType,
    _expand_additional_forward_args,
    _format_additional_forward_args,
    _format_tensor_into_tuples,
    _run_forward,
    _select_targets,
)
from captum_ext._utils import preserved_model_state, warn_external

SCORINGS = ("taylor", "neuron_int_grad", "random")
#: Default fraction of pruned units: best stamp distance on the stamp benchmark (paired against
#: Saliency over 64 images; see docs/pruning.md). The authors' code default is 0.85.
DEFAULT_SPARSITY = 0.95
#: The papers' settings (authors' code, CAMP-eXplain-AI/PathwayGrad): ``"paper"`` is the code's
#: default percentile 85; their ResNet-50 figures use 75, VGG-16 90, the sanity checks 70.
PRESETS: Dict[str, Dict[str, Any]] = {
    "paper": {"sparsity": 0.85, "scoring": "taylor"},
    "paper-resnet50": {"sparsity": 0.75, "scoring": "taylor"},
    "paper-vgg16": {"sparsity": 0.90, "scoring": "taylor"},
    "paper-sanity": {"sparsity": 0.70, "scoring": "taylor"},
}
#: Activation families intercepted as functional calls (see :func:`_parse_activation`).
ACTIVATIONS = ("relu", "relu6", "hardtanh", "clamp")
EXPANSIONS = ("repeat", "repeat_interleave", "interleave_halves")
ExpansionType = Union[str, Callable[[int, int], Tensor]]
UnitFn = Callable[[int, Any, Tensor], Tensor]


# ----------------------------------------------------------------------------------------------
# validation and small tensor helpers
# ----------------------------------------------------------------------------------------------


def resolve_preset(preset: Optional[str], sparsity: Optional[float],
                   scoring: Optional[str]) -> Tuple[float, str]:
    """The ``(sparsity, scoring)`` of a preset, or the given values with the package defaults.

    Args:
        preset (str, optional): a key of :data:`PRESETS` (``"paper"``, ``"paper-resnet50"``,
                    ``"paper-vgg16"``, ``"paper-sanity"``) or None.
        sparsity (float, optional): explicit sparsity (not allowed together with a preset).
        scoring (str, optional): explicit scoring (not allowed together with a preset).

    Returns:
        (sparsity, scoring)

    Examples::

        >>> resolve_preset("paper", None, None)
        (0.85, 'taylor')
        >>> resolve_preset(None, None, None)
        (0.95, 'taylor')
    """
    if preset is None:
        return (DEFAULT_SPARSITY if sparsity is None else sparsity,
                "taylor" if scoring is None else scoring)
    check_choice("preset", preset, PRESETS)
    if sparsity is not None or scoring is not None:
        raise TypeError("pass either `preset` or `sparsity`/`scoring`, not both")
    settings = PRESETS[preset]
    return float(settings["sparsity"]), str(settings["scoring"])


def _check_module_types(module_types: Any) -> Tuple[Type[nn.Module], ...]:
    if module_types is None:
        return ()
    if isinstance(module_types, type):
        module_types = (module_types,)
    if not isinstance(module_types, (tuple, list)):
        raise TypeError("`module_types` must be a sequence of nn.Module subclasses")
    for t in module_types:
        if not (isinstance(t, type) and issubclass(t, nn.Module)):
            raise TypeError(f"`module_types` must hold nn.Module subclasses, got {t!r}")
    return tuple(module_types)


def _check_activations(activations: Any) -> Tuple[str, ...]:
    if isinstance(activations, str):
        activations = (activations,)
    if not isinstance(activations, (tuple, list)):
        raise TypeError(f"`activations` must be a sequence of names from {ACTIVATIONS}")
    for name in activations:
        check_choice("activations", name, ACTIVATIONS)
    return tuple(activations)


def find_prunable_modules(
    model: nn.Module, module_types: Sequence[Type[nn.Module]] = (nn.ReLU,)
) -> List[nn.Module]:
    """Return the distinct submodules of ``model`` (itself included) of one of ``module_types``.

    Only needed for activation types that are not intercepted as functions (e.g. ``nn.GELU``);
    ReLU-family modules are found by :class:`CriticalPathway` without it.

    Args:
        model (nn.Module): the network.
        module_types (sequence of nn.Module subclasses): the module types. Default:
                    ``(nn.ReLU,)``.

    Returns:
        list of nn.Module: in ``model.modules()`` order (may be empty).

    Examples::

        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> find_prunable_modules(net)
        [ReLU()]
    """
    types = _check_module_types(module_types)
    return [m for m in model.modules() if types and isinstance(m, types)]


def percentile_threshold(scores: Tensor, q: float) -> Tensor:
    """Per-row ``numpy.quantile(row, q)`` with linear interpolation, by one partial selection.

    ``torch.quantile`` refuses rows of more than 2^24 elements (VGG16 has 13.6 M ReLU units per
    224x224 image) and sorts. Here one ``torch.topk`` keeps the smaller side of the two order
    statistics needed (the top ``n - lower`` scores for ``q >= 0.5``, else the bottom
    ``lower + 2``), and both statistics are read from that small set, ties included. The
    interpolation mirrors numpy's ``_lerp`` so that thresholds agree with numpy on the same
    values.

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
    position, lower, gamma, need_high = _quantile_position(n, q)
    # sorted ascending s_1..s_n: low = s_{lower+1}, high = s_{lower+2}
    if n - lower <= lower + 2:
        top = torch.topk(scores, n - lower, dim=1, largest=True, sorted=False).values
        low = top.amin(dim=1)
        if not need_high:
            return low
        high = torch.kthvalue(top, 2, dim=1).values
    else:
        bottom = torch.topk(scores, lower + 2 if need_high else lower + 1, dim=1,
                            largest=False, sorted=False).values
        if not need_high:
            return bottom.amax(dim=1)
        high = bottom.amax(dim=1)
        low = torch.kthvalue(bottom, lower + 1, dim=1).values
    return _interpolate(low, high, gamma)


def _quantile_position(n: int, q: float) -> Tuple[float, int, float, bool]:
    """``(position, lower, gamma, need_high)`` of numpy's linear quantile ``q`` of ``n`` values:
    the result is ``s[lower]`` (0-based, sorted ascending), interpolated towards ``s[lower + 1]``
    by ``gamma`` when ``need_high``."""
    position = q * (n - 1)
    lower = min(int(math.floor(position)), n - 1)
    gamma = position - lower
    return position, lower, gamma, gamma != 0.0 and lower + 2 <= n


def _interpolate(low: Tensor, high: Tensor, gamma: float) -> Tensor:
    """numpy's ``_lerp(low, high, gamma)``, the same operations whatever found the values."""
    diff = high - low
    if gamma >= 0.5:
        return high - diff * (1.0 - gamma)
    return low + diff * gamma


#: Rows of at least this many units are thresholded on CPU by :func:`_bracketed_statistics`
#: (``torch.topk`` copies every row into (value, index) pairs: about 7x slower there).
BRACKET_MIN_UNITS = 1 << 16
#: Values per row in the sample that brackets the order statistics.
_BRACKET_SAMPLE = 1 << 14


def _bracket_sample(sizes: Sequence[int]) -> List[np.ndarray]:
    """Positions sampled from pieces of ``sizes`` units: about ``_BRACKET_SAMPLE`` in all,
    each piece in proportion, drawn uniformly by a generator seeded with the sizes (the same
    positions every time, and no pattern of the units, such as a stride-2 checkerboard, can
    line up with them; the global RNG is not touched)."""
    n = sum(sizes)
    rng = np.random.default_rng([n, len(sizes)])
    return [rng.integers(0, size, size=max(1, -(-size * _BRACKET_SAMPLE // n)))
            for size in sizes]


def _bracketed_statistics(pieces: Sequence[np.ndarray], lower: int, count: int,
                          workers: int = 1) -> Optional[np.ndarray]:
    """Sorted values ``lower .. lower + count - 1`` of each row of the (B, N) concatenation of
    ``pieces`` (each (B, n_i)), exactly, without concatenating; None where the bracket misses.

    A sample of each row (:func:`_bracket_sample`) gives two bounds around the wanted ranks
    (five standard deviations of the sample rank beyond them); the values below the lower
    bound are only counted, those above the upper bound dropped, and the wanted ranks are
    selected from the few in between (``numpy.partition``). When the counts show that the
    bounds do not enclose the wanted ranks, or a kept value is NaN (NaN is left to
    ``torch.topk``), the result is None and the caller selects as before. Exact in every case
    that returns values: ties and the bounds themselves are kept. Rows are shared among
    ``workers`` threads (numpy releases the GIL in these operations).
    """
    positions = _bracket_sample([p.shape[1] for p in pieces])
    rows = range(pieces[0].shape[0])

    def row(b: int) -> Optional[np.ndarray]:
        return _bracketed_row([p[b] for p in pieces], positions, lower, count)

    if workers > 1 and len(rows) > 1:
        with ThreadPoolExecutor(min(workers, len(rows))) as pool:
            found = list(pool.map(row, rows))
    else:
        found = [row(b) for b in rows]
    if any(f is None for f in found):
        return None
    return np.stack(cast(List[np.ndarray], found))


def _bracketed_row(pieces: Sequence[np.ndarray], positions: Sequence[np.ndarray], lower: int,
                   count: int) -> Optional[np.ndarray]:
    """:func:`_bracketed_statistics` of one row given as 1-D ``pieces``."""
    n = sum(p.shape[0] for p in pieces)
    sample = np.concatenate([p[i] for p, i in zip(pieces, positions)])
    ns = sample.shape[0]
    p_low, p_high = lower / n, (lower + count) / n
    low_rank = int(math.floor(p_low * ns - 5.0 * math.sqrt(ns * p_low * (1.0 - p_low)) - 4.0))
    high_rank = int(math.ceil(
        p_high * ns + 5.0 * math.sqrt(ns * p_high * (1.0 - p_high)) + 4.0))
    ranks = [r for r in (low_rank, high_rank) if 0 <= r < ns]
    bounds = np.partition(sample, ranks) if ranks else sample
    low = bounds[low_rank] if low_rank >= 0 else -np.inf
    high = bounds[high_rank] if high_rank < ns else np.inf
    below = inside = 0
    masks = []
    for p in pieces:
        mask = p < low
        below += int(np.count_nonzero(mask))
        np.logical_or(mask, p > high, out=mask)
        np.logical_not(mask, out=mask)  # low <= value <= high, or NaN
        inside += int(np.count_nonzero(mask))
        masks.append(mask)
    first = lower - below
    if first < 0 or first + count > inside:
        return None
    if low == high:  # all tied (dead units): no need to gather them, only to rule out NaN
        if sum(int(np.count_nonzero(p == low)) for p in pieces) != inside:
            return None
        return np.full(count, low, dtype=pieces[0].dtype)
    values = np.concatenate([p[mask] for p, mask in zip(pieces, masks)])
    if np.isnan(values).any():
        return None
    wanted = list(range(first, first + count))
    return np.partition(values, wanted)[wanted]


def _pieces_threshold(pieces: Sequence[Tensor], q: float) -> Tensor:
    """:func:`percentile_threshold` of the (B, N) concatenation of ``pieces`` (each (B, n_i)).

    Large float32/float64 CPU rows go through :func:`_bracketed_statistics` (same order
    statistics, same interpolation, so bit for bit the same thresholds); anything else, and a
    missed bracket, through ``torch.topk`` on the concatenation.
    """
    n = sum(p.shape[1] for p in pieces)
    first = pieces[0]
    if (n >= BRACKET_MIN_UNITS and first.device.type == "cpu"
            and first.dtype in (torch.float32, torch.float64)
            and all(p.device == first.device and p.dtype == first.dtype for p in pieces)):
        _, lower, gamma, need_high = _quantile_position(n, q)
        stats = _bracketed_statistics([p.detach().numpy() for p in pieces], lower,
                                      2 if need_high else 1, torch.get_num_threads())
        if stats is not None:
            values = torch.from_numpy(stats)
            if not need_high:
                return values[:, 0].clone()
            return _interpolate(values[:, 0], values[:, 1], gamma)
    return percentile_threshold(torch.cat(list(pieces), dim=1), q)


def expansion_index(expansion: ExpansionType, rows: int, batch: int,
                    device: Optional[torch.device] = None) -> Optional[Tensor]:
    """Which of the ``batch`` samples each of ``rows`` forward rows belongs to.

    - ``"repeat"``: row ``r`` -> ``r % B`` (IntegratedGradients stacks ``k`` whole batches).
    - ``"repeat_interleave"``: ``r // k`` (NoiseTunnel, GradientShap: each sample's copies in a
      row).
    - ``"interleave_halves"``: DeepLift / DeepLiftShap: the forward batch is the inputs
      (each repeated ``k`` times in a row) followed by the baselines tiled to match, so row
      ``r`` -> ``(r % (rows / 2)) // k``.
    - a callable ``expansion(rows, batch) -> LongTensor`` of ``rows`` sample indices.

    Returns None when ``rows == batch`` (and ``expansion`` is a string): every row is its own
    sample.

    Examples::

        >>> expansion_index("repeat_interleave", 6, 2).tolist()
        [0, 0, 0, 1, 1, 1]
        >>> expansion_index("interleave_halves", 8, 2).tolist()
        [0, 0, 1, 1, 0, 0, 1, 1]
    """
    if callable(expansion):
        index = torch.as_tensor(expansion(rows, batch), dtype=torch.long, device=device)
        if index.shape != (rows,) or (rows and (index.min() < 0 or index.max() >= batch)):
            raise RuntimeError(f"`expansion` must return {rows} sample indices in [0, {batch})")
        return index
    if rows == batch:
        return None
    parts = 2 if expansion == "interleave_halves" else 1
    if batch == 0 or rows % (batch * parts) != 0:
        raise RuntimeError(
            f"a pathway computed for a batch of {batch} cannot be applied to a forward batch of "
            f"{rows} rows; it must be a multiple of {batch * parts}"
        )
    r = torch.arange(rows, device=device)
    if expansion == "repeat":
        return r % batch
    if expansion == "repeat_interleave":
        return r // (rows // batch)
    return (r % (rows // 2)) // (rows // (2 * batch))


# ----------------------------------------------------------------------------------------------
# interception of activation calls (functional and module)
# ----------------------------------------------------------------------------------------------


def _arg(args: Tuple[Any, ...], kwargs: Dict[str, Any], pos: int, name: str, default: Any) -> Any:
    if len(args) > pos:
        return args[pos]
    return kwargs.get(name, default)


_RELU_FUNCS = {F.relu, torch.relu, torch.relu_, Tensor.relu, Tensor.relu_}
_RELU6_FUNCS = {F.relu6}
_HARDTANH_FUNCS = {F.hardtanh, F.hardtanh_}
_CLAMP_FUNCS = {torch.clamp, torch.clamp_, Tensor.clamp, Tensor.clamp_, torch.clamp_min,
                torch.clamp_min_, Tensor.clamp_min, Tensor.clamp_min_, torch.clip, Tensor.clip,
                Tensor.clip_}
_FAMILY: Dict[Any, str] = {}
for _family, _funcs in (("relu", _RELU_FUNCS), ("relu6", _RELU6_FUNCS),
                        ("hardtanh", _HARDTANH_FUNCS), ("clamp", _CLAMP_FUNCS)):
    for _f in _funcs:
        _FAMILY[_f] = _family


def _parse_activation(
    func: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any], families: Tuple[str, ...]
) -> Optional[Tuple[Tensor, bool]]:
    """``(input, inplace)`` for a prunable activation call, else None.

    ``clamp`` / ``clamp_min`` / ``clip`` count only as ReLU-style clamps: ``min`` exactly 0 and
    ``max`` None or a number. Every prunable activation maps 0 to 0, so masking its input masks
    its output: ``act(x * m) = act(x) * m`` for a 0/1 mask ``m``.
    """
    family = _FAMILY.get(func)
    if family is None or family not in families:
        return None
    x = _arg(args, kwargs, 0, "input", None)
    if not isinstance(x, Tensor) or x.dim() == 0 or isinstance(x, nn.Parameter):
        return None
    name = getattr(func, "__name__", "")
    inplace_name = name.endswith("_")
    if family == "relu":
        return x, inplace_name or bool(func is F.relu and _arg(args, kwargs, 1, "inplace", False))
    if family == "relu6":
        return x, bool(_arg(args, kwargs, 1, "inplace", False))
    if family == "hardtanh":
        low = _arg(args, kwargs, 1, "min_val", -1.0)
        high = _arg(args, kwargs, 2, "max_val", 1.0)
        if not (isinstance(low, (int, float)) and isinstance(high, (int, float))
                and low <= 0 <= high):
            return None
        return x, inplace_name or bool(_arg(args, kwargs, 3, "inplace", False))
    low = _arg(args, kwargs, 1, "min", None)
    high = None if name.startswith("clamp_min") else _arg(args, kwargs, 2, "max", None)
    if isinstance(low, bool) or not isinstance(low, (int, float)) or low != 0:
        return None
    if high is not None and (isinstance(high, bool) or not isinstance(high, (int, float))
                             or high < 0):
        return None
    return x, inplace_name


def _replace_input(args: Tuple[Any, ...], kwargs: Dict[str, Any], x: Tensor
                   ) -> Tuple[Tuple[Any, ...], Dict[str, Any]]:
    if args:
        return (x,) + tuple(args[1:]), kwargs
    return args, dict(kwargs, input=x)


#: ``pre(index, site, input, inplace) -> input`` runs before an activation call (masking);
#: ``post(index, site, output) -> output`` after it (recording, scaling).
PreFn = Callable[[int, Any, Tensor, bool], Tensor]


class _State:
    """Per-forward bookkeeping shared by the mode and the hooks."""

    def __init__(self, post: Optional[UnitFn], pre: Optional[PreFn], families: Tuple[str, ...],
                 on_end: Optional[Callable[[int], None]]) -> None:
        self.post = post
        self.pre = pre
        self.families = families
        self.on_end = on_end
        self.active = 0
        self.count = 0
        self.suppressed = 0
        self.rows: Optional[int] = None


class _ActivationMode(TorchFunctionMode):
    def __init__(self, state: _State) -> None:
        super().__init__()
        self.state = state

    def __torch_function__(self, func: Any, types: Any, args: Tuple[Any, ...] = (),
                           kwargs: Optional[Dict[str, Any]] = None) -> Any:
        kwargs = kwargs or {}
        state = self.state
        if state.active and not state.suppressed and func in _FAMILY:
            parsed = _parse_activation(func, args, kwargs, state.families)
            if parsed is not None and (state.rows is None or parsed[0].shape[0] == state.rows):
                x, inplace = parsed
                site = _FAMILY[func]
                index = state.count
                state.count += 1
                if state.pre is not None:
                    args, kwargs = _replace_input(args, kwargs, state.pre(index, site, x, inplace))
                out = func(*args, **kwargs)
                if state.post is not None:
                    out = state.post(index, site, out)
                return out
        return func(*args, **kwargs)


class UnitInterceptor:
    """Context manager: every unit set of ``root``'s forward passes goes through ``fn``.

    Unit sets are the calls of the activation ``families`` made while ``root`` runs (through
    a :class:`~torch.overrides.TorchFunctionMode`) on tensors whose first dimension is the
    batch (that of ``root``'s first tensor argument) and that are not parameters,
    and the outputs of modules of
    ``module_types`` (through forward hooks; activation calls inside such a module are not
    units of their own). The call counter restarts at each call of ``root``; ``on_end(count)``
    runs when ``root`` returns. Hooks and mode are removed on exit, also when the body raises.

    Args:
        root (nn.Module): the model; its call starts a forward pass.
        post (Callable[[int, Any, Tensor], Tensor], optional): ``post(call_index, site,
                    output)`` returns the tensor that replaces the unit output; ``site`` is the
                    activation family name or the module.
        families (tuple of str): activation families intercepted (see ``ACTIVATIONS``).
        module_types (tuple of nn.Module subclasses): module types whose outputs are units.
        on_end (Callable[[int], None], optional): called with the number of unit sets seen.
        pre (Callable[[int, Any, Tensor, bool], Tensor], optional): ``pre(call_index, site,
                    input, inplace)`` replaces the input of an activation call (for a hooked
                    module: its output); with ``inplace`` it must modify ``input`` in place
                    (the call's side effect stays the caller's).
    """

    def __init__(self, root: nn.Module, post: Optional[UnitFn] = None,
                 families: Tuple[str, ...] = ACTIVATIONS,
                 module_types: Tuple[Type[nn.Module], ...] = (),
                 on_end: Optional[Callable[[int], None]] = None,
                 pre: Optional[PreFn] = None) -> None:
        self.root = root
        self.state = _State(post, pre, families, on_end)
        self.modules = find_prunable_modules(root, module_types) if module_types else []
        self._handles: List[RemovableHandle] = []
        self._mode: Optional[_ActivationMode] = None

    def _start(self, _module: nn.Module, args: Any) -> None:
        state = self.state
        if state.active == 0:
            state.count = 0
            state.suppressed = 0
            first = next((a for a in args if isinstance(a, Tensor) and a.dim() > 0), None)
            state.rows = None if first is None else int(first.shape[0])
        state.active += 1

    def _end(self, *_: Any) -> None:
        state = self.state
        state.active = max(0, state.active - 1)
        if state.active == 0 and state.on_end is not None:
            state.on_end(state.count)

    def _module_pre(self, *_: Any) -> None:
        self.state.suppressed += 1

    def _module_post(self, module: nn.Module, _inputs: Any, output: Any) -> Any:
        state = self.state
        state.suppressed = max(0, state.suppressed - 1)
        if not state.active or state.suppressed:
            return output
        if not isinstance(output, Tensor):
            raise TypeError(f"prunable module {module!r} must return a Tensor")
        index = state.count
        state.count += 1
        if state.pre is not None:
            output = state.pre(index, module, output, False)
        if state.post is not None:
            output = state.post(index, module, output)
        return output

    def __enter__(self) -> "UnitInterceptor":
        if isinstance(self.root, torch.jit.ScriptModule):
            raise ValueError(
                "`model` is a scripted (torch.jit) module: its activation calls cannot be "
                "intercepted, so it cannot be pruned; pass the eager model, or use sparsity 0 "
                "(the wrapped method unchanged)"
            )
        try:
            self._handles.append(self.root.register_forward_pre_hook(self._start))
            self._handles.append(self.root.register_forward_hook(self._end))
            for module in dict.fromkeys(self.modules):
                self._handles.append(module.register_forward_pre_hook(self._module_pre))
                self._handles.append(module.register_forward_hook(self._module_post))
            if self.state.families:
                self._mode = _ActivationMode(self.state)
                self._mode.__enter__()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._mode is not None:
            mode, self._mode = self._mode, None
            mode.__exit__(None, None, None)
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


# ----------------------------------------------------------------------------------------------
# the pathway (result)
# ----------------------------------------------------------------------------------------------


def _site_name(site: Any) -> str:
    return site if isinstance(site, str) else type(site).__name__


@dataclass
class Pathway:
    """The critical pathway of one batch: a 0/1 mask per activation call.

    Args:
        model (nn.Module): the network whose activations are masked.
        forward_func (Callable): the function evaluated (usually ``model``).
        call_modules (list): the site of each call, in forward order: the activation family
                    (``"relu"``, ``"relu6"``, ``"hardtanh"``, ``"clamp"``) of a functional or
                    module call, or the module of a hooked ``module_types`` module.
        masks (list of Tensor): bool masks ``(B, *unit_shape)``, True = kept, one per call.
        scores (list of Tensor): the unit scores of each call (detached), same shapes (empty
                    when computed with ``keep_scores=False``).
        thresholds (Tensor): (B,) the per-sample threshold; units with ``score <= thr`` pruned.
        sparsity (float): the requested fraction of pruned units.
        target (TargetType): the target used for scoring (one per sample or shared).
        clean_output (Tensor): the unpruned forward output (detached), for diagnostics.
        families (tuple of str): the activation families intercepted.
        module_types (tuple of type): the hooked module types.
        factors (list of Tensor, optional): the masks as 0/1 tensors of the scores' dtype
                    (the memory of the scores, which they replace), used by in-place masking
                    instead of converting ``masks`` (a conversion into fresh memory costs
                    about a tenth of a forward + backward pass on CPU). Set only by
                    ``PrunedAttribution`` for its own pass; None otherwise.

    Examples::

        >>> mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> pathway = CriticalPathway(mlp).compute(torch.rand(3, 4), target=0, sparsity=0.5)
        >>> [tuple(m.shape) for m in pathway.masks], pathway.sparsity
        ([(3, 8)], 0.5)
    """

    model: nn.Module
    forward_func: Callable[..., Tensor]
    call_modules: List[Any]
    masks: List[Tensor]
    scores: List[Tensor]
    thresholds: Tensor
    sparsity: float
    target: TargetType = None
    clean_output: Optional[Tensor] = field(default=None, repr=False)
    families: Tuple[str, ...] = ACTIVATIONS
    module_types: Tuple[Type[nn.Module], ...] = ()
    factors: Optional[List[Tensor]] = field(default=None, repr=False, compare=False)

    @property
    def batch_size(self) -> int:
        """Number of samples the pathway was computed for."""
        return int(self.masks[0].shape[0])

    @property
    def num_calls(self) -> int:
        """Number of activation calls (e.g. 17 for torchvision ResNet-18)."""
        return len(self.masks)

    @property
    def num_units(self) -> int:
        """Number of units per sample (all calls together)."""
        return sum(int(m[0].numel()) for m in self.masks)

    def flat_masks(self) -> Tensor:
        """(B, U) bool: every unit of every call, in forward order."""
        return torch.cat([m.reshape(m.shape[0], -1) for m in self.masks], dim=1)

    def realized_sparsity(self) -> Tensor:
        """(B,) the fraction of units actually pruned.

        At least ``floor(sparsity * (U - 1)) + 1`` of the ``U`` units go (more when scores tie
        at the threshold), so it is ``>= sparsity * (U - 1) / U``.
        """
        kept = torch.stack([m.reshape(m.shape[0], -1).sum(dim=1) for m in self.masks]).sum(0)
        return 1.0 - kept.double() / self.num_units

    @contextmanager
    def applied(self, expansion: ExpansionType = "repeat") -> Iterator["Pathway"]:
        """Context manager: every activation call of ``model`` returns ``output * mask``.

        Each forward pass of ``model`` inside the context must make the same activation calls
        as the pass the pathway was computed on (same order, same families, same unit shapes):
        an extra call, a missing one, or another site raises ``RuntimeError`` (input-dependent
        control flow cannot silently run part of the network unpruned).

        Args:
            expansion (str or Callable): how a forward batch of ``k * B`` rows maps to the
                        ``B`` masks, see :func:`expansion_index`. Default: ``"repeat"``.

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
        if not callable(expansion):
            check_choice("expansion", expansion, EXPANSIONS)
        cache: Dict[Tuple[Any, ...], Tensor] = {}
        batch = self.batch_size
        sites = self.call_modules

        def mask_input(index: int, site: Any, x: Tensor, inplace: bool) -> Tensor:
            if index >= len(sites) or _site_name(sites[index]) != _site_name(site):
                raise RuntimeError(
                    f"activation call {index} ({_site_name(site)}) does not match the pathway, "
                    f"computed on a pass with {len(sites)} calls: the forward pass calls the "
                    "prunable activations differently (input-dependent control flow, or "
                    "`forward_func` does not call `model` exactly once per evaluation)"
                )
            key = (index, x.shape[0], x.device, x.dtype if inplace else None)
            if key not in cache:
                rows = expansion_index(expansion, x.shape[0], batch, x.device)
                factor = None if self.factors is None else self.factors[index]
                if (inplace and rows is None and factor is not None
                        and factor.dtype == x.dtype and factor.device == x.device):
                    mask = factor
                else:
                    mask = self.masks[index].to(device=x.device)
                    mask = mask if rows is None else mask[rows]
                    # in place: multiply by a 0/1 mask of x's dtype (a bool factor is
                    # converted on every call, forward and backward: several times slower)
                    if inplace and mask.shape == x.shape:
                        mask = mask.to(x.dtype)
                cache[key] = mask
            mask = cache[key]
            if mask.shape != x.shape:
                raise RuntimeError(
                    f"activation call {index} has shape {tuple(x.shape)}, the pathway holds a "
                    f"mask of shape {tuple(mask.shape)}"
                )
            if inplace:
                return x.mul_(mask)
            return torch.where(mask, x, x.new_zeros(()))

        def check_end(count: int) -> None:
            if count != len(sites):
                raise RuntimeError(
                    f"the forward pass made {count} prunable activation calls, the pathway was "
                    f"computed on a pass with {len(sites)}: part of the network would run "
                    "unpruned (input-dependent control flow)"
                )

        with UnitInterceptor(self.model, None, self.families, self.module_types,
                             on_end=check_end, pre=mask_input):
            yield self

    def probabilities(
        self, inputs: Union[Tensor, Tuple[Tensor, ...]], additional_forward_args: Any = None
    ) -> Dict[str, Tensor]:
        """Target probability before and after pruning (one no-grad pruned forward pass).

        Args:
            inputs (Tensor or tuple of Tensor): the inputs the pathway was computed for.
            additional_forward_args (Any, optional): as given to ``compute``.

        Returns:
            dict with ``"target_prob"``, ``"pruned_target_prob"`` and
            ``"relative_prob_change"`` = ``(p_pruned - p) / p``, each (B,) (softmax over dim 1
            of a 2-D output).
        """
        if self.clean_output is None or self.clean_output.dim() != 2:
            raise ValueError("target probabilities need a forward_func returning (B, C) logits")
        inputs_tuple = _format_tensor_into_tuples(inputs)
        args = _format_additional_forward_args(additional_forward_args)
        with preserved_model_state(self.model), torch.no_grad(), self.applied():
            pruned = _run_forward(self.forward_func, inputs_tuple, None, args)
        clean_p = _select_targets(torch.softmax(self.clean_output.float(), dim=1), self.target)
        pruned_p = _select_targets(torch.softmax(pruned.detach().float(), dim=1), self.target)
        return {
            "target_prob": clean_p,
            "pruned_target_prob": pruned_p,
            "relative_prob_change": (pruned_p - clean_p) / clean_p,
        }

    def diagnostics(
        self, inputs: Union[Tensor, Tuple[Tensor, ...]], additional_forward_args: Any = None
    ) -> Dict[str, Tensor]:
        """Deprecated: use ``attribute(..., return_diagnostics=True)`` (or :meth:`probabilities`).

        Returns the dict of :meth:`probabilities` plus ``"realized_sparsity"``.
        """
        warn_external(
            "`Pathway.diagnostics()` is deprecated; use `attribute(..., "
            "return_diagnostics=True)`, which returns a PathwayDiagnostics",
            DeprecationWarning,
        )
        result = {"realized_sparsity": self.realized_sparsity()}
        result.update(self.probabilities(inputs, additional_forward_args))
        return result


# ----------------------------------------------------------------------------------------------
# the pathway finder (scoring + thresholding)
# ----------------------------------------------------------------------------------------------


def default_target(output: Tensor, target: TargetType) -> TargetType:
    """``target``, or the predicted class per sample when ``target`` is None and the output is
    (B, C) with C > 1 (the papers' default); otherwise ``target`` unchanged."""
    if target is None and output.dim() == 2 and output.shape[1] > 1:
        return output.argmax(dim=1).detach()
    return target


def _taylor_score(a: Tensor, g: Optional[Tensor], dtype: torch.dtype) -> Tensor:
    """``|g * a|`` in ``dtype`` (zeros where the target does not depend on ``a``)."""
    if g is None:
        return torch.zeros(a.shape, dtype=dtype, device=a.device)
    score = torch.mul(g, a).abs_()
    return score if score.dtype == dtype else score.to(dtype)


def check_inputs(inputs: Any) -> Tuple[Tensor, ...]:
    """``inputs`` as a tuple of tensors with one batch size; NaN or inf raise naming ``inputs``."""
    inputs_tuple = _format_tensor_into_tuples(inputs)
    if not inputs_tuple or not all(isinstance(x, Tensor) for x in inputs_tuple):
        raise TypeError("`inputs` must be a tensor or a tuple of tensors")
    batch = inputs_tuple[0].shape[0] if inputs_tuple[0].dim() else None
    for x in inputs_tuple:
        if x.dim() == 0 or x.shape[0] != batch:
            raise ValueError("`inputs` must share their first (batch) dimension")
        check_finite("inputs", x)
    return cast(Tuple[Tensor, ...], inputs_tuple)


class CriticalPathway:
    r"""Finds the critical pathway of each input: the units to keep, by a global percentile.

    ``compute(inputs, target, sparsity)`` returns a :class:`Pathway`. Units are the outputs of
    every activation call of the ``activations`` families (functional or module, found while
    the model runs) and of every module of ``module_types``. Scoring rules:

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

    The model is not changed (parameters, buffers, ``training``, ``requires_grad`` and hooks are
    restored, also on error); its mode is left as is (call ``model.eval()`` yourself, as for
    any Captum method).

    Args:
        model (nn.Module): the network.
        forward_func (Callable, optional): what is evaluated; must call ``model`` exactly once.
                    Default: ``model``.
        module_types (sequence of nn.Module subclasses, optional): module types whose outputs
                    are units too (for activations that are not intercepted, e.g. ``nn.GELU``).
                    Default: none; ReLU-family modules are found through their functional call.
        scoring (str): ``"taylor"``, ``"neuron_int_grad"`` or ``"random"``. Default ``"taylor"``.
        n_steps (int): steps of ``"neuron_int_grad"``. Default 8.
        internal_batch_size (int, optional): the most rows per forward pass of
                    ``"neuron_int_grad"``. Default: all at once.
        generator (torch.Generator, optional): random source of ``"random"``.
        activations (sequence of str): intercepted activation families, from ``("relu",
                    "relu6", "hardtanh", "clamp")`` (``clamp`` = ``clamp``/``clamp_min``/``clip``
                    with ``min=0``). Default: all four.

    Examples::

        >>> _ = torch.manual_seed(0)
        >>> net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
        ...                     nn.Linear(16, 3))
        >>> pathway = CriticalPathway(net).compute(torch.randn(5, 4), sparsity=0.75)
        >>> pathway.num_calls, tuple(pathway.masks[0].shape)
        (2, (5, 16))
        >>> pathway.realized_sparsity()
        tensor([0.7500, 0.7500, 0.7500, 0.7500, 0.7500], dtype=torch.float64)
    """

    def __init__(
        self,
        model: nn.Module,
        forward_func: Optional[Callable[..., Tensor]] = None,
        module_types: Optional[Sequence[Type[nn.Module]]] = None,
        scoring: str = "taylor",
        n_steps: int = 8,
        internal_batch_size: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
        activations: Sequence[str] = ACTIVATIONS,
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
        self.module_types = _check_module_types(module_types)
        self.families = _check_activations(activations)
        if not self.families and not find_prunable_modules(model, self.module_types):
            raise ValueError("`model` has no prunable modules of `module_types` and "
                             "`activations` is empty: nothing can be pruned")
        self.modules = find_prunable_modules(model, self.module_types)
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
            inputs (Tensor or tuple of Tensor): batch of inputs (dim 0 = samples, at least 1).
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
        inputs_tuple = check_inputs(inputs)
        batch = inputs_tuple[0].shape[0]
        if batch == 0:
            raise ValueError("`inputs` has an empty batch: there is no pathway to compute")
        check_target(target, batch)
        args = _format_additional_forward_args(additional_forward_args)
        return self._compute(inputs_tuple, target, sparsity, args, keep_scores)

    def _compute(self, inputs_tuple: Tuple[Tensor, ...], target: TargetType, sparsity: float,
                 args: Any, keep_scores: bool, factors: bool = False) -> Pathway:
        """:meth:`compute` on arguments already checked and formatted (``PrunedAttribution``
        checks them itself: the finiteness check is a pass over the inputs). With
        ``factors`` (and neither ``keep_scores`` nor ``sparsity = 0``), the scores are
        overwritten by the 0/1 masks in their own dtype: ``Pathway.factors``."""
        with preserved_model_state(self.model):
            inputs_tuple = tuple(
                x.detach().requires_grad_(x.is_floating_point()) for x in inputs_tuple
            )
            sites, taylor, output, target = self._taylor_pass(inputs_tuple, target, args)
            if self.scoring == "taylor":
                scores = taylor
            elif self.scoring == "random":
                scores = [
                    torch.rand(a.shape, generator=self.generator, device="cpu").to(a.device)
                    for a in taylor
                ]
            else:
                scores = self._neuron_int_grad_scores(inputs_tuple, target, args, sites)
        if self.scoring != "taylor":
            del taylor
        masks, thresholds = threshold_scores(scores, sparsity)
        kept: Optional[List[Tensor]] = None
        if factors and not keep_scores and sparsity > 0:
            # the same comparison as the masks, written over the scores (memory in use)
            kept = [sc.gt_(thresholds.view((-1,) + (1,) * (sc.dim() - 1))) for sc in scores]
        return Pathway(
            model=self.model,
            forward_func=self.forward_func,
            call_modules=sites,
            masks=masks,
            scores=scores if keep_scores else [],
            thresholds=thresholds,
            sparsity=float(sparsity),
            target=target,
            clean_output=output.detach(),
            families=self.families,
            module_types=self.module_types,
            factors=kept,
        )

    # -- scoring passes ----------------------------------------------------------------------

    def _interceptor(self, fn: UnitFn) -> UnitInterceptor:
        return UnitInterceptor(self.model, fn, self.families, self.module_types)

    def _no_units_error(self) -> ValueError:
        return ValueError(
            "`forward_func` made no prunable activation call while `model` ran (activation "
            f"families {self.families}, module types "
            f"{tuple(t.__name__ for t in self.module_types)}): a scripted/traced model or an "
            "activation of another kind cannot be pruned; pass `module_types` for activation "
            "modules such as nn.GELU, or use sparsity 0"
        )

    def _taylor_pass(
        self, inputs: Tuple[Tensor, ...], target: TargetType, args: Any, clone: bool = False
    ) -> Tuple[List[Any], List[Tensor], Tensor, TargetType]:
        """One forward + one backward: the calls, ``|a * dS/da|`` per call, output, target.

        The scores are computed call by call while the activations and gradients are released
        (one tensor per call: no (B, U) buffer, whose fresh memory costs page faults on CPU).
        Activations are recorded as they are; if a later inplace op changed one (its version
        moved), the pass is redone with copies.
        """
        sites: List[Any] = []
        outputs: List[Optional[Tensor]] = []
        versions: List[int] = []

        def record(_index: int, site: Any, output: Tensor) -> Tensor:
            sites.append(site)
            outputs.append(output)
            versions.append(output._version)
            return output.clone() if clone else output

        batch = inputs[0].shape[0]
        with torch.enable_grad(), self._interceptor(record):
            output = _run_forward(self.forward_func, inputs, None, args)
            if not sites:
                raise self._no_units_error()
            changed = any(cast(Tensor, a)._version != v for a, v in zip(outputs, versions))
            if not (changed and not clone):
                if any(a is None or a.dim() == 0 or a.shape[0] != batch for a in outputs):
                    raise ValueError(
                        "prunable activations must return tensors with the batch as dim 0"
                    )
                target = default_target(output, target)
                selected = _select_targets(output, target)
                if selected.numel() != batch:
                    raise ValueError(
                        "`target` must select one scalar output per sample, got "
                        f"{selected.numel()} values for {batch} samples"
                    )
                grads: List[Optional[Tensor]] = list(torch.autograd.grad(
                    selected.sum(), cast(List[Tensor], outputs), allow_unused=True))
        if changed and not clone:
            return self._taylor_pass(inputs, target, args, clone=True)
        dtype = cast(Tensor, outputs[0]).dtype
        scores: List[Tensor] = []
        for i in range(len(outputs)):
            scores.append(_taylor_score(cast(Tensor, outputs[i]).detach(), grads[i], dtype))
            outputs[i] = grads[i] = None  # release as we go
        return sites, scores, output, target

    def _neuron_int_grad_scores(
        self,
        inputs: Tuple[Tensor, ...],
        target: TargetType,
        args: Any,
        sites: List[Any],
    ) -> List[Tensor]:
        """Per call: ``|a * mean_alpha dS/d(alpha a)|``, the other calls unscaled.

        At most ``internal_batch_size`` rows per forward pass: several alphas per pass when the
        batch fits, else the batch in slices of samples.
        """
        batch = inputs[0].shape[0]
        steps = self.n_steps
        alphas_all = (torch.arange(steps, dtype=torch.float64) + 0.5) / steps
        limit = self.internal_batch_size or batch * steps
        per_chunk = max(1, limit // batch)
        sample_chunk = min(batch, limit)
        scores: List[Tensor] = []
        for call in range(len(sites)):
            parts = []
            for start in range(0, batch, sample_chunk):
                rows = slice(start, start + sample_chunk)
                sub_inputs = tuple(x[rows] for x in inputs)
                n = sub_inputs[0].shape[0]
                sub_target = select_target(target, rows)
                sub_args = select_additional_args(args, rows, batch) if n != batch else args
                grad_sum: Optional[Tensor] = None
                value: Optional[Tensor] = None
                for s in range(0, steps, per_chunk):
                    grad, value = self._scaled_call_grad(
                        sub_inputs, sub_target, sub_args, call, alphas_all[s:s + per_chunk])
                    grad_sum = grad if grad_sum is None else grad_sum + grad
                assert grad_sum is not None and value is not None
                parts.append((value * grad_sum / steps).abs())
            scores.append(torch.cat(parts) if len(parts) > 1 else parts[0])
        return scores

    def _scaled_call_grad(
        self,
        inputs: Tuple[Tensor, ...],
        target: TargetType,
        args: Any,
        call: int,
        alphas: Tensor,
    ) -> Tuple[Tensor, Tensor]:
        """Sum over ``alphas`` of ``dS/d(alpha a)`` for one call, and the unscaled ``a``."""
        batch = inputs[0].shape[0]
        k = alphas.numel()
        expanded = tuple(torch.cat([x] * k, dim=0) for x in inputs)
        exp_args = _expand_additional_forward_args(args, k) if args is not None else None
        exp_target = expand_target(target, k, interleave=False)
        captured: List[Tensor] = []

        def scale(index: int, _site: Any, output: Tensor) -> Tensor:
            if index != call:
                return output
            factor = alphas.to(device=output.device, dtype=output.dtype).repeat_interleave(batch)
            scaled = output * factor.view((-1,) + (1,) * (output.dim() - 1))
            captured.extend([output.detach()[:batch].clone(), scaled])
            return scaled

        with torch.enable_grad(), self._interceptor(scale):
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
    if sparsity == 0:
        first = scores[0]
        thresholds = torch.full((first.shape[0],), -math.inf, dtype=first.dtype,
                                device=first.device)
        return [torch.ones_like(s, dtype=torch.bool) for s in scores], thresholds
    if flat is not None:
        thresholds = percentile_threshold(flat, float(sparsity))
    else:
        thresholds = _pieces_threshold([s.reshape(s.shape[0], -1) for s in scores],
                                       float(sparsity))
    shape = (-1,)
    masks = [s > thresholds.view(shape + (1,) * (s.dim() - 1)) for s in scores]
    return masks, thresholds

