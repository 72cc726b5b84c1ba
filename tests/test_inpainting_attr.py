"""Tests of the inpainting versions of Captum's perturbation methods."""

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
from captum.metrics import infidelity, sensitivity_max
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
from captum_ext.inpaint import ConstantInpainter, HarmonicInpainter


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


def test_model_sees_harmonic_fill_and_exact_known_pixels():
    rec = Recorder(small_net())
    InpaintingOcclusion(rec).attribute(INPUT, sliding_window_shapes=(3, 4, 4), strides=(3, 4, 4),
                                       target=0)
    ref = Recorder(small_net())
    Occlusion(ref).attribute(INPUT, sliding_window_shapes=(3, 4, 4), strides=(3, 4, 4),
                             baselines=SENTINEL, target=0)
    assert len(rec.seen) == len(ref.seen) == 10  # initial eval + 9 windows
    harmonic = HarmonicInpainter()
    for seen, marked in zip(rec.seen, ref.seen):
        holes = (marked == SENTINEL).any(1, keepdim=True)
        keep = ~holes.expand_as(seen)
        assert torch.equal(seen[keep], INPUT[keep])
        assert not (seen == SENTINEL).any()
        assert torch.equal(seen, harmonic(INPUT, holes))


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


def test_inside_noise_tunnel_infidelity_and_sensitivity():
    net = small_net()
    occ = InpaintingOcclusion(net)
    args = dict(sliding_window_shapes=(3, 4, 4), strides=(3, 4, 4), target=1)
    torch.manual_seed(0)
    smooth = NoiseTunnel(occ).attribute(INPUT, nt_type="smoothgrad", nt_samples=2, stdevs=0.01,
                                        **args)
    assert smooth.shape == INPUT.shape and torch.isfinite(smooth).all()
    attr = occ.attribute(INPUT, **args)

    def perturb(inputs):
        noise = torch.randn_like(inputs) * 0.01
        return noise, inputs - noise

    infid = infidelity(net, perturb, INPUT, attr, target=1, n_perturb_samples=3)
    assert infid.shape == (2,) and torch.isfinite(infid).all()
    sens = sensitivity_max(occ.attribute, INPUT, n_perturb_samples=2, **args)
    assert sens.shape == (2,) and torch.isfinite(sens).all()


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
            if self.calls == 3:
                raise RuntimeError("boom")
            return self.net(x)

    model = Flaky().train()
    params = [p.detach().clone() for p in model.parameters()]
    flags = [p.requires_grad for p in model.parameters()]
    occ = InpaintingOcclusion(model)
    with pytest.raises(RuntimeError, match="boom"):
        occ.attribute(INPUT, sliding_window_shapes=(3, 4, 4), strides=(3, 4, 4), target=0)
    assert occ._inpainting_forward.fallbacks is None  # wrapper deactivated
    assert model.training and num_hooks(model) == 0
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(torch.equal(a, b) for a, b in zip(params, model.parameters()))
    out = occ.attribute(INPUT, sliding_window_shapes=(3, 4, 4), strides=(3, 4, 4), target=0)
    assert torch.isfinite(out).all()


def test_feature_masks():
    mask = grid_feature_mask(10, 7, cell=(4, 3))
    assert mask.shape == (1, 1, 10, 7) and int(mask.max()) == 3 * 3 - 1
    assert torch.equal(torch.unique(mask), torch.arange(9))
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
