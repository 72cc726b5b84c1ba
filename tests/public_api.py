"""The public-API walk (issue 13.2): one entry per public name, one list of cases per class of defect.

``API[key][defect]`` is either a list of :class:`Case` (each asserts an exact error type whose
message names the argument, or an exact correct result) or a string: the reason the class of
defect does not apply to that name. ``tests/test_public_api_coverage.py`` fails when a name in
``__all__`` of a public module (or a CLI sub-command) has no entry, or an entry misses a class
of defect, so a new function is covered by adding it here.

Keys are ``"module:name"``; the CLI's are ``"cli:<sub-command>"``.

Cases that fail on today's code because another branch is fixing them carry ``xfail``: the
defect and the branch (``pytest.mark.xfail(strict=True)``; the lead flips them at merge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple, Type, Union

import torch
from captum.attr import IntegratedGradients, Saliency
from torch import Tensor, nn

PUBLIC_MODULES = (
    "captum_ext.attr",
    "captum_ext.metrics",
    "captum_ext.inpaint",
    "captum_ext.propagate",
    "captum_ext.data",
)
CLI_COMMANDS = ("benchmark", "evaluate", "sanity")
DEFECTS = ("nan", "empty", "shapes", "params", "targets", "model_state")

Check = Callable[[Any], None]


@dataclass
class Case:
    """One call and what it must do: raise ``raises`` naming ``names``, or pass ``check``."""

    id: str
    call: Callable[[], Any]
    raises: Optional[Union[Type[BaseException], Tuple[Type[BaseException], ...]]] = None
    names: Optional[str] = None  # regex the message must contain (the argument's name)
    check: Optional[Check] = None
    xfail: Optional[str] = None


Entry = Dict[str, Union[str, List[Case]]]

# ------------------------------------------------------------------------------------------
# models and data
# ------------------------------------------------------------------------------------------


class TinyNet(nn.Module):
    """Conv -> ReLU -> pool -> linear, 3 classes; no dropout or batch norm (train == eval)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(16, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


class RaisingNet(TinyNet):
    """Raises in the ReLU module (mid-forward, after hooks may have run) from call ``at`` on."""

    def __init__(self, at: int = 1) -> None:
        super().__init__()
        self.calls, self.at = 0, at
        self.relu = _RaiseAfter(self)


class _RaiseAfter(nn.ReLU):
    """An ``nn.ReLU`` (so pruning finds it) that raises from the owner's call ``at`` on."""

    def __init__(self, owner: RaisingNet) -> None:
        super().__init__()
        self.__dict__["owner"] = owner

    def forward(self, x: Tensor) -> Tensor:
        self.owner.calls += 1
        if self.owner.calls >= self.owner.at:
            raise RuntimeError("model raised mid-forward")
        return torch.relu(x)


def images(b: int = 2, size: int = 8, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, size, size, generator=g)


def nan_images(b: int = 2, size: int = 8) -> Tensor:
    x = images(b, size)
    x[0, 0, 0, 0] = float("nan")
    return x


def maps_and_masks(b: int = 3, size: int = 8) -> Tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(1)
    maps = torch.rand(b, 1, size, size, generator=g)
    masks = torch.zeros(b, 1, size, size)
    masks[..., 2:5, 2:5] = 1
    return maps, masks


def bholes(b: int = 2, size: int = 8) -> Tensor:
    """Bool holes, for the raw solvers documented with bool holes (harmonic_fill, pull_push_fill, composite)."""
    return holes(b, size).bool()


def holes(b: int = 2, size: int = 8) -> Tensor:
    h = torch.zeros(b, 1, size, size)
    h[..., 2:5, 3:6] = 1
    return h


# ------------------------------------------------------------------------------------------
# result checks
# ------------------------------------------------------------------------------------------


def empty_like_shape(shape: Tuple[int, ...]) -> Check:
    def check(out: Any) -> None:
        t = out[0] if isinstance(out, tuple) else out
        t = getattr(t, "scores", t)
        assert isinstance(t, Tensor) and tuple(t.shape[: len(shape)]) == shape and t.numel() == 0, (
            f"expected an empty result of shape {shape}, got {getattr(t, 'shape', type(t))}"
        )

    return check


def rows_nan_exactly(rows: List[int], reference: Callable[[], Tensor]) -> Check:
    """NaN for exactly ``rows``; the other rows equal ``reference()`` (computed without the NaN)."""

    def check(out: Any) -> None:
        t = getattr(out, "scores", out)
        ref = getattr(reference(), "scores", reference())
        nan = torch.isnan(t.reshape(t.shape[0], -1)).any(dim=1)
        assert nan.tolist() == [i in rows for i in range(t.shape[0])], f"NaN rows {nan.tolist()}"
        keep = ~nan
        torch.testing.assert_close(t[keep], ref[keep])

    return check


def equals(reference: Callable[[], Any]) -> Check:
    def check(out: Any) -> None:
        ref = reference()
        torch.testing.assert_close(getattr(out, "scores", out), getattr(ref, "scores", ref))

    return check


def raises(id: str, call: Callable[[], Any], names: str, exc: Any = ValueError, xfail: Optional[str] = None) -> Case:
    return Case(id, call, raises=exc, names=names, xfail=xfail)


def result(id: str, call: Callable[[], Any], check: Check, xfail: Optional[str] = None) -> Case:
    return Case(id, call, check=check, xfail=xfail)


# ------------------------------------------------------------------------------------------
# model-state cases, shared by everything that runs a model
# ------------------------------------------------------------------------------------------


def model_state_cases(
    run: Callable[[nn.Module], Any], xfail_raise: Optional[str] = None, xfail_train: Optional[str] = None, at: int = 2
) -> List[Case]:
    """A model raising mid-forward leaves hooks / flags / values; a train-mode model stays in
    train mode and gets the eval-mode result."""

    def raising() -> Any:
        model = RaisingNet(at=at)
        model.train()
        before = [p.detach().clone() for p in model.parameters()]
        try:
            run(model)
        except RuntimeError as e:
            if "model raised mid-forward" not in str(e):
                raise
        else:
            if model.calls >= at:
                raise AssertionError("the model's error was swallowed")
        _assert_untouched(model, before, training=True)
        return None

    def train_mode() -> Any:
        model = TinyNet().train()
        before = [p.detach().clone() for p in model.parameters()]
        out = run(model)
        _assert_untouched(model, before, training=True)
        ref = run(TinyNet().eval())
        torch.manual_seed(0)
        return out, ref

    def same(pair: Any) -> None:
        if pair is None:
            return
        out, ref = pair
        for a, b in zip(_flat(out), _flat(ref)):
            torch.testing.assert_close(a, b)

    return [
        result("model_raises_mid_forward", raising, lambda _: None, xfail=xfail_raise),
        result("model_in_train_mode", train_mode, same, xfail=xfail_train),
    ]


def _flat(x: Any) -> List[Tensor]:
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, (tuple, list)):
        return [t for y in x for t in _flat(y)]
    if hasattr(x, "scores"):
        return [x.scores]
    return []


def _assert_untouched(model: nn.Module, before: List[Tensor], training: bool) -> None:
    hooks = [
        n
        for n, m in model.named_modules()
        for k in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
        if len(getattr(m, k))
    ]
    assert hooks == [], f"hooks left on {hooks}"
    assert all(m.training == training for m in model.modules()), "training flags changed"
    assert all(p.requires_grad for p in model.parameters()), "requires_grad changed"
    for a, b in zip(model.parameters(), before):
        assert torch.equal(a.detach(), b), "parameters changed"


NO_MODEL = "runs no model"
NO_TARGET = "takes no target"
CONSTANT = "a constant, not a callable"
RECORD = "a result record the library builds (a dataclass); its producers are walked"


def na_all(reason: str) -> Entry:
    return {d: reason for d in DEFECTS}


def _seed() -> None:
    torch.manual_seed(0)


def nan_param(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if math.isinf(value) else str(value))


def _unused() -> Any:  # keep IntegratedGradients / Saliency importable for the entries module
    return IntegratedGradients, Saliency


# ==========================================================================================
# The entries
# ==========================================================================================

import captum_ext.attr as A  # noqa: E402
import captum_ext.data as D  # noqa: E402
import captum_ext.inpaint as I  # noqa: E402
import captum_ext.metrics as M  # noqa: E402
import captum_ext.propagate as P  # noqa: E402

NEFLAG = "neflag-mp"
MP_OWNER = "neflag-mp"
PATHWAY = "pathway"
INPAINT = "inpaint"
IPROP = "iprop"
METRICS = "metrics"
EVALUATE = "evaluate"

API: Dict[str, Entry] = {}


