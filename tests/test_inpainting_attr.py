"""Tests of the inpainting versions of Captum's perturbation methods."""

import math

import pytest
import torch
from captum.attr import (
    FeatureAblation,
    KernelShap,
    Lime,
    NoiseTunnel,
    Occlusion,
    ShapleyValueSampling,
)
from captum.metrics import sensitivity_max
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from captum_ext._compat import SkLearnLinearRegression
from captum_ext._utils import num_hooks
from captum_ext.attr import (
    InpaintingFeatureAblation,
    InpaintingKernelShap,
    InpaintingLime,
    InpaintingOcclusion,
    InpaintingShapleyValueSampling,
    binary_cosine_similarity,
    grid_feature_mask,
    slic_feature_mask,
)
from captum_ext.attr.inpainting import SENTINEL
from captum_ext.inpaint import (
    BlurInpainter,
    ConstantInpainter,
    HarmonicInpainter,
    apply_inpainter,
)


def small_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                        nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                        nn.Flatten(), nn.Linear(32, 3))
    return net.eval()


class Recorder(nn.Module):
    """Wraps a model and keeps every batch it is called with."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.seen = []

    def forward(self, x, *args):
        self.seen.append(x.detach().clone())
        return self.net(x)


INPUT = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(1))
MASK = grid_feature_mask(12, 12, cell=4)


def run_pair(kind, net, c, ppe, seed=0):
    """(ours with a constant inpainter, Captum with baselines=c)."""
    const = ConstantInpainter(c)
    lime_kwargs = dict(similarity_func=binary_cosine_similarity(),
                       interpretable_model=SkLearnLinearRegression())
    if kind == "occlusion":
        args = dict(sliding_window_shapes=(3, 4, 4), strides=(3, 2, 2), target=1,
                    perturbations_per_eval=ppe)
        ours = InpaintingOcclusion(net, const).attribute(INPUT, **args)
        theirs = Occlusion(net).attribute(INPUT, baselines=c, **args)
        return ours, theirs
    args = dict(target=1, feature_mask=MASK, perturbations_per_eval=ppe)
    pairs = {
        "feature_ablation": (InpaintingFeatureAblation(net, const), FeatureAblation(net), {}),
        "svs": (InpaintingShapleyValueSampling(net, const), ShapleyValueSampling(net),
                dict(n_samples=3)),
        "lime": (InpaintingLime(net, inpainter=const, **lime_kwargs), Lime(net, **lime_kwargs),
                 dict(n_samples=20)),
        "kernel_shap": (InpaintingKernelShap(net, const), KernelShap(net), dict(n_samples=20)),
    }
    ours_m, theirs_m, extra = pairs[kind]
    inputs = INPUT[:1] if kind in ("lime", "kernel_shap") else INPUT
    torch.manual_seed(seed)
    ours = ours_m.attribute(inputs, baselines=c, **args, **extra)
    torch.manual_seed(seed)
    theirs = theirs_m.attribute(inputs, baselines=c, **args, **extra)
    return ours, theirs


KINDS = ["occlusion", "feature_ablation", "svs", "lime", "kernel_shap"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("ppe", [1, 3])
def test_constant_inpainter_reproduces_captum_bit_for_bit(kind, ppe):
    ours, theirs = run_pair(kind, small_net(), 0.37, ppe)
    assert ours.shape == theirs.shape
    assert torch.equal(ours, theirs)
    assert ours.abs().sum() > 0


_WINDOWS = dict(sliding_window_shapes=(3, 4, 4), strides=(3, 4, 4))


@pytest.mark.parametrize("ours, captums, args", [
    (InpaintingOcclusion, Occlusion, _WINDOWS),  # 9 windows
    (InpaintingFeatureAblation, FeatureAblation, dict(feature_mask=MASK)),  # 9 features
])
@pytest.mark.parametrize("inpainter_args, expected_fill", [
    ({}, BlurInpainter()),  # the default fill of both classes (docs/defaults.md)
    ({"inpainter": "harmonic"}, HarmonicInpainter()),
])
def test_model_sees_the_fill_and_exact_known_pixels(ours, captums, args, inpainter_args, expected_fill):
    rec = Recorder(small_net())
    ours(rec, **inpainter_args).attribute(INPUT, target=0, **args)
    ref = Recorder(small_net())
    captums(ref).attribute(INPUT, baselines=SENTINEL, target=0, **args)
    assert len(rec.seen) == len(ref.seen) == 10  # initial eval + 9 perturbations
    for seen, marked in zip(rec.seen, ref.seen):
        holes = (marked == SENTINEL).any(1, keepdim=True)
        keep = ~holes.expand_as(seen)
        assert torch.equal(seen[keep], INPUT[keep])
        assert not (seen == SENTINEL).any()
        assert torch.equal(seen, apply_inpainter(expected_fill, INPUT, holes))


def test_fill_does_not_depend_on_removed_content():
    other = INPUT.clone()
    other[:, :, 4:8, 4:8] = torch.rand(2, 3, 4, 4) * 10  # only the centre window differs
    seen = []
    for x in (INPUT, other):
        rec = Recorder(small_net())
        InpaintingOcclusion(rec).attribute(x, sliding_window_shapes=(3, 4, 4), strides=(3, 4, 4),
                                           target=0)
        seen.append(rec.seen)
    centre = 1 + 4  # initial eval, then windows row by row; the centre window is the 5th
    assert torch.equal(seen[0][centre], seen[1][centre])
    assert not torch.equal(seen[0][1], seen[1][1])


@pytest.mark.parametrize("kind", ["occlusion", "feature_ablation"])
def test_perturbations_per_eval_and_batch_do_not_change_the_result(kind):
    net = small_net()
    if kind == "occlusion":
        method = InpaintingOcclusion(net)
        args = dict(sliding_window_shapes=(3, 4, 4), strides=(3, 2, 2), target=2)
    else:
        method = InpaintingFeatureAblation(net)
        args = dict(feature_mask=MASK, target=2)
    one = method.attribute(INPUT, perturbations_per_eval=1, **args)
    many = method.attribute(INPUT, perturbations_per_eval=4, **args)
    single = torch.cat([method.attribute(INPUT[i:i + 1], **args) for i in range(2)])
    assert torch.allclose(one, many, atol=1e-6)
    assert torch.allclose(one, single, atol=1e-6)


def test_shapley_efficiency_with_inpainting_and_baseline_fallback():
    net = small_net()
    x = INPUT[:1]
    attr = InpaintingShapleyValueSampling(net).attribute(x, baselines=0.25, target=0,
                                                         feature_mask=MASK, n_samples=2)
    per_feature = torch.stack([attr[0, 0][MASK[0, 0] == k][0] for k in range(9)])
    with torch.no_grad():
        gap = net(x)[0, 0] - net(torch.full_like(x, 0.25))[0, 0]
    assert torch.allclose(per_feature.sum(), gap, atol=1e-5)


def test_channel_dependent_feature_mask_keeps_the_other_channels():
    rec = Recorder(small_net())
    mask = torch.arange(3).view(1, 3, 1, 1).expand(1, 3, 12, 12)  # one feature per channel
    InpaintingFeatureAblation(rec).attribute(INPUT[:1], feature_mask=mask, target=0)
    for ablated, seen in enumerate(rec.seen[1:]):
        for ch in range(3):
            same = torch.equal(seen[0, ch], INPUT[0, ch])
            assert same != (ch == ablated)
        assert torch.equal(seen[0, ablated], torch.zeros(12, 12))  # all-hole: fallback 0


def test_tuple_inputs_with_a_non_image_input():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = small_net()

        def forward(self, image, extra):
            return self.net(image) + extra.sum(1, keepdim=True)

    model = TwoInputs()
    image, extra = INPUT, torch.rand(2, 4)
    ours = InpaintingFeatureAblation(model, ConstantInpainter(0.5)).attribute(
        (image, extra), baselines=(0.5, 0.5), target=0,
        feature_mask=(MASK, torch.arange(4).view(1, 4) + 9))
    theirs = FeatureAblation(model).attribute(
        (image, extra), baselines=(0.5, 0.5), target=0,
        feature_mask=(MASK, torch.arange(4).view(1, 4) + 9))
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))


def test_inside_noise_tunnel_and_sensitivity_max():
    net = small_net()
    args = dict(sliding_window_shapes=(3, 4, 4), strides=(3, 4, 4), target=1)
    # NoiseTunnel hands our attribute a batch of B * nt_samples noisy copies; with a constant
    # inpainter the same noise (same seed) must give Captum's NoiseTunnel(Occlusion) exactly
    ours_const, captum_occ = InpaintingOcclusion(net, ConstantInpainter(0.0)), Occlusion(net)
    nt = dict(nt_type="smoothgrad", nt_samples=3, stdevs=0.05)
    torch.manual_seed(0)
    ours = NoiseTunnel(ours_const).attribute(INPUT, **nt, **args)
    torch.manual_seed(0)
    theirs = NoiseTunnel(captum_occ).attribute(INPUT, baselines=0.0, **nt, **args)
    assert torch.equal(ours, theirs)
    # with the harmonic fill and zero noise, SmoothGrad is the mean of nt_samples identical
    # attributions of the expanded batch: each row's fill must be its own image's
    occ = InpaintingOcclusion(net)
    smooth = NoiseTunnel(occ).attribute(INPUT, nt_type="smoothgrad", nt_samples=3, stdevs=0.0,
                                        **args)
    assert torch.allclose(smooth, occ.attribute(INPUT, **args), atol=1e-6)
    # sensitivity_max calls our attribute on perturbed copies: with the constant inpainter it
    # is Captum's number for Occlusion (same seed, same perturbations)
    torch.manual_seed(0)
    sens = sensitivity_max(ours_const.attribute, INPUT, n_perturb_samples=2, **args)
    torch.manual_seed(0)
    expected = sensitivity_max(captum_occ.attribute, INPUT, n_perturb_samples=2, baselines=0.0,
                               **args)
    assert torch.equal(sens, expected) and (sens > 0).all()


def test_show_progress(capsys):
    InpaintingOcclusion(small_net()).attribute(
        INPUT, sliding_window_shapes=(3, 4, 4), strides=(3, 4, 4), target=0, show_progress=True)
    err = capsys.readouterr().err
    # Captum sizes the bar from its own estimate; what matters is that it counts our 10 evals
    assert "Inpainting Occlusion attribution" in err and "| 10/" in err


def test_attribute_inpainter_override_and_names():
    net = small_net()
    occ = InpaintingOcclusion(net, "constant")
    args = dict(sliding_window_shapes=(3, 4, 4), strides=(3, 4, 4), target=0)
    default = occ.attribute(INPUT, **args)
    assert torch.equal(default, Occlusion(net).attribute(INPUT, baselines=0.0, **args))
    harmonic = occ.attribute(INPUT, inpainter="harmonic", **args)
    assert not torch.equal(default, harmonic)
    assert torch.equal(occ.attribute(INPUT, **args), default)  # override not sticky
    assert occ.model_forward is net


def test_errors():
    net = small_net()
    occ = InpaintingOcclusion(net)
    args = dict(sliding_window_shapes=(3, 4, 4), strides=(3, 4, 4), target=0)
    bad = INPUT.clone()
    bad[0, 0, 0, 0] = SENTINEL
    with pytest.raises(ValueError, match="sentinel"):
        occ.attribute(bad, **args)
    with pytest.raises(ValueError, match="inpainter must return a tensor of shape"):
        occ.attribute(INPUT, inpainter=lambda im, ho: im[:, :2], **args)
    with pytest.raises(ValueError, match="unknown inpainter"):
        InpaintingLime(net, inpainter="nope")
    with pytest.raises(ValueError, match="`baselines` has 2 entries"):
        occ.attribute(INPUT, baselines=(0.0, 0.0), **args)


def test_model_left_unchanged_also_when_it_raises():
    class Flaky(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = small_net()
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls == 3:  # leaves a mess behind, then raises mid-forward
                self.net.eval()
                self.net[0].register_forward_hook(lambda *a: None)
                next(self.parameters()).requires_grad_(False)
                raise RuntimeError("boom")
            return self.net(x)

    model = Flaky().train()
    params = [p.detach().clone() for p in model.parameters()]
    flags = [p.requires_grad for p in model.parameters()]
    occ = InpaintingOcclusion(model)
    with pytest.raises(RuntimeError, match="boom"):
        occ.attribute(INPUT, sliding_window_shapes=(3, 4, 4), strides=(3, 4, 4), target=0)
    assert occ._inpainting_forward.state is None  # wrapper deactivated
    assert model.training and num_hooks(model) == 0
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(torch.equal(a, b) for a, b in zip(params, model.parameters()))
    out = occ.attribute(INPUT, sliding_window_shapes=(3, 4, 4), strides=(3, 4, 4), target=0)
    fresh = InpaintingOcclusion(small_net()).attribute(
        INPUT, sliding_window_shapes=(3, 4, 4), strides=(3, 4, 4), target=0)
    assert torch.equal(out, fresh)  # the same weights, no hook left: the same numbers


def test_feature_masks():
    mask = grid_feature_mask(10, 7, cell=(4, 3))
    rows = torch.tensor([0] * 4 + [1] * 4 + [2] * 2)  # cells of 4 rows, the last one cut to 2
    cols = torch.tensor([0] * 3 + [1] * 3 + [2] * 1)  # cells of 3 columns, the last cut to 1
    assert torch.equal(mask, (rows[:, None] * 3 + cols[None, :]).view(1, 1, 10, 7))
    images = torch.zeros(2, 3, 32, 32)
    images[0, :, :, 16:] = 1.0  # two flat halves: SLIC must not cross the edge
    images[1, 0] = torch.linspace(0, 1, 32)
    seg = slic_feature_mask(images, n_segments=4, compactness=10.0, sigma=0.0)
    assert seg.shape == (2, 1, 32, 32) and seg.dtype == torch.long
    for i in range(2):
        assert torch.equal(torch.unique(seg[i]), torch.arange(int(seg[i].max()) + 1))
    left, right = set(seg[0, 0, :, :16].unique().tolist()), set(seg[0, 0, :, 16:].unique().tolist())
    assert not left & right
    with pytest.raises(ValueError, match="`images` must be 4-D"):
        slic_feature_mask(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="`cell`"):
        grid_feature_mask(8, 8, cell=0)


# --- issue 13: feature masks ------------------------------------------------------------------


@pytest.mark.parametrize("cell", [(4,), (4, 4, 4), "4", 2.5, True])
def test_grid_feature_mask_refuses_a_bad_cell_naming_it(cell):
    with pytest.raises((ValueError, TypeError), match="`cell`"):
        grid_feature_mask(8, 8, cell=cell)


def test_slic_feature_mask_empty_batch_and_nan():
    empty = slic_feature_mask(torch.zeros(0, 3, 16, 12))
    assert empty.shape == (0, 1, 16, 12) and empty.dtype == torch.long
    bad = torch.rand(1, 3, 16, 16)
    bad[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="`images` contains NaN"):
        slic_feature_mask(bad)
    with pytest.raises(ValueError, match="`compactness`"):
        slic_feature_mask(torch.rand(1, 3, 16, 16), compactness=float("inf"))


# --- issue 16: Captum's numbers exactly with a constant inpainter equal to the baselines -----


class SeenByModel:
    """A linear model on any dtype that keeps every tensor it is called with."""

    def __init__(self, future: bool = False):
        torch.manual_seed(3)
        self.linear = nn.Linear(16, 2)
        self.seen = []
        self.future = future

    def __call__(self, x):
        self.seen.append(x.clone())
        out = self.linear(x.to(torch.float64).float().flatten(1))
        if not self.future:
            return out
        fut = torch.futures.Future()
        fut.set_result(out)
        return fut


CAPTUM = {"occlusion": Occlusion, "feature_ablation": FeatureAblation,
          "svs": ShapleyValueSampling, "lime": Lime, "kernel_shap": KernelShap}
OURS = {"occlusion": InpaintingOcclusion, "feature_ablation": InpaintingFeatureAblation,
        "svs": InpaintingShapleyValueSampling, "lime": InpaintingLime,
        "kernel_shap": InpaintingKernelShap}
SMALL_MASK = torch.arange(16).view(1, 1, 4, 4) // 4


def small_kwargs(kind):
    if kind == "occlusion":
        return dict(sliding_window_shapes=(1, 2, 2), perturbations_per_eval=2)
    extra = {"svs": dict(n_samples=2, perturbations_per_eval=2),
             "lime": dict(n_samples=6, perturbations_per_eval=4),
             "kernel_shap": dict(n_samples=6), "feature_ablation": dict(perturbations_per_eval=3)}
    return dict(feature_mask=SMALL_MASK, **extra[kind])


def captum_pair(kind, x, baselines, future=False):
    """(ours with ConstantInpainter(baselines), Captum with baselines), and what each model saw."""
    theirs_model, ours_model = SeenByModel(future), SeenByModel(future)
    extra = {"similarity_func": binary_cosine_similarity()} if kind == "lime" else {}
    method = "attribute_future" if future else "attribute"
    torch.manual_seed(1)
    theirs = getattr(CAPTUM[kind](theirs_model, **extra), method)(
        x, baselines=baselines, target=0, **small_kwargs(kind))
    torch.manual_seed(1)
    ours = getattr(OURS[kind](ours_model, inpainter=ConstantInpainter(baselines), **extra), method)(
        x, baselines=baselines, target=0, **small_kwargs(kind))
    if future:
        theirs, ours = theirs.wait(), ours.wait()
    return ours, theirs, ours_model.seen, theirs_model.seen


def assert_same_as_captum(ours, theirs, seen_ours, seen_theirs):
    assert ours.dtype == theirs.dtype and torch.equal(ours, theirs)
    assert len(seen_ours) == len(seen_theirs)
    for a, b in zip(seen_ours, seen_theirs):  # the model sees exactly Captum's tensors
        assert a.dtype == b.dtype and torch.equal(a, b)


DTYPES = [torch.int64, torch.uint8, torch.bool, torch.float32]


def int_images(dtype):
    return (torch.arange(32).view(2, 1, 4, 4) * 7 % 5 + 1).to(dtype)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("baselines", [0, 2, 0.37], ids=["int0", "int2", "float"])
def test_integer_and_boolean_inputs_match_captum(kind, dtype, baselines):
    # used to raise (the sentinel cannot be stored) or, for ShapleyValueSampling, return
    # silently wrong numbers (the sentinel was cast into the tensor and never replaced)
    assert_same_as_captum(*captum_pair(kind, int_images(dtype), baselines))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_per_example_baselines_match_captum(kind, dtype):
    # Lime and KernelShap attribute one example at a time: a (B, ...) baseline used to be
    # applied to the wrong rows (a RuntimeError, or silently wrong when the perturbed batch
    # was a multiple of B)
    x = int_images(dtype)
    if kind == "svs":
        pytest.skip("Captum's ShapleyValueSampling itself fails on (B, 1, 1, 1) baselines; "
                    "full-shape baselines are covered by the float case below")
    per_example = torch.tensor([3, 1]).view(2, 1, 1, 1).to(torch.int64 if dtype == torch.bool else dtype)
    assert_same_as_captum(*captum_pair(kind, x, per_example))


@pytest.mark.parametrize("kind", KINDS)
def test_full_shape_per_example_float_baselines_match_captum(kind):
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(5))
    base = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(6))
    assert_same_as_captum(*captum_pair(kind, x, base))


@pytest.mark.parametrize("kind", ["feature_ablation", "svs"])
@pytest.mark.parametrize("dtype", [torch.int64, torch.float32], ids=str)
def test_attribute_future_inpaints_and_matches_captum(kind, dtype):
    # used to be inherited unchanged: Captum's result with the plain baseline, no inpainting
    x = int_images(dtype)
    base = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(7)) * 3
    baselines = 2 if dtype == torch.int64 else base
    assert_same_as_captum(*captum_pair(kind, x, baselines, future=True))
    # with a real inpainter the future result equals attribute's, not Captum's plain baseline
    xf = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(8))
    method_future = OURS[kind](SeenByModel(future=True), inpainter="harmonic")
    method_now = OURS[kind](SeenByModel(), inpainter="harmonic")
    torch.manual_seed(2)
    fut = method_future.attribute_future(xf, target=0, **small_kwargs(kind)).wait()
    torch.manual_seed(2)
    now = method_now.attribute(xf, target=0, **small_kwargs(kind))
    torch.manual_seed(2)
    plain = CAPTUM[kind](SeenByModel(future=True)).attribute_future(
        xf, target=0, **small_kwargs(kind)).wait()
    assert torch.equal(fut, now) and not torch.equal(fut, plain)


@pytest.mark.parametrize("kind", ["occlusion", "lime", "kernel_shap"])
def test_attribute_future_not_in_captum_raises_a_clear_error(kind):
    method = OURS[kind](SeenByModel(future=True))
    with pytest.raises(NotImplementedError, match=f"attribute_future is not implemented for {OURS[kind].__name__}"):
        method.attribute_future(int_images(torch.float32), target=0, **small_kwargs(kind))


def test_per_example_baselines_are_the_all_hole_fallback_of_each_example():
    rec = SeenByModel()
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(9))
    base = torch.tensor([5.0, -5.0]).view(2, 1, 1, 1)
    InpaintingKernelShap(rec, inpainter="harmonic").attribute(
        x, baselines=base, target=0, feature_mask=SMALL_MASK, n_samples=6)
    rows = torch.cat(rec.seen[1:])  # after Captum's whole-batch check, example 0 then 1
    empty = [r for r in rows if bool((r == 5.0).all()) or bool((r == -5.0).all())]
    first_half = rows[: len(rows) // 2]
    assert empty and all(not bool((r == -5.0).all()) for r in first_half)
    assert any(bool((r == 5.0).all()) for r in first_half)


def test_nan_inputs_and_baselines_are_refused_naming_the_argument():
    occ = InpaintingOcclusion(small_net())
    bad = INPUT.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="`inputs` contains NaN"):
        occ.attribute(bad, sliding_window_shapes=(3, 4, 4), target=0)
    with pytest.raises(ValueError, match=r"`inputs\[1\]` contains NaN"):
        InpaintingFeatureAblation(lambda a, b: a.sum((1, 2, 3)) + b.sum(1)).attribute(
            (INPUT, torch.tensor([[float("inf")], [0.0]])))
    with pytest.raises(ValueError, match="`baselines`"):
        occ.attribute(INPUT, sliding_window_shapes=(3, 4, 4), target=0, baselines=float("nan"))
    with pytest.raises(ValueError, match="`inpainter`"):
        InpaintingLime(small_net(), inpainter=float("inf"))


# --- issue 15.2: the paper's settings as presets ----------------------------------------------


def test_paper_presets_hold_the_settings_of_the_authors_code():
    from captum_ext.attr.inpainting import PAPER_PRESETS

    assert dict(PAPER_PRESETS["lime"]) == {
        "n_samples": 500, "n_segments": 50, "compactness": 30.0, "sigma": 3.0,
        "kernel_width": 0.25, "ridge_alpha": 1.0, "softmax": True}
    assert dict(PAPER_PRESETS["occlusion"]) == {
        "window": 29, "stride": 3, "softmax": True, "image_size": 224}


def test_lime_paper_preset_ridge_kernel_softmax_samples_and_superpixels():
    from captum._utils.models.linear_model import SkLearnRidge

    net = small_net()
    lime = InpaintingLime(net, inpainter=0.0, preset="paper")
    model = lime.interpretable_model
    assert isinstance(model, SkLearnRidge) and model.construct_kwargs == {"alpha": 1.0}
    half = torch.tensor([[1.0, 1.0, 0.0, 0.0]])  # cosine distance 1 - 1/sqrt(2) to all ones
    d = 1 - 2 ** -0.5
    assert torch.allclose(lime.similarity_func(None, None, half),
                          torch.tensor(math.exp(-d**2 / 0.25**2) ** 0.5))
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(lime.forward_func(x), torch.softmax(net(x), dim=1))
    assert float(InpaintingLime(net).forward_func(x).sum()) != pytest.approx(1.0)  # logits

    rec = Recorder(net)
    torch.manual_seed(0)
    preset = InpaintingLime(rec, inpainter=0.0, preset="paper").attribute(
        x, target=1, perturbations_per_eval=100)
    assert sum(len(seen) for seen in rec.seen) == 500  # 500 samples
    torch.manual_seed(0)
    explicit = Lime(lambda t: torch.softmax(net(t), dim=1), interpretable_model=SkLearnRidge(alpha=1.0),
                    similarity_func=binary_cosine_similarity(0.25)).attribute(
        x, target=1, baselines=0.0, n_samples=500, perturbations_per_eval=100,
        feature_mask=slic_feature_mask(x, n_segments=50, compactness=30.0, sigma=3.0))
    assert torch.equal(preset, explicit)
    with pytest.raises(ValueError, match="`preset`"):
        InpaintingLime(net, preset="fig3")


def test_occlusion_paper_preset_window_stride_and_softmax():
    marker = 7.0
    rec = Recorder(small_net())
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    occ = InpaintingOcclusion(rec, inpainter=marker, preset="paper")
    with pytest.warns(UserWarning, match="224 x 224"):
        attr = occ.attribute(x, target=0, perturbations_per_eval=200)
    rows = torch.cat(rec.seen[1:])
    assert rows.shape[0] == 13 * 13  # Captum's count per side: ceil((64 - 29) / 3) + 1
    holes = (rows == marker).all(dim=1)
    for i, j in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        row = i + 13 * j  # Captum shifts the first spatial dimension fastest
        expected = torch.zeros(64, 64, dtype=torch.bool)
        expected[3 * i:3 * i + 29, 3 * j:3 * j + 29] = True
        assert torch.equal(holes[row], expected)
    with torch.no_grad():
        p = torch.softmax(small_net()(x), dim=1)[0, 0]
        first = torch.softmax(small_net()(rows[:1]), dim=1)[0, 0]
    assert attr[0, 0, 0, 0] == pytest.approx(float(p - first), abs=1e-6)  # only window 0 covers it

    class Stop(Exception):
        pass

    def stop(_):
        raise Stop

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at the paper's own size
        with pytest.raises(Stop):
            InpaintingOcclusion(stop, preset="paper").attribute(torch.rand(1, 3, 224, 224), target=0)
    with pytest.raises(TypeError, match="sliding_window_shapes"):
        InpaintingOcclusion(small_net()).attribute(x, target=0)


# --- issue 13: empty batch, targets, parameters ------------------------------------------------


def never_called(*_):
    raise AssertionError("the model must not run on an empty batch")


@pytest.mark.parametrize("kind", KINDS)
def test_empty_batch_returns_an_empty_result_without_running_the_model(kind):
    x = torch.zeros(0, 1, 4, 4)
    out = OURS[kind](never_called).attribute(x, target=0, **small_kwargs(kind))
    assert out.shape == (0, 1, 4, 4)
    ints = OURS[kind](never_called).attribute(x.long(), target=0, **small_kwargs(kind))
    assert ints.shape == (0, 1, 4, 4) and ints.is_floating_point()


@pytest.mark.parametrize("kind", KINDS)
def test_bad_target_and_batching_arguments_name_the_argument(kind):
    x = int_images(torch.float32)
    method = OURS[kind](SeenByModel())
    kwargs = small_kwargs(kind)
    with pytest.raises(ValueError, match="`target` has 3 entries"):
        method.attribute(x, target=[0, 1, 0], **kwargs)
    with pytest.raises(ValueError, match="`perturbations_per_eval`"):
        method.attribute(x, target=0, **{**kwargs, "perturbations_per_eval": 0})
    if "n_samples" in kwargs:
        with pytest.raises(ValueError, match="`n_samples`"):
            method.attribute(x, target=0, **{**kwargs, "n_samples": 0})


@pytest.mark.parametrize("kind", ["feature_ablation", "lime", "kernel_shap"])
def test_tuple_int_inputs_per_example_baselines_targets_and_args_match_captum(kind):
    torch.manual_seed(0)
    linear = nn.Linear(20, 2)

    def model(image, extra, scale):
        return linear(torch.cat([image.float().flatten(1), extra.float()], 1)) * scale

    x, extra = torch.randint(0, 9, (3, 1, 4, 4)), torch.rand(3, 4)
    mask = (torch.arange(16).view(1, 1, 4, 4) // 4, torch.arange(4).view(1, 4) + 4)
    base = (torch.randint(0, 3, (3, 1, 4, 4)), torch.rand(3, 4))
    kwargs = dict(baselines=base, target=[0, 1, 0], feature_mask=mask,
                  additional_forward_args=(2.0,), perturbations_per_eval=2)
    if kind != "feature_ablation":
        kwargs["n_samples"] = 10
    extra_init = {"similarity_func": binary_cosine_similarity()} if kind == "lime" else {}
    torch.manual_seed(3)
    theirs = CAPTUM[kind](model, **extra_init).attribute((x, extra), **kwargs)
    torch.manual_seed(3)
    ours = OURS[kind](model, inpainter=ConstantInpainter(base[0].float()), **extra_init).attribute(
        (x, extra), **kwargs)
    assert all(a.dtype == b.dtype and torch.equal(a, b) for a, b in zip(ours, theirs))


def test_per_example_fallback_batched_equals_one_at_a_time():
    net = small_net()
    x = INPUT
    base = torch.stack([torch.full((3, 12, 12), 0.8), torch.full((3, 12, 12), -0.3)])
    fa = InpaintingFeatureAblation(net)
    batched = fa.attribute(x, baselines=base, target=0, feature_mask=MASK,
                           perturbations_per_eval=4)
    single = torch.cat([fa.attribute(x[i:i + 1], baselines=base[i:i + 1], target=0,
                                     feature_mask=MASK) for i in range(2)])
    assert torch.allclose(batched, single, atol=1e-6)
    whole = fa.attribute(x, baselines=base, target=0, feature_mask=torch.zeros_like(MASK))
    with torch.no_grad():
        gap = net(x)[:, 0] - net(base)[:, 0]  # all-hole image: each example's own baseline
    assert torch.allclose(whole[:, 0, 0, 0], gap, atol=1e-6)


@settings(max_examples=6, deadline=None)
@given(batch=st.integers(2, 3), data=st.data(), kind=st.sampled_from(["occlusion", "feature_ablation"]))
def test_batched_equals_one_at_a_time_with_the_harmonic_fill(batch, data, kind):
    targets = data.draw(st.lists(st.integers(0, 2), min_size=batch, max_size=batch))
    x = torch.rand(batch, 3, 12, 12, generator=torch.Generator().manual_seed(batch))  # distinct rows
    net = small_net()
    method = OURS[kind](net)
    args = (dict(sliding_window_shapes=(3, 4, 4), strides=(3, 4, 4)) if kind == "occlusion"
            else dict(feature_mask=MASK))
    batched = method.attribute(x, target=targets, perturbations_per_eval=3, **args)
    single = torch.cat([method.attribute(x[i:i + 1], target=targets[i], **args)
                        for i in range(batch)])
    assert torch.allclose(batched, single, atol=1e-6)


@pytest.mark.parametrize("kind", ["svs", "kernel_shap"])
def test_biharmonic_fill_survives_the_empty_coalition(kind):
    # the empty coalition is an all-hole image: scikit-image's biharmonic solver used to crash
    pytest.importorskip("skimage")
    from captum_ext.inpaint import BiharmonicInpainter, apply_inpainter

    rec = SeenByModel()
    x = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    kwargs = small_kwargs(kind)
    torch.manual_seed(0)
    attr = OURS[kind](rec, inpainter="biharmonic").attribute(x, baselines=0.25, target=0, **kwargs)
    assert any(bool((seen == 0.25).all()) for seen in rec.seen)  # the empty coalition's fallback
    # oracle: Captum's method with a marker baseline and a model that fills the marked pixels
    # itself (biharmonic, each example's baseline as the all-hole fallback), same samples
    marker = 100.0  # x lies in [0, 1)
    model = SeenByModel()

    def fill_then_model(z):
        holes = (z == marker).all(1, keepdim=True)
        return model(apply_inpainter(BiharmonicInpainter(), z, holes, fallback=0.25))

    torch.manual_seed(0)
    expected = CAPTUM[kind](fill_then_model).attribute(x, baselines=marker, target=0, **kwargs)
    assert torch.allclose(attr, expected, atol=1e-5)