def _attribution_entry(
    key: str,
    build: Callable[[nn.Module], Any],
    kwargs: Dict[str, Any],
    params: List[Tuple[str, Dict[str, Any], str, Any]],
    owner: str,
    xfail: Optional[Dict[str, str]] = None,
    image_only: bool = False,
    shape_reason: str = "any input shape the model accepts is valid, as in Captum",
) -> None:
    """Cases for an attribution class: ``build(model).attribute(x, **kwargs)``."""
    xf = xfail or {}

    def attr(model: nn.Module, x: Tensor, **over: Any) -> Any:
        _seed()
        return build(model).attribute(x, **{**kwargs, **over})

    def ok(model: Optional[nn.Module] = None) -> Any:
        return attr(model if model is not None else TinyNet().eval(), images(2))

    entry: Entry = {
        "nan": [
            raises(
                "nan_in_inputs",
                lambda: attr(TinyNet().eval(), nan_images()),
                "inputs|guide" if "IProp" in key else "inputs",
                xfail=xf.get("nan"),
            )
        ],
        "empty": [
            result(
                "batch_of_0",
                lambda: attr(TinyNet().eval(), images(0)),
                empty_like_shape((0, 3, 8, 8)),
                xfail=xf.get("empty"),
            )
        ],
        "shapes": (
            [raises("3d_inputs", lambda: attr(TinyNet().eval(), images(2)[:, 0]), "inputs", xfail=xf.get("shapes"))]
            if image_only
            else shape_reason
        ),
        "params": [
            raises(
                f"{name}={label}",
                (lambda over=over: attr(TinyNet().eval(), images(2), **over)),
                name,
                exc=exc,
                xfail=xf.get(f"{name}={label}"),
            )
            for (name, over, label, exc) in params
        ],
        "targets": [
            raises(
                "target_longer_than_batch",
                lambda: attr(TinyNet().eval(), images(2), target=[0, 1, 2]),
                "(?i)target",
                exc=(ValueError, AssertionError) if "Inpainting" in key else ValueError,
                xfail=xf.get("target_long"),
            ),
            result(
                "target_forms_agree",
                lambda: attr(TinyNet().eval(), images(2), target=torch.tensor([1, 1])),
                equals(lambda: attr(TinyNet().eval(), images(2), target=1)),
                xfail=xf.get("target_forms"),
            ),
        ],
        "model_state": model_state_cases(
            lambda m: attr(m, images(2)), xfail_raise=xf.get("raise"), xfail_train=xf.get("train")
        ),
    }
    API[key] = entry
    _ = ok


def _p(name: str, value: Any, exc: Any = ValueError) -> Tuple[str, Dict[str, Any], str, Any]:
    label = nan_param(value) if isinstance(value, float) else repr(value)
    return (name, {name: value}, label, exc)


def _ctor(name: str, value: Any, exc: Any = ValueError) -> Tuple[str, Any, str, Any]:
    label = nan_param(value) if isinstance(value, float) else repr(value)
    return (name, value, label, exc)


# --- attr ---------------------------------------------------------------------------------

_attribution_entry(
    "captum_ext.attr:NeFLAG",
    lambda m: A.NeFLAG(m),
    dict(target=0, n=2, generator=0),
    [
        _p("eps", float("nan")),
        _p("eps", -1.0),
        _p("eps", float("inf")),
        _p("n", 0),
        _p("n", "3", TypeError),
        _p("step_size", float("nan")),
        _p("sampling", "bogus"),
    ],
    NEFLAG,
)

_attribution_entry(
    "captum_ext.attr:PathwayGradient",
    lambda m: A.PathwayGradient(m, sparsity=0.5),
    dict(target=0),
    [],
    PATHWAY,
)
API["captum_ext.attr:PathwayGradient"]["params"] = [
    raises(f"sparsity={label}", (lambda v=v: A.PathwayGradient(TinyNet(), sparsity=v)), "sparsity", exc=exc)
    for (_, v, label, exc) in (
        _ctor("sparsity", 1.5),
        _ctor("sparsity", float("nan")),
        _ctor("sparsity", -0.1),
        _ctor("sparsity", "0.5", TypeError),
    )
] + [raises("scoring='bogus'", lambda: A.PathwayGradient(TinyNet(), scoring="bogus"), "scoring")]

_attribution_entry(
    "captum_ext.attr:PrunedAttribution",
    lambda m: A.PrunedAttribution(IntegratedGradients, m, sparsity=0.5),
    dict(target=0, n_steps=4),
    [],
    PATHWAY,
)
API["captum_ext.attr:PrunedAttribution"]["params"] = [
    raises(f"sparsity={label}", (lambda v=v: A.PrunedAttribution(Saliency, TinyNet(), sparsity=v)), "sparsity", exc=exc)
    for (_, v, label, exc) in (_ctor("sparsity", 1.5), _ctor("sparsity", float("nan")))
] + [
    raises("method=not_a_class", lambda: A.PrunedAttribution("Saliency", TinyNet()), "method", exc=TypeError),
    raises("expansion='bogus'", lambda: A.PrunedAttribution(Saliency, TinyNet(), expansion="bogus"), "expansion"),
]

for _cls in (
    "InpaintingFeatureAblation",
    "InpaintingShapleyValueSampling",
    "InpaintingLime",
    "InpaintingKernelShap",
    "InpaintingOcclusion",
):
    _extra: Dict[str, Any] = {"target": 0}
    if _cls == "InpaintingOcclusion":
        _extra["sliding_window_shapes"] = (3, 4, 4)
        _extra["strides"] = (3, 4, 4)
    else:
        _extra["feature_mask"] = A.grid_feature_mask(8, 8, cell=4)
    if _cls in ("InpaintingShapleyValueSampling", "InpaintingLime", "InpaintingKernelShap"):
        _extra["n_samples"] = 4
    _attribution_entry(
        f"captum_ext.attr:{_cls}",
        (lambda m, c=_cls: getattr(A, c)(m, inpainter="harmonic")),
        _extra,
        [],
        INPAINT,
    )
    API[f"captum_ext.attr:{_cls}"]["params"] = [
        raises("inpainter='bogus'", (lambda c=_cls: getattr(A, c)(TinyNet(), inpainter="bogus")), "inpainter"),
        raises("inpainter=nan", (lambda c=_cls: getattr(A, c)(TinyNet(), inpainter=float("nan"))), "inpainter"),
    ]

_attribution_entry(
    "captum_ext.attr:IProp",
    lambda m: A.IProp(Saliency(m), gamma=0.9),
    dict(target=0),
    [],
    IPROP,
    image_only=True,
)
API["captum_ext.attr:IProp"]["params"] = [
    raises(f"{n}={label}", (lambda n=n, v=v: A.IProp(Saliency(TinyNet()), **{n: v})), n, exc=exc)
    for (n, v, label, exc) in (
        _ctor("gamma", 1.5),
        _ctor("gamma", float("nan")),
        _ctor("radius", -1),
        _ctor("sigma_c", float("nan")),
        _ctor("tol", float("nan")),
        _ctor("solver", "bogus"),
        _ctor("max_iter", 0),
    )
] + [raises("base_method=not_attribution", lambda: A.IProp(TinyNet()), "base_method", exc=TypeError)]

_attribution_entry(
    "captum_ext.attr:MeaningfulPerturbation",
    lambda m: A.MeaningfulPerturbation(m),
    dict(target=0, n_iter=2, mask_shape=(4, 4)),
    [
        _p("n_iter", -1),  # n_iter=0 is documented: the initial mask, NaN loss
        _p("lr", float("nan")),
        _p("l1_coeff", -1.0),
        _p("tv_beta", float("inf")),
        _p("upsample", "bogus"),
    ],
    MP_OWNER,
    image_only=True,
)

API["captum_ext.attr:propagate"] = {
    "nan": [
        raises("nan_in_attributions", lambda: A.propagate(nan_images(), images(2)), "attributions"),
        raises("nan_in_guide", lambda: A.propagate(images(2), nan_images()), "guide"),
    ],
    "empty": [result("batch_of_0", lambda: A.propagate(images(0), images(0)), empty_like_shape((0, 3, 8, 8)))],
    "shapes": [
        raises("3d_attributions", lambda: A.propagate(images(2)[:, 0], images(2)), "attributions"),
        raises("guide_other_size", lambda: A.propagate(images(2), images(2, size=6)), "guide"),
    ],
    "params": [
        raises(f"{n}={label}", (lambda n=n, v=v: A.propagate(images(2), images(2), **{n: v})), n, exc=exc)
        for (n, v, label, exc) in (
            _ctor("gamma", 1.0),
            _ctor("gamma", float("nan")),
            _ctor("radius", -1),  # radius 0 and sigma_s=inf are documented as valid (no edges; a flat window)
            _ctor("tol", float("nan")),
            _ctor("tol", -1.0),
            _ctor("solver", "bogus"),
            _ctor("sigma_s", -1.0),
            _ctor("max_iter", 0),
        )
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}

API["captum_ext.attr:CriticalPathway"] = {
    "nan": [
        raises(
            "nan_in_inputs",
            lambda: A.CriticalPathway(TinyNet().eval()).compute(nan_images(), target=0, sparsity=0.5),
            "inputs",
        )
    ],
    "empty": "computes one pathway per input; a batch of 0 is walked through PathwayGradient / PrunedAttribution",
    "shapes": "any input shape the model accepts is valid, as in Captum",
    "params": [
        raises("scoring='bogus'", lambda: A.CriticalPathway(TinyNet(), scoring="bogus"), "scoring"),
        raises("n_steps=0", lambda: A.CriticalPathway(TinyNet(), n_steps=0), "n_steps"),
    ],
    "targets": [
        raises(
            "target_longer_than_batch",
            lambda: A.CriticalPathway(TinyNet().eval()).compute(images(2), target=[0, 1, 2], sparsity=0.5),
            "target",
        )
    ],
    "model_state": model_state_cases(
        lambda m: A.CriticalPathway(m).compute(images(2), target=0, sparsity=0.5).flat_masks
    ),
}
API["captum_ext.attr:Pathway"] = na_all("built by CriticalPathway (walked there), not by users")
API["captum_ext.attr:NeFLAGDiagnostics"] = na_all(RECORD)

API["captum_ext.attr:binary_cosine_similarity"] = {
    "nan": "takes no tensors from the user (a kernel width); NaN width is a bad parameter",
    "empty": "returns a similarity function; no batch",
    "shapes": "returns a similarity function; no batch",
    "params": [
        raises("kernel_width=nan", lambda: A.binary_cosine_similarity(float("nan")), "kernel_width"),
        raises("kernel_width=-1", lambda: A.binary_cosine_similarity(-1.0), "kernel_width"),
        raises("kernel_width=inf", lambda: A.binary_cosine_similarity(float("inf")), "kernel_width"),
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.attr:grid_feature_mask"] = {
    "nan": "takes sizes, no tensors",
    "empty": "builds one mask for an image size; no batch",
    "shapes": [raises("cell=(4,)", lambda: A.grid_feature_mask(8, 8, cell=(4,)), "cell")],
    "params": [
        raises("cell=0", lambda: A.grid_feature_mask(8, 8, cell=0), "cell"),
        raises("height=-1", lambda: A.grid_feature_mask(-1, 8), "height"),
        raises("cell=2.5", lambda: A.grid_feature_mask(8, 8, cell=2.5), "cell", exc=TypeError),
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.attr:slic_feature_mask"] = {
    "nan": [raises("nan_in_images", lambda: A.slic_feature_mask(nan_images()), "images")],
    "empty": [result("batch_of_0", lambda: A.slic_feature_mask(images(0)), empty_like_shape((0,)))],
    "shapes": [raises("3d_images", lambda: A.slic_feature_mask(images(2)[:, 0]), "images")],
    "params": [
        raises("n_segments=0", lambda: A.slic_feature_mask(images(2), n_segments=0), "n_segments"),
        raises("compactness=nan", lambda: A.slic_feature_mask(images(2), compactness=float("nan")), "compactness"),
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}

# --- metrics: localisation ------------------------------------------------------------------

for _name in ("pointing_game", "relevance_mass_accuracy", "relevance_rank_accuracy", "roc_auc", "stamp_distance"):
    _f = getattr(M, _name)

    def _nan_maps(f: Callable = _f) -> Any:
        maps, masks = maps_and_masks()
        maps[1, 0, 0, 0] = float("nan")
        return f(maps, masks)

    API[f"captum_ext.metrics:{_name}"] = {
        "nan": [result("nan_in_one_map", _nan_maps, rows_nan_exactly([1], (lambda f=_f: f(*maps_and_masks()))))],
        "empty": [result("batch_of_0", (lambda f=_f: f(*maps_and_masks(0))), empty_like_shape((0,)))],
        "shapes": [
            result(
                "bhw_maps_and_masks",
                (lambda f=_f: f(*(t[:, 0] for t in maps_and_masks()))),
                equals(lambda f=_f: f(*maps_and_masks())),
            ),
            raises("5d_maps", (lambda f=_f: f(maps_and_masks()[0][None], maps_and_masks()[1])), "attributions"),
            raises("masks_other_size", (lambda f=_f: f(maps_and_masks()[0], maps_and_masks(size=6)[1])), "masks"),
        ],
        "params": "only `abs` (a flag)",
        "targets": NO_TARGET,
        "model_state": NO_MODEL,
    }

API["captum_ext.metrics:flatten_maps"] = {
    "nan": "reshapes; the NaN policy is applied by the metrics that call it",
    "empty": [result("batch_of_0", lambda: M.flatten_maps(*maps_and_masks(0)), empty_like_shape((0,)))],
    "shapes": [
        raises("5d_maps", lambda: M.flatten_maps(maps_and_masks()[0][None], maps_and_masks()[1]), "attributions")
    ],
    "params": "only `abs` (a flag)",
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.metrics:mean_and_interval"] = {
    # documented: NaN values (the NaN rows of a metric) are left out and not counted
    "nan": [
        result(
            "nan_values_left_out",
            lambda: M.mean_and_interval(torch.tensor([1.0, float("nan"), 3.0])),
            lambda out: (
                None
                if out[0] == 2.0 and out[2] == 2 and abs(out[1] - 1.959964 * math.sqrt(2) / math.sqrt(2)) < 1e-5
                else (_ for _ in ()).throw(AssertionError(f"got {out}"))
            ),
        )
    ],
    "empty": [
        result(
            "no_values",
            lambda: M.mean_and_interval(torch.tensor([])),
            lambda out: (
                None
                if math.isnan(out[0]) and math.isnan(out[1]) and out[2] == 0
                else (_ for _ in ()).throw(AssertionError(f"got {out}"))
            ),
        )
    ],
    "shapes": "any shape: all values are pooled",
    "params": [
        raises("confidence=1.5", lambda: M.mean_and_interval(torch.rand(4), confidence=1.5), "confidence"),
        raises("confidence=nan", lambda: M.mean_and_interval(torch.rand(4), confidence=float("nan")), "confidence"),
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}

# --- metrics: perturbation curves -------------------------------------------------------------


def _curve(
    f: Callable, model: Optional[nn.Module] = None, x: Optional[Tensor] = None, a: Optional[Tensor] = None, **kw: Any
) -> Any:
    model = model if model is not None else TinyNet().eval()
    x = images(2) if x is None else x
    a = torch.rand(x.shape[0], 1, 8, 8, generator=torch.Generator().manual_seed(3)) if a is None else a
    kw.setdefault("target", [0, 1][: x.shape[0]] if x.shape[0] <= 2 else 0)
    if f is M.pixel_perturbation:
        kw.setdefault("fractions", (0.25, 0.5))
    else:
        kw.setdefault("pixels_per_step", 16)
    return f(model, x, a, **kw)


for _name in ("deletion_curve", "insertion_curve", "insertion_minus_deletion", "pixel_perturbation"):
    _f = getattr(M, _name)

    def _nan_attr(f: Callable = _f) -> Any:
        a = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(3))
        a[0, 0, 1, 1] = float("nan")
        return _curve(f, a=a)

    _step = "fractions" if _name == "pixel_perturbation" else "pixels_per_step"
    _bad_step = {"fractions": (0.5, 1.5)} if _step == "fractions" else {"pixels_per_step": 0}
    API[f"captum_ext.metrics:{_name}"] = {
        "nan": [
            raises("nan_in_inputs", (lambda f=_f: _curve(f, x=nan_images())), "inputs"),
            result("nan_in_one_map", _nan_attr, rows_nan_exactly([0], (lambda f=_f: _curve(f)))),
        ],
        "empty": [
            result(
                "batch_of_0",
                (lambda f=_f: _curve(f, x=images(0), target=torch.zeros(0, dtype=torch.long))),
                empty_like_shape((0,)),
            )
        ],
        "shapes": [
            result(
                "bhw_maps",
                (lambda f=_f: _curve(f, a=torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(3))[:, 0])),
                equals(lambda f=_f: _curve(f)),
            ),
            raises("maps_other_size", (lambda f=_f: _curve(f, a=torch.rand(2, 1, 6, 6))), "attributions"),
        ],
        "params": [
            raises(f"{_step}=bad", (lambda f=_f, kw=_bad_step: _curve(f, **kw)), _step),
            raises("inpainter='bogus'", (lambda f=_f: _curve(f, filler="bogus")), "inpainter|filler"),
        ],
        "targets": [raises("target_longer_than_batch", (lambda f=_f: _curve(f, target=[0, 1, 2])), "target")],
        "model_state": model_state_cases(lambda m, f=_f: _curve(f, model=m)),
    }

API["captum_ext.metrics:ConstantFill"] = {
    "nan": [raises("value=nan", lambda: M.ConstantFill(float("nan")), "value")],
    "empty": [result("batch_of_0", lambda: M.ConstantFill(0.0)(images(0), holes(0)), empty_like_shape((0, 3, 8, 8)))],
    "shapes": [raises("holes_other_size", lambda: M.ConstantFill(0.0)(images(2), holes(2, size=6)), "holes")],
    "params": [raises("value='x'", lambda: M.ConstantFill("x"), "value", exc=TypeError)],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.metrics:resolve_filler"] = {
    "nan": [raises("nan", lambda: M.resolve_filler(float("nan")), "filler|inpainter")],
    "empty": "resolves a fill argument; no batch",
    "shapes": "resolves a fill argument; no batch",
    "params": [
        raises("bogus_name", lambda: M.resolve_filler("bogus"), "filler|inpainter"),
        raises("wrong_type", lambda: M.resolve_filler(object()), "filler|inpainter", exc=TypeError),
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
for _rec in ("PerturbationCurve", "RoarResult", "SanityResult"):
    API[f"captum_ext.metrics:{_rec}"] = na_all(RECORD)

API["captum_ext.metrics:normalized_auc"] = {
    "nan": [
        result(
            "nan_in_one_curve",
            lambda: M.normalized_auc(torch.tensor([[1.0, 0.5, 0.0], [1.0, float("nan"), 0.0]])),
            lambda out: (
                (out.shape == (2,))
                and bool(torch.isnan(out[1]))
                and torch.testing.assert_close(out[0], M.normalized_auc(torch.tensor([[1.0, 0.5, 0.0]]))[0])
            ),
        )
    ],
    "empty": [result("batch_of_0", lambda: M.normalized_auc(torch.zeros(0, 3)), empty_like_shape((0,)))],
    "shapes": [
        raises(
            "fractions_other_length", lambda: M.normalized_auc(torch.rand(2, 3), torch.tensor([0.0, 1.0])), "fractions"
        )
    ],
    "params": "no parameters beyond the scores and fractions",
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.metrics:pixel_ranks"] = {
    "nan": [raises("nan_scores", lambda: M.pixel_ranks(torch.tensor([[1.0, float("nan")]])), "scores")],
    "empty": [result("batch_of_0", lambda: M.pixel_ranks(torch.zeros(0, 4)), empty_like_shape((0, 4)))],
    "shapes": "any (B, ...) scores are ranked per row",
    "params": [
        raises("tie_seed='x'", lambda: M.pixel_ranks(torch.rand(1, 4), tie_seed="x"), "tie_seed", exc=TypeError)
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}

# --- metrics: sanity -----------------------------------------------------------------------------


def _sanity(model: Optional[nn.Module] = None, x: Optional[Tensor] = None, **kw: Any) -> Any:
    model = model if model is not None else TinyNet().eval()
    x = images(2) if x is None else x
    kw.setdefault("target", [0, 1][: x.shape[0]])
    return M.cascading_randomization(model, Saliency, x, layers=["fc"], **kw)


API["captum_ext.metrics:cascading_randomization"] = {
    "nan": [raises("nan_in_inputs", lambda: _sanity(x=nan_images()), "inputs")],
    "empty": [
        result(
            "batch_of_0",
            lambda: _sanity(x=images(0), target=torch.zeros(0, dtype=torch.long)),
            lambda out: (
                None
                if all(t.shape[1:] == (0,) for d in out.similarities.values() for t in d.values())  # (stages, B)
                else (_ for _ in ()).throw(AssertionError("non-empty similarities"))
            ),
        )
    ],
    "shapes": [raises("3d_inputs", lambda: _sanity(x=images(2)[:, 0]), "inputs")],
    "params": [
        raises("std=nan", lambda: _sanity(std=float("nan")), "std"),
        raises("std=-1", lambda: _sanity(std=-1.0), "std"),
        raises("mode='bogus'", lambda: _sanity(mode="bogus"), "mode"),
        raises("batch_size=0", lambda: _sanity(batch_size=0), "batch_size"),
        raises(
            "layers=['nope']",
            lambda: M.cascading_randomization(TinyNet(), Saliency, images(2), 0, layers=["nope"]),
            "layers",
        ),
    ],
    "targets": [
        raises("target_longer_than_batch", lambda: _sanity(target=[0, 1, 2]), "target"),
        result(
            "target=None_is_the_prediction",
            lambda: _sanity(target=None).similarities,
            lambda out: torch.testing.assert_close(
                out,
                _sanity(target=TinyNet().eval()(images(2)).argmax(1)).similarities,
                equal_nan=True,
            ),
        ),
    ],
    "model_state": model_state_cases(lambda m: _sanity(model=m).similarities),
}
API["captum_ext.metrics:randomization_layers"] = {
    "nan": "lists module names",
    "empty": "lists module names",
    "shapes": "lists module names",
    "params": [raises("model=not_a_module", lambda: M.randomization_layers("net"), "model", exc=TypeError)],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}


def _pairwise(f: Callable) -> Entry:
    def nan_row() -> Any:
        x, y = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)
        x[1, 0, 0, 0] = float("nan")
        return f(x, y), f(x[:1], y[:1])

    def check(pair: Any) -> None:
        out, ref = pair
        assert bool(torch.isnan(out[1])) and not bool(torch.isnan(out[0]))
        torch.testing.assert_close(out[:1], ref)

    return {
        "nan": [result("nan_in_one_map", nan_row, check)],
        "empty": [
            result("batch_of_0", lambda: f(torch.zeros(0, 1, 8, 8), torch.zeros(0, 1, 8, 8)), empty_like_shape((0,)))
        ],
        "shapes": [raises("other_shapes", lambda: f(torch.rand(2, 1, 8, 8), torch.rand(2, 1, 6, 6)), "x|y")],
        "params": "no parameters beyond the maps"
        if f is not M.ssim
        else [
            raises(
                "data_range=0", lambda: f(torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8), data_range=0.0), "data_range"
            ),
            raises("win_size=4", lambda: f(torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8), win_size=4), "win_size"),
        ],
        "targets": NO_TARGET,
        "model_state": NO_MODEL,
    }


for _name in ("pearson", "spearman", "ssim"):
    API[f"captum_ext.metrics:{_name}"] = _pairwise(getattr(M, _name))
API["captum_ext.metrics:map_similarities"] = {
    "nan": "applies spearman / pearson / ssim / hog (walked one by one) to each map",
    "empty": [
        result(
            "batch_of_0",
            lambda: M.map_similarities(torch.zeros(0, 1, 16, 16), torch.zeros(0, 1, 16, 16)),
            lambda out: (
                None
                if all(v.shape[0] == 0 for v in out.values())
                else (_ for _ in ()).throw(AssertionError("non-empty"))
            ),
        )
    ],
    "shapes": [
        raises(
            "other_shapes",
            lambda: M.map_similarities(torch.rand(2, 1, 16, 16), torch.rand(2, 1, 8, 8)),
            "reference|maps",
        )
    ],
    "params": "no parameters",
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.metrics:hog_features"] = {
    "nan": [raises("nan_images", lambda: M.hog_features(nan_images(size=32)), "images")],
    "empty": [result("batch_of_0", lambda: M.hog_features(torch.zeros(0, 1, 32, 32)), empty_like_shape((0,)))],
    "shapes": [raises("2d_images", lambda: M.hog_features(torch.rand(16, 16)), "images")],
    "params": [
        raises("cell=0", lambda: M.hog_features(torch.rand(1, 1, 16, 16), cell=0), "cell"),
        raises("orientations=0", lambda: M.hog_features(torch.rand(1, 1, 16, 16), orientations=0), "orientations"),
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.metrics:normalize_abs_map"] = {
    "nan": [
        result(
            "nan_in_one_map",
            lambda: M.normalize_abs_map(nan_images()),
            rows_nan_exactly([0], lambda: M.normalize_abs_map(images(2))),
        )
    ],
    "empty": [result("batch_of_0", lambda: M.normalize_abs_map(images(0)), empty_like_shape((0,)))],
    "shapes": "any (B, ...) map is normalised per row",
    "params": [
        raises("percentile=150", lambda: M.normalize_abs_map(images(2), percentile=150.0), "percentile"),
        raises("percentile=nan", lambda: M.normalize_abs_map(images(2), percentile=float("nan")), "percentile"),
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.metrics:roar"] = {
    "nan": "builds its own data set (no user tensors)",
    "empty": [
        raises("n_test=0", lambda: M.roar(Saliency, n_train=32, n_test=0, image_size=16, stamp_size=6), "n_test")
    ],
    "shapes": "builds its own data set (no user tensors)",
    "params": [
        raises(
            "fractions=(1.5,)",
            lambda: M.roar(Saliency, n_train=32, n_test=8, image_size=16, stamp_size=6, fractions=(1.5,)),
            "fractions",
        ),
        raises(
            "epochs=0", lambda: M.roar(Saliency, n_train=32, n_test=8, image_size=16, stamp_size=6, epochs=0), "epochs"
        ),
        raises(
            "lr=nan", lambda: M.roar(Saliency, n_train=32, n_test=8, image_size=16, stamp_size=6, lr=float("nan")), "lr"
        ),
        raises(
            "inpainter='bogus'",
            lambda: M.roar(Saliency, n_train=32, n_test=8, image_size=16, stamp_size=6, filler="bogus"),
            "inpainter|filler",
        ),
    ],
    "targets": "uses the data set's labels",
    "model_state": "trains its own models; restores the global RNG (walked in tests/test_roar.py, slow)",
}

# --- inpaint ---------------------------------------------------------------------------------

_INPAINTERS = {
    "BiharmonicInpainter": lambda: I.BiharmonicInpainter(),
    "BlurInpainter": lambda: I.BlurInpainter(sigma=2.0),
    "ConstantInpainter": lambda: I.ConstantInpainter(0.5),
    "HarmonicInpainter": lambda: I.HarmonicInpainter(),
    "MeanInpainter": lambda: I.MeanInpainter(),
    "NoiseInpainter": lambda: I.NoiseInpainter(generator=torch.Generator().manual_seed(0)),
    "PullPushInpainter": lambda: I.PullPushInpainter(),
    "OpenCVInpainter": lambda: I.OpenCVInpainter(),
}
_INPAINTER_PARAMS: Dict[str, List[Tuple[str, Callable[[], Any], Any]]] = {
    "BlurInpainter": [
        ("sigma", lambda: I.BlurInpainter(sigma=float("nan")), ValueError),
        ("sigma", lambda: I.BlurInpainter(sigma=-1.0), ValueError),
    ],
    "ConstantInpainter": [
        ("value", lambda: I.ConstantInpainter("x"), TypeError),
        ("value", lambda: I.ConstantInpainter(float("nan")), ValueError),
    ],
    "HarmonicInpainter": [
        ("omega", lambda: I.HarmonicInpainter(omega=float("nan")), ValueError),
        ("sweeps", lambda: I.HarmonicInpainter(sweeps=-1), ValueError),  # 0 is documented: pull-push
    ],
    "NoiseInpainter": [
        ("scale", lambda: I.NoiseInpainter(scale=-1.0), ValueError),
        ("scale", lambda: I.NoiseInpainter(scale=float("inf")), ValueError),
    ],
    "OpenCVInpainter": [
        ("method", lambda: I.OpenCVInpainter(method="bogus"), ValueError),
        ("radius", lambda: I.OpenCVInpainter(radius=float("nan")), ValueError),
    ],
}
for _name, _make in _INPAINTERS.items():
    API[f"captum_ext.inpaint:{_name}"] = {
        "nan": [raises("nan_in_known_pixels", (lambda mk=_make: mk()(nan_images(), holes())), "images")],
        "empty": [result("batch_of_0", (lambda mk=_make: mk()(images(0), holes(0))), empty_like_shape((0, 3, 8, 8)))],
        "shapes": [
            raises("holes_other_size", (lambda mk=_make: mk()(images(2), holes(2, size=6))), "holes"),
            raises("3d_images", (lambda mk=_make: mk()(images(2)[:, 0], holes(2)[:, 0])), "images"),
        ],
        "params": (
            [raises(f"{n}=bad{i}", mk, n, exc=e) for i, (n, mk, e) in enumerate(_INPAINTER_PARAMS[_name])]
            + (
                [raises("fallback=nan", (lambda mk=_make: type(mk())(fallback=float("nan"))), "fallback")]
                if _name != "ConstantInpainter"
                else []
            )
            if _name in _INPAINTER_PARAMS
            else [raises("fallback=nan", (lambda mk=_make: type(mk())(fallback=float("nan"))), "fallback")]
            if _name != "ConstantInpainter"
            else []
        ),
        "targets": NO_TARGET,
        "model_state": NO_MODEL,
    }
API["captum_ext.inpaint:Inpainter"] = na_all("the abstract base class; its subclasses are walked")
API["captum_ext.inpaint:LearnedInpainter"] = {
    "nan": "wraps a user network; the NaN policy of apply_inpainter applies (walked there)",
    "empty": "wraps a user network; walked in tests/test_inpaint.py",
    "shapes": "wraps a user network; walked in tests/test_inpaint.py",
    "params": [
        raises("input_format='bogus'", lambda: I.LearnedInpainter(nn.Identity(), input_format="bogus"), "input_format"),
        raises("pad_multiple=0", lambda: I.LearnedInpainter(nn.Identity(), pad_multiple=0), "pad_multiple"),
        raises(
            "model='not-a-file'",
            lambda: I.LearnedInpainter("no/such/file.pt"),
            "model|no/such/file",
            exc=(ValueError, FileNotFoundError),
        ),
    ],
    "targets": NO_TARGET,
    "model_state": "runs a user network under no_grad; walked in tests/test_inpaint.py",
}
API["captum_ext.inpaint:apply_inpainter"] = {
    "nan": [
        raises("nan_in_known_pixels", lambda: I.apply_inpainter(I.MeanInpainter(), nan_images(), holes()), "images")
    ],
    "empty": [
        result(
            "batch_of_0",
            lambda: I.apply_inpainter(I.MeanInpainter(), images(0), holes(0)),
            empty_like_shape((0, 3, 8, 8)),
        )
    ],
    "shapes": [
        raises("holes_other_size", lambda: I.apply_inpainter(I.MeanInpainter(), images(2), holes(2, size=6)), "holes")
    ],
    "params": [
        raises("inpainter=not_callable", lambda: I.apply_inpainter(3, images(2), holes()), "inpainter", exc=TypeError),
        raises(
            "fallback=nan",
            lambda: I.apply_inpainter(I.MeanInpainter(), images(2), holes(), fallback=float("nan")),
            "fallback",
        ),
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.inpaint:check_holes"] = {
    "nan": [
        raises(
            "nan_holes", lambda: I.check_holes(images(2), holes().masked_fill(holes().bool(), float("nan"))), "holes"
        )
    ],
    "empty": [result("batch_of_0", lambda: I.check_holes(images(0), holes(0)), empty_like_shape((0, 1, 8, 8)))],
    "shapes": [
        raises("holes_other_size", lambda: I.check_holes(images(2), holes(2, size=6)), "holes"),
        raises("non_binary", lambda: I.check_holes(images(2), holes() * 0.5), "holes"),
    ],
    "params": "no parameters beyond the tensors",
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.inpaint:composite"] = {
    "nan": "mixes tensors the caller checked (apply_inpainter, walked)",
    "empty": [
        result("batch_of_0", lambda: I.composite(images(0), bholes(0), images(0)), empty_like_shape((0, 3, 8, 8)))
    ],
    "shapes": [raises("filled_other_size", lambda: I.composite(images(2), bholes(), images(2, size=6)), "filled")],
    "params": [
        raises("fallback=nan", lambda: I.composite(images(2), bholes(), images(2), fallback=float("nan")), "fallback")
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.inpaint:get_inpainter"] = {
    # documented: names and callables only (numbers go through resolve_inpainter, walked)
    "nan": [raises("nan_constant", lambda: I.get_inpainter(float("nan")), "inpainter", exc=TypeError)],
    "empty": "resolves a name; no batch",
    "shapes": "resolves a name; no batch",
    "params": [
        raises("bogus_name", lambda: I.get_inpainter("bogus"), "bogus|name"),
        raises("bad_option", lambda: I.get_inpainter("blur", sigma=-1.0), "sigma"),
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.inpaint:inpainter_names"] = na_all("takes no arguments")
for _name in ("harmonic_fill", "pull_push_fill"):
    _f = getattr(I, _name)
    API[f"captum_ext.inpaint:{_name}"] = {
        "nan": [raises("nan_in_known_pixels", (lambda f=_f: f(nan_images(), bholes())), "images")],
        "empty": [result("batch_of_0", (lambda f=_f: f(images(0), bholes(0))), empty_like_shape((0, 3, 8, 8)))],
        "shapes": [raises("holes_other_size", (lambda f=_f: f(images(2), bholes(2, size=6))), "holes")],
        "params": (
            [
                raises("omega=nan", lambda: I.harmonic_fill(images(2), bholes(), omega=float("nan")), "omega"),
                raises("sweeps=-1", lambda: I.harmonic_fill(images(2), bholes(), sweeps=-1), "sweeps"),
            ]
            if _name == "harmonic_fill"
            else "no parameters beyond the tensors"
        ),
        "targets": NO_TARGET,
        "model_state": NO_MODEL,
    }

# --- propagate -------------------------------------------------------------------------------


def _op(b: int = 2, size: int = 8) -> Any:
    return P.StencilOperator.from_guide(images(b, size), radius=1, sigma_c=0.1)


for _name in ("COLOR_SPACES", "SOLVERS"):
    API[f"captum_ext.propagate:{_name}"] = na_all(CONSTANT)
API["captum_ext.propagate:SolveInfo"] = na_all(RECORD)
API["captum_ext.propagate:GraphOperator"] = na_all("the abstract operator; StencilOperator / CSROperator are walked")
API["captum_ext.propagate:StencilOperator"] = {
    "nan": [
        raises("nan_weights", lambda: P.StencilOperator(torch.full((1, 9, 4, 4), float("nan"))), "weights"),
        raises("nan_guide", lambda: P.StencilOperator.from_guide(nan_images()), "guide"),
    ],
    "empty": [result("batch_of_0", lambda: P.solve_mrp(_op(0), images(0))[0], empty_like_shape((0, 3, 8, 8)))],
    "shapes": [raises("3d_weights", lambda: P.StencilOperator(torch.rand(9, 4, 4)), "weights")],
    # radius 0 is documented as valid (a graph of self-loops: nothing propagates)
    "params": [raises("radius=-1", lambda: P.StencilOperator.from_guide(images(2), radius=-1), "radius")],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.propagate:CSROperator"] = {
    "nan": "built from an affinity the caller computed (stencil_affinity, walked)",
    "empty": "one sparse matrix for a batch; walked through StencilOperator",
    "shapes": [
        raises("shape_mismatch", lambda: P.CSROperator(torch.eye(4).to_sparse_csr(), (1, 3, 3)), "shape|affinity")
    ],
    "params": [
        # documented: a dense (N, N) affinity is accepted (converted to CSR); a negative one is refused
        result(
            "dense_affinity_is_the_sparse_one",
            lambda: P.CSROperator(torch.eye(4), (1, 2, 2)).matvec(images(1, 2)[:, :1]),
            equals(lambda: P.CSROperator(torch.eye(4).to_sparse_csr(), (1, 2, 2)).matvec(images(1, 2)[:, :1])),
        ),
        raises("negative_affinity", lambda: P.CSROperator(-torch.eye(4), (1, 2, 2)), "affinity"),
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
for _name in ("solve_mrp", "conjugate_gradient", "value_iteration"):
    _f = getattr(P, _name)
    API[f"captum_ext.propagate:{_name}"] = {
        "nan": [raises("nan_reward", (lambda f=_f: f(_op(), nan_images())), "reward")],
        "empty": [result("batch_of_0", (lambda f=_f: f(_op(0), images(0))[0]), empty_like_shape((0, 3, 8, 8)))],
        "shapes": [raises("reward_other_size", (lambda f=_f: f(_op(), images(2, size=6))), "reward")],
        "params": [
            raises(f"{n}={label}", (lambda f=_f, n=n, v=v: f(_op(), images(2), **{n: v})), n, exc=e)
            for (n, v, label, e) in (
                _ctor("gamma", 1.0),
                _ctor("gamma", float("nan")),
                _ctor("tol", float("nan")),
                _ctor("tol", -1.0),
                _ctor("max_iter", 0),
            )
        ]
        + (
            [raises("solver='bogus'", lambda: P.solve_mrp(_op(), images(2), solver="bogus"), "solver")]
            if _name == "solve_mrp"
            else []
        ),
        "targets": NO_TARGET,
        "model_state": NO_MODEL,
    }
API["captum_ext.propagate:stencil_affinity"] = {
    "nan": [raises("nan_guide", lambda: P.stencil_affinity(nan_images()), "guide")],
    "empty": [result("batch_of_0", lambda: P.stencil_affinity(images(0)), empty_like_shape((0,)))],
    "shapes": [raises("3d_guide", lambda: P.stencil_affinity(images(2)[:, 0]), "guide")],
    "params": [
        raises(f"{n}={label}", (lambda n=n, v=v: P.stencil_affinity(images(2), **{n: v})), n, exc=e)
        for (n, v, label, e) in (
            _ctor("radius", -1),
            _ctor("sigma_s", float("nan")),
            _ctor("sigma_c", -1.0),
            _ctor("color_space", "bogus"),
            _ctor("min_weight", float("nan")),
        )
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.propagate:color_features"] = {
    "nan": "a colour conversion of a guide; the NaN policy is applied by stencil_affinity (walked)",
    "empty": [result("batch_of_0", lambda: P.color_features(images(0)), empty_like_shape((0,)))],
    "shapes": [raises("3d_guide", lambda: P.color_features(images(2)[:, 0], "lab"), "guide")],
    "params": [raises("color_space='bogus'", lambda: P.color_features(images(2), "bogus"), "color_space")],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.propagate:leakage_weight"] = {
    "nan": "takes numbers; NaN is a bad parameter",
    "empty": "takes numbers",
    "shapes": "takes numbers",
    "params": [
        raises("delta=nan", lambda: P.leakage_weight(float("nan"), 0.1), "delta"),
        raises("sigma_c=-1", lambda: P.leakage_weight(0.1, -1.0), "sigma_c"),
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.propagate:min_max_scale"] = {
    "nan": [
        result(
            "nan_in_one_image",
            lambda: P.min_max_scale(nan_images()),
            rows_nan_exactly([0], lambda: P.min_max_scale(images(2))),
        )
    ],
    "empty": [result("batch_of_0", lambda: P.min_max_scale(images(0)), empty_like_shape((0, 3, 8, 8)))],
    "shapes": "any (B, ...) tensor is scaled per row",
    "params": "no parameters",
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.propagate:window_offsets"] = {
    "nan": "takes an int",
    "empty": "takes an int",
    "shapes": "takes an int",
    "params": [
        raises("radius=-1", lambda: P.window_offsets(-1), "radius"),
        raises("radius=1.5", lambda: P.window_offsets(1.5), "radius", exc=TypeError),
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}

# --- names added on the merged branches ----------------------------------------------------------

for _old, _new in (
    ("cascading_randomisation", "cascading_randomization"),
    ("normalise_abs_map", "normalize_abs_map"),
    ("normalised_auc", "normalized_auc"),
    ("randomisation_layers", "randomization_layers"),
):
    API[f"captum_ext.metrics:{_old}"] = na_all(
        f"deprecated alias of {_new} (one release): forwards its arguments; walked under the new name"
    )

for _rec in ("IPropDiagnostics", "MeaningfulPerturbationDiagnostics", "PathwayDiagnostics"):
    API[f"captum_ext.attr:{_rec}"] = na_all(RECORD)
API["captum_ext.metrics:RoadResult"] = na_all(RECORD)
for _const in ("ROAD_PERCENTAGES", "SMALL_OBJECT_FRACTIONS"):
    API[f"captum_ext.metrics:{_const}"] = na_all(CONSTANT)
API["captum_ext.propagate:PRECONDITIONERS"] = na_all(CONSTANT)

API["captum_ext.inpaint:NoisyLinearInpainter"] = {
    "nan": [raises("nan_in_known_pixels", lambda: I.NoisyLinearInpainter()(nan_images(), holes()), "images")],
    "empty": [
        result("batch_of_0", lambda: I.NoisyLinearInpainter()(images(0), holes(0)), empty_like_shape((0, 3, 8, 8)))
    ],
    "shapes": [
        raises("holes_other_size", lambda: I.NoisyLinearInpainter()(images(2), holes(2, size=6)), "holes"),
        raises("3d_images", lambda: I.NoisyLinearInpainter()(images(2)[:, 0], holes(2)[:, 0]), "images"),
        raises(
            "image_indices_other_length",
            lambda: I.NoisyLinearInpainter()(images(2), holes(), image_indices=[0]),
            "image_indices",
        ),
    ],
    "params": [
        raises(f"{n}={label}", (lambda n=n, v=v: I.NoisyLinearInpainter(**{n: v})), n, exc=e)
        for (n, v, label, e) in (
            _ctor("noise", -1.0),
            _ctor("noise", float("nan")),
            _ctor("tol", float("nan")),
            _ctor("max_iter", 0),
            _ctor("seed", "x", TypeError),
            _ctor("fallback", float("nan")),
        )
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.inpaint:resolve_inpainter"] = {
    "nan": [raises("nan_constant", lambda: I.resolve_inpainter(float("nan")), "inpainter")],
    "empty": "resolves an `inpainter=` argument; no batch",
    "shapes": "resolves an `inpainter=` argument; no batch",
    "params": [
        raises("bogus_name", lambda: I.resolve_inpainter("bogus"), "bogus|inpainter"),
        raises("wrong_type", lambda: I.resolve_inpainter(object()), "inpainter", exc=TypeError),
        result(
            "number_is_a_constant",
            lambda: I.resolve_inpainter(0.5)(images(2), holes()),
            equals(lambda: I.ConstantInpainter(0.5)(images(2), holes())),
        ),
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}

API["captum_ext.metrics:average_ranks"] = {
    "nan": [raises("nan_values", lambda: M.average_ranks(torch.tensor([[1.0, float("nan")]])), "values")],
    "empty": [result("batch_of_0", lambda: M.average_ranks(torch.zeros(0, 4)), empty_like_shape((0, 4)))],
    "shapes": [raises("1d_values", lambda: M.average_ranks(torch.rand(4)), "values")],
    "params": "no parameters beyond the values",
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}


def _road(model: Optional[nn.Module] = None, x: Optional[Tensor] = None, a: Optional[Tensor] = None, **kw: Any) -> Any:
    model = model if model is not None else TinyNet().eval()
    x = images(2) if x is None else x
    a = torch.rand(x.shape[0], 1, 8, 8, generator=torch.Generator().manual_seed(3)) if a is None else a
    kw.setdefault("target", [0, 1][: x.shape[0]])
    kw.setdefault("percentages", (25, 50))
    kw.setdefault("inpainter", 0.0)  # the walk checks the metric, not the (walked) linear inpainter
    return M.road(model, x, a, **kw)


def _road_nan_map() -> Any:
    a = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    a[0, 0, 1, 1] = float("nan")
    return _road(a=a)


API["captum_ext.metrics:road"] = {
    "nan": [
        raises("nan_in_inputs", lambda: _road(x=nan_images()), "inputs"),
        result("nan_in_one_map", _road_nan_map, rows_nan_exactly([0], lambda: _road())),
    ],
    "empty": [
        result(
            "batch_of_0", lambda: _road(x=images(0), target=torch.zeros(0, dtype=torch.long)), empty_like_shape((0,))
        )
    ],
    "shapes": [
        result(
            "bhw_maps",
            lambda: _road(a=torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(3))[:, 0]),
            equals(lambda: _road()),
        ),
        raises("maps_other_size", lambda: _road(a=torch.rand(2, 1, 6, 6)), "attributions"),
    ],
    "params": [
        raises("percentages=150", lambda: _road(percentages=(50, 150)), "percentages"),
        raises("order='bogus'", lambda: _road(order="bogus"), "order"),
        raises("noise=nan", lambda: _road(noise=float("nan")), "noise"),
        raises("inpainter='bogus'", lambda: _road(inpainter="bogus"), "inpainter|bogus"),
        raises("max_examples_per_batch=0", lambda: _road(max_examples_per_batch=0), "max_examples_per_batch"),
        raises("reduce='bogus'", lambda: _road(reduce="bogus"), "reduce"),
    ],
    "targets": [raises("target_longer_than_batch", lambda: _road(target=[0, 1, 2]), "target")],
    "model_state": model_state_cases(lambda m: _road(model=m)),
}


def _road_result(b: int, order: str, first: float = 0.1) -> Any:
    p = torch.tensor([10.0, 20.0], dtype=torch.float64)
    scores = torch.full((b, 2), 0.5, dtype=torch.float64)
    if b:
        scores[0, 0] = first
    return M.RoadResult(p, scores, torch.ones(b, 2, dtype=torch.bool), order)


API["captum_ext.metrics:road_combined"] = {
    "nan": [
        result(
            "nan_in_one_row",
            lambda: M.road_combined(_road_result(2, "morf", float("nan")), _road_result(2, "lerf")),
            rows_nan_exactly([0], lambda: M.road_combined(_road_result(2, "morf"), _road_result(2, "lerf"))),
        )
    ],
    "empty": [
        result(
            "batch_of_0",
            lambda: M.road_combined(_road_result(0, "morf"), _road_result(0, "lerf")),
            empty_like_shape((0,)),
        )
    ],
    "shapes": [
        raises("other_images", lambda: M.road_combined(_road_result(2, "morf"), _road_result(3, "lerf")), "morf|lerf")
    ],
    "params": [
        raises("orders_swapped", lambda: M.road_combined(_road_result(2, "lerf"), _road_result(2, "morf")), "morf")
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}


def _stencil(b: int = 1) -> Tensor:
    a = torch.zeros(b, 9, 8, 8, dtype=torch.float64)
    a[:, 4] = 2.0
    return a


API["captum_ext.propagate:MultigridPreconditioner"] = {
    "nan": [
        raises(
            "nan_stencil",
            lambda: P.MultigridPreconditioner(torch.full((1, 9, 8, 8), float("nan"), dtype=torch.float64), radius=1),
            "stencil",
        )
    ],
    "empty": [
        result(
            "batch_of_0",
            lambda: P.MultigridPreconditioner(_stencil(0), radius=1)(torch.zeros(0, 1, 8, 8, dtype=torch.float64)),
            empty_like_shape((0, 1, 8, 8)),
        )
    ],
    "shapes": [raises("3d_stencil", lambda: P.MultigridPreconditioner(_stencil()[0], radius=1), "stencil")],
    "params": [
        raises(
            f"{n}={label}", (lambda n=n, v=v: P.MultigridPreconditioner(_stencil(), **{"radius": 1, n: v})), n, exc=e
        )
        for (n, v, label, e) in (
            _ctor("radius", -1),
            _ctor("radius", 2),
            _ctor("damping", float("nan")),
            _ctor("damping", 0.0),
            _ctor("coarsest_pixels", 0),
        )
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}

# --- data ------------------------------------------------------------------------------------


def no_training(call: Callable[[], Any]) -> Callable[[], Any]:
    """Run ``call`` with the classifier's training loop replaced by an error (never train in a test).

    A bad recipe must be refused before training starts; today's code would train for minutes.
    """

    def run() -> Any:
        from unittest import mock

        import captum_ext.data.classifier as C

        def refuse(*_: Any, **__: Any) -> Any:
            raise RuntimeError("would start training (the recipe was not validated first)")

        with mock.patch.object(C, "make_stamped_batch", refuse):
            return call()

    return run


for _name in ("DEFAULT_RECIPE", "GLYPH_NAMES", "PHOTO_NAMES"):
    API[f"captum_ext.data:{_name}"] = na_all(CONSTANT)
API["captum_ext.data:StampedBatch"] = na_all(RECORD)
API["captum_ext.data:cache_dir"] = na_all("takes no arguments")
API["captum_ext.data:StampNet"] = {
    "nan": "a model; what it is fed is the caller's",
    "empty": "a model (a batch of 0 gives (0, classes))",
    "shapes": "a model",
    "targets": NO_TARGET,
    "model_state": "a model",
    "params": [
        raises("num_classes=0", lambda: D.StampNet(num_classes=0), "num_classes"),
        raises("width=0", lambda: D.StampNet(width=0), "width"),
    ],
}
def _empty_stamped(out: Any) -> None:
    """images (0, 3, 16, 16), labels (0,) long, masks (0, 1, 16, 16): a batch or a data set of 0."""
    tensors = out.tensors() if isinstance(out, D.StampedImages) else (out.images, out.labels, out.masks)
    shapes = [tuple(t.shape) for t in tensors]
    assert shapes == [(0, 3, 16, 16), (0,), (0, 1, 16, 16)], shapes
    assert tensors[1].dtype == torch.long, tensors[1].dtype
    if isinstance(out, D.StampedImages):
        assert len(out) == 0, len(out)


for _name, _f in (("make_stamped_batch", D.make_stamped_batch), ("StampedImages", D.StampedImages)):
    API[f"captum_ext.data:{_name}"] = {
        "nan": "builds images from a seed",
        "empty": [
            result(
                "n=0",
                (lambda f=_f: f(0, image_size=16, stamp_size=6)),
                _empty_stamped,
            )
        ],
        "shapes": "builds images from sizes (walked as parameters)",
        "params": [
            raises("n=-1", (lambda f=_f: f(-1)), "n"),
            raises("stamp_size>image_size", (lambda f=_f: f(2, image_size=8, stamp_size=12)), "stamp_size|image_size"),
            raises("num_glyphs=0", (lambda f=_f: f(2, num_glyphs=0)), "num_glyphs"),
            raises("num_glyphs=99", (lambda f=_f: f(2, num_glyphs=99)), "num_glyphs"),
        ],
        "targets": NO_TARGET,
        "model_state": NO_MODEL,
    }
API["captum_ext.data:glyph_mask"] = {
    "nan": "takes a name and a size",
    "empty": "one glyph",
    "shapes": "one glyph",
    "params": [
        raises("name='bogus'", lambda: D.glyph_mask("bogus", 8), "name|bogus"),
        raises("size=0", lambda: D.glyph_mask("plus", 0), "size"),
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.data:load_photo"] = {
    "nan": "reads a bundled photo",
    "empty": "one photo",
    "shapes": "one photo",
    "params": [
        raises("name='bogus'", lambda: D.load_photo("bogus"), "name|bogus"),
        raises("size=0", lambda: D.load_photo("astronaut", size=0), "size"),
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.data:load_photos"] = {
    "nan": "reads bundled photos",
    "empty": [result("names=[]", lambda: D.load_photos([], size=16), empty_like_shape((0,)))],
    "shapes": "reads bundled photos",
    "params": [
        raises("size=0", lambda: D.load_photos(["astronaut"], size=0), "size"),
        raises("names='astronaut'", lambda: D.load_photos("astronaut", size=16), "names", exc=TypeError),
    ],
    "targets": NO_TARGET,
    "model_state": NO_MODEL,
}
API["captum_ext.data:stamp_recall"] = {
    "nan": [
        raises("nan_images", lambda: D.stamp_recall(TinyNet().eval(), nan_images(), torch.tensor([0, 1]), 2), "images")
    ],
    "empty": [
        result(
            "batch_of_0",
            lambda: D.stamp_recall(TinyNet().eval(), images(0), torch.zeros(0, dtype=torch.long), 2),
            # a per-class aggregate: its shape is (num_glyphs + 1,) whatever the batch; every
            # class is absent, so every recall is 0 / 0 = NaN (documented)
            lambda out: (
                None
                if isinstance(out, Tensor) and out.shape == (3,) and bool(torch.isnan(out).all())
                else (_ for _ in ()).throw(AssertionError(f"expected 3 NaNs, got {out!r}"))
            ),
        )
    ],
    "shapes": [
        raises(
            "labels_other_length", lambda: D.stamp_recall(TinyNet().eval(), images(2), torch.tensor([0]), 2), "labels"
        )
    ],
    "params": [
        raises(
            "batch_size=0",
            lambda: D.stamp_recall(TinyNet().eval(), images(2), torch.tensor([0, 1]), 2, batch_size=0),
            "batch_size",
        )
    ],
    "targets": "takes labels (walked as shapes)",
    # every class present, so no recall is NaN (an absent class is NaN: 0 / 0)
    "model_state": model_state_cases(lambda m: D.stamp_recall(m, images(3), torch.tensor([0, 1, 2]), 2)),
}
API["captum_ext.data:load_stamp_classifier"] = {
    "nan": [
        raises(
            "recipe_lr_nan",
            no_training(
                lambda: D.load_stamp_classifier(recipe={**D.DEFAULT_RECIPE, "lr": float("nan")}, progress=False)
            ),
            "lr|recipe",
        )
    ],
    "empty": "loads one model",
    "shapes": "loads one model",
    "params": [
        raises(
            "recipe_unknown_key",
            no_training(lambda: D.load_stamp_classifier(recipe={"bogus": 1}, progress=False)),
            "recipe|bogus",
        ),
        raises(
            "device='bogus'", no_training(lambda: D.load_stamp_classifier(device="bogus", progress=False)), "device"
        ),
    ],
    "targets": NO_TARGET,
    "model_state": "returns a fresh model",
}
API["captum_ext.data:train_stamp_classifier"] = {
    "nan": [
        raises(
            "recipe_lr_nan",
            no_training(lambda: D.train_stamp_classifier(recipe={**D.DEFAULT_RECIPE, "lr": float("nan")})),
            "lr|recipe",
        )
    ],
    "empty": "trains one model",
    "shapes": "trains one model",
    "params": [
        raises("recipe_unknown_key", no_training(lambda: D.train_stamp_classifier(recipe={"bogus": 1})), "recipe|bogus")
    ],
    "targets": NO_TARGET,
    "model_state": "returns a fresh model; restores the global RNG (tests/test_classifier.py)",
}

# --- CLI -------------------------------------------------------------------------------------


def cli(*argv: str) -> Any:
    """Run the CLI in-process; returns (exit code, stderr text)."""
    import contextlib
    import io
    import tempfile

    from captum_ext.benchmark.cli import main

    args = list(argv)
    if "--out" not in args:  # never write into the working directory
        args += ["--out", tempfile.mkdtemp(prefix="captum_ext_cli_")]
    err = io.StringIO()
    code: Any = None

    def run() -> Any:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                return main(args)
            except SystemExit as e:
                return e.code

    code = no_training(run)()
    return code, err.getvalue()


def cli_error(argv: Tuple[str, ...], names: str) -> Check:
    import re

    def check(out: Any) -> None:
        code, err = out
        assert code == 2, f"exit code {code}, stderr {err!r}"
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert "Traceback" not in err, err
        assert re.search(names, lines[-1]), f"{names!r} not in {lines[-1]!r}"
        assert lines[-1].startswith("captum-ext") and "error" in lines[-1], lines[-1]

    return check


def _cli_cases(cmd: str) -> Entry:
    fast = ("--n-images", "1", "--methods", "Saliency", "--no-progress")

    def case(id: str, argv: Tuple[str, ...], names: str, xfail: Optional[str] = None) -> Case:
        full = (cmd,) + argv
        return result(id, lambda: cli(*full), cli_error(full, names), xfail=xfail)

    return {
        "nan": [case("std=nan", ("--std", "nan") + fast, "--std")]
        if cmd == "sanity"
        else "numbers on the command line are ints except --std (sanity)",
        "empty": [case("n-images=0", ("--n-images", "0"), "--n-images")],
        "shapes": "no tensors on the command line",
        "params": [
            case("batch-size=0", ("--batch-size", "0") + fast, "--batch-size"),
            case("device=bogus", ("--device", "bogus") + fast, "--device"),
            case("methods=bogus", ("--methods", "bogus", "--n-images", "1"), "--methods|bogus"),
            case("n-images=-3", ("--n-images", "-3"), "--n-images"),
            case("out=unwritable", ("--out", "/proc/captum_ext_cannot_write") + fast, "--out"),
        ],
        "targets": "targets are the data set's labels",
        "model_state": "loads its own classifier",
    }


API["cli:benchmark"] = _cli_cases("benchmark")
API["cli:sanity"] = _cli_cases("sanity")


def _evaluate_cases() -> Entry:
    """``captum-ext evaluate``: the stamp preset (cached classifier, one image) keeps each case fast."""
    import tempfile

    fast = ("--preset", "stamp", "--max-images", "1", "--methods", "Saliency", "--no-progress")
    missing = "/nonexistent/captum_ext_no_such_folder"

    def case(id: str, argv: Callable[[], Tuple[str, ...]], names: str, xfail: Optional[str] = None) -> Case:
        return result(id, lambda: cli("evaluate", *argv()), cli_error(("evaluate",), names), xfail=xfail)

    return {
        "nan": [
            case("std=nan", lambda: ("--mean", "0,0,0", "--std", "nan,nan,nan") + fast, "--std"),
            case("mean=nan", lambda: ("--mean", "nan,0,0", "--std", "1,1,1") + fast, "--mean"),
            case("std=inf", lambda: ("--mean", "0,0,0", "--std", "inf,1,1") + fast, "--std"),
        ],
        "empty": [
            case(
                "data=empty_folder",
                lambda: ("--data", tempfile.mkdtemp(prefix="captum_ext_empty_"), "--model", "torchvision:resnet18",
                         "--methods", "Saliency", "--no-progress"),
                "--data",
            )
        ],
        "shapes": "no tensors on the command line",
        "params": [
            case("batch-size=0", lambda: ("--batch-size", "0") + fast, "--batch-size"),
            case("max-images=0", lambda: ("--max-images", "0", "--preset", "stamp", "--no-progress"), "--max-images"),
            case("device=bogus", lambda: ("--device", "bogus") + fast, "--device"),
            case("methods=bogus", lambda: fast[:4] + ("--methods", "bogus", "--no-progress"), "--methods|bogus"),
            case("metrics=bogus", lambda: fast + ("--metrics", "bogus"), "--metrics|bogus"),
            case("option=bogus", lambda: fast + ("--option", "Saliency.bogus=1"), "--option|bogus"),
            case("out=unwritable", lambda: ("--out", "/proc/captum_ext_cannot_write") + fast, "--out"),
            case(
                "data=missing",
                lambda: ("--data", missing, "--model", "torchvision:resnet18", "--no-progress"),
                "--data",
            ),
            case("no_data_no_preset", lambda: ("--no-progress",), "--data"),
            case("preset_and_data", lambda: fast + ("--data", missing), "--preset|--data"),
        ],
        "targets": "--target is a choice (label, predicted), checked by argparse",
        "model_state": "loads its own classifier",
    }


API["cli:evaluate"] = _evaluate_cases()


# ------------------------------------------------------------------------------------------
# Who fixes what (for the xfail reasons of tests/public_api_known.py)
# ------------------------------------------------------------------------------------------

OWNERS = (
    ("captum_ext.attr:NeFLAG", "neflag-mp", "attr/neflag.py"),
    ("captum_ext.attr:MeaningfulPerturbation", "neflag-mp", "attr/meaningful_perturbation.py"),
    ("captum_ext.attr:PathwayGradient", "pathway", "attr/pathway_gradient.py"),
    ("captum_ext.attr:PrunedAttribution", "pathway", "attr/pathway_gradient.py"),
    ("captum_ext.attr:CriticalPathway", "pathway", "attr/pathway.py"),
    ("captum_ext.attr:Inpainting", "inpaint", "attr/inpainting.py"),
    ("captum_ext.attr:binary_cosine_similarity", "inpaint", "attr/inpainting.py"),
    ("captum_ext.attr:grid_feature_mask", "inpaint", "attr/feature_masks.py"),
    ("captum_ext.attr:slic_feature_mask", "inpaint", "attr/feature_masks.py"),
    ("captum_ext.attr:IProp", "iprop", "attr/iprop.py"),
    ("captum_ext.attr:propagate", "iprop", "attr/iprop.py"),
    ("captum_ext.propagate:", "iprop", "propagate/"),
    ("captum_ext.inpaint:", "inpaint", "inpaint/"),
    ("captum_ext.metrics:roar", "metrics", "metrics/roar.py"),
    ("captum_ext.metrics:cascading_randomization", "metrics", "metrics/sanity.py"),
    ("captum_ext.metrics:", "metrics", "metrics/"),
    ("captum_ext.data:", "none (data/ has no owner: lead)", "data/"),
    ("cli:", "none (benchmark/cli.py has no owner: lead)", "benchmark/cli.py"),
)


def owner_of(key: str) -> Tuple[str, str]:
    for prefix, branch, path in OWNERS:
        if key.startswith(prefix):
            return branch, path
    return "lead", "?"
