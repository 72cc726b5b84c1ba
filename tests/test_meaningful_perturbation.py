"""Tests of MeaningfulPerturbation (blur and inpainting fills)."""

import pytest
import torch
from torch import nn

from captum_ext._utils import num_hooks
from captum_ext.attr import MeaningfulPerturbation
from captum_ext.attr.meaningful_perturbation import (
    PRESETS,
    MeaningfulPerturbationDiagnostics,
    _blur,
    binarize,
    paper_initial_mask,
    total_variation,
)
from captum_ext.inpaint import ConstantInpainter


class RegionNet(nn.Module):
    """Class 0's logit grows with the brightness of a fixed square; class 1 is constant."""

    def __init__(self, size: int = 32):
        super().__init__()
        weight = torch.zeros(1, 3, size, size)
        weight[..., 8:16, 16:24] = 1.0
        self.register_buffer("weight", weight / weight.sum() * 20)
        self.seen = []

    def forward(self, x, bias=0.0):
        self.seen.append(x.detach().clone())
        score = (x * self.weight).flatten(1).sum(1)
        return torch.stack([score - 18 + bias, torch.zeros_like(score)], dim=1)


def images(batch: int = 2, size: int = 32) -> torch.Tensor:
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)) * 0.2
    x[..., 8:16, 16:24] = 1.0  # the evidence
    return x


@pytest.mark.parametrize("fill", ["blur", "harmonic"])
def test_saliency_finds_the_evidence(fill):
    net = RegionNet()
    sal = MeaningfulPerturbation(net, inpainter=fill).attribute(images(), target=0, n_iter=60,
                                                           jitter=0, l1_coeff=0.02,
                                                           mask_shape=(8, 8))
    inside = sal[..., 8:16, 16:24].mean()
    outside = sal.sum() - sal[..., 8:16, 16:24].sum()
    outside = outside / (sal.numel() - sal[..., 8:16, 16:24].numel())
    assert sal.shape == images().shape
    # the binarised (inpainting) variant keeps removed cells just below tau, so its
    # continuous saliency is lower; the ranking is what must hold
    assert inside > 0.1 and outside < 0.2 * inside


@pytest.mark.parametrize("fill", ["blur", "harmonic"])
def test_batched_equals_one_by_one_and_seeded(fill):
    net = RegionNet()
    mp = MeaningfulPerturbation(net, inpainter=fill)
    args = dict(target=0, n_iter=8, seed=3)
    x = images(3)
    batched = mp.attribute(x, **args)
    single = torch.cat([mp.attribute(x[i:i + 1], **args) for i in range(3)])
    chunked = mp.attribute(x, internal_batch_size=2, **args)
    assert torch.allclose(batched, single, atol=1e-5)
    assert torch.allclose(batched, chunked, atol=1e-5)
    assert torch.equal(batched, mp.attribute(x, **args))


def test_inpainting_variant_shows_only_binarised_composites():
    net = RegionNet()
    x = images(1)
    MeaningfulPerturbation(net, inpainter=ConstantInpainter(-3.0)).attribute(
        x, target=0, n_iter=10, jitter=0)
    assert len(net.seen) == 10
    removed_any = False
    for seen in net.seen:
        is_x = seen == x
        is_fill = seen == -3.0
        assert bool((is_x | is_fill).all())  # straight-through: no blended pixels
        removed_any |= bool(is_fill.any())
    assert removed_any


def test_one_step_matches_the_objective():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = torch.rand(2, 3, 16, 16)
    l1, tv, lr = 0.05, 0.3, 0.1
    opts = dict(target=1, n_iter=1, lr=lr, l1_coeff=l1, tv_coeff=tv, jitter=0, blur_sigma=2.0,
                mask_shape=(4, 4), return_diagnostics=True)
    m = torch.full((2, 1, 4, 4), 0.7, requires_grad=True)  # check the objective off the corner
    big = m.repeat_interleave(4, 2).repeat_interleave(4, 3)
    phi = x * big + _blur(x, 2.0) * (1 - big)
    loss = (l1 * (1 - m).abs().sum() + tv * total_variation(m, 3.0).sum()
            + torch.softmax(net(phi), 1)[:, 1].sum())
    (grad,) = torch.autograd.grad(loss, m)
    init = torch.full((2, 1, 4, 4), 0.7)
    _, diag = MeaningfulPerturbation(net).attribute(x, mask_init=init, **opts)
    # Adam's first step is lr * sign(grad)
    assert torch.allclose(diag.mask, (init - lr * grad.sign()).clamp(0, 1), atol=1e-5)
    torch.testing.assert_close(diag.initial_mask, init)
    torch.testing.assert_close(diag.loss, torch.stack([
        l1 * (1 - m[i]).abs().sum() + tv * total_variation(m[i:i + 1], 3.0)[0]
        + torch.softmax(net(phi[i:i + 1]), 1)[0, 1] for i in range(2)]).detach())
    # from the all-ones start, Adam's first step is lr * sign(grad) then clamped to [0, 1]
    start = torch.ones(2, 1, 4, 4, requires_grad=True)
    big = start.repeat_interleave(4, 2).repeat_interleave(4, 3)
    phi = x * big + _blur(x, 2.0) * (1 - big)
    loss = torch.softmax(net(phi), 1)[:, 1].sum() + tv * total_variation(start, 3.0).sum()
    (grad,) = torch.autograd.grad(loss, start)
    _, diag = MeaningfulPerturbation(net).attribute(x, **opts)
    assert torch.allclose(diag.mask, (1 - lr * grad.sign()).clamp(0, 1), atol=1e-3)  # Adam eps


def test_helpers():
    m = torch.tensor([[[[0.0, 0.5], [1.0, 0.5]]]])
    assert torch.allclose(total_variation(m, 2.0), torch.tensor([1.0 + 0.0 + 0.25 + 0.25]))
    assert torch.equal(binarize(torch.full((1, 1, 2, 2), 0.3)), torch.zeros(1, 1, 2, 2))
    assert torch.equal(binarize(torch.tensor([[[[0.0, 0.8], [0.79, 0.81]]]])),
                       torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]]))


def test_zero_iterations_and_additional_args():
    net = RegionNet()
    x = images(2)
    sal = MeaningfulPerturbation(net).attribute(x, target=0, n_iter=0)
    assert torch.equal(sal, torch.zeros_like(x))
    kw = dict(n_iter=3, seed=1)
    sal = MeaningfulPerturbation(net, "harmonic").attribute(
        x, target=torch.tensor([0, 0]), additional_forward_args=(5.0,), **kw)
    # the argument reaches the model: the same as a model with the bias built in, and not
    # the same as without it (the bias moves the softmax, hence the gradient)
    built_in = MeaningfulPerturbation(lambda t: net(t, 5.0), "harmonic").attribute(x, target=0, **kw)
    assert torch.equal(sal, built_in)
    assert not torch.equal(sal, MeaningfulPerturbation(net, "harmonic").attribute(x, target=0, **kw))


def test_model_state_untouched_also_when_it_raises():
    class Flaky(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("boom")
            return self.conv(x).mean((2, 3))

    model = Flaky().train()
    mp = MeaningfulPerturbation(model, "harmonic")
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(RuntimeError, match="boom"):
        mp.attribute(x, target=0, n_iter=5)
    # the same object works again, exactly as a fresh one on the same weights
    again = mp.attribute(x, target=0, n_iter=2, seed=0)
    fresh = MeaningfulPerturbation(lambda t: model.conv(t).mean((2, 3)), "harmonic").attribute(
        x, target=0, n_iter=2, seed=0)
    assert torch.equal(again, fresh) and not torch.equal(again, torch.zeros_like(x))
    assert model.training and num_hooks(model) == 0
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_errors():
    mp = MeaningfulPerturbation(RegionNet())
    x = images(1)
    with pytest.raises(TypeError, match="`inputs` must be a single image tensor"):
        mp.attribute((x,), target=0)
    with pytest.raises(ValueError, match="`upsample`"):
        mp.attribute(x, target=0, upsample="cubic")
    with pytest.raises(ValueError, match=r"`mask_shape\[0\]`"):
        mp.attribute(x, target=0, mask_shape=(0, 4))
    with pytest.raises(ValueError, match="`lr`"):
        mp.attribute(x, target=0, lr=-1.0)
    with pytest.raises(TypeError, match="`n_iter`"):
        mp.attribute(x, target=0, n_iter=2.5)
    with pytest.raises(ValueError, match="`st_proxy`"):
        mp.attribute(x, target=0, st_proxy="zero")
    with pytest.raises(ValueError, match="unknown inpainter"):
        MeaningfulPerturbation(RegionNet(), inpainter="gray")


# --- issue 13: bad input is refused, never silently used ---------------------------------


@pytest.mark.parametrize("target", [[0, 0, 0], torch.tensor([0, 1, 0]), [0]])
def test_target_with_wrong_length_raises(target):
    # regression: a target longer than the batch used to be truncated silently
    with pytest.raises(ValueError, match="`target` has"):
        MeaningfulPerturbation(RegionNet()).attribute(images(2), target=target, n_iter=1)


def test_target_none_is_refused_with_softmax():
    # regression: target=None returned an all-zero map (the softmax sums to 1)
    net = RegionNet()
    with pytest.raises(ValueError, match="`target` is required"):
        MeaningfulPerturbation(net).attribute(images(2), n_iter=2)
    with pytest.raises(ValueError, match="`target` is required"):
        MeaningfulPerturbation(net).attribute(images(2), n_iter=2, use_softmax=False)
    assert len(net.seen) == 1  # the second call raised at its first forward pass


def test_target_none_with_one_output_per_image():
    net = RegionNet()

    def score(x):
        return net(x)[:, :1]

    kw = dict(n_iter=4, use_softmax=False, jitter=0, l1_coeff=0.02, mask_shape=(8, 8))
    none = MeaningfulPerturbation(score).attribute(images(2), **kw)
    zero = MeaningfulPerturbation(score).attribute(images(2), target=0, **kw)
    assert torch.equal(none, zero) and none.abs().sum() > 0


@pytest.mark.parametrize("fill", ["blur", "harmonic"])
def test_internal_batch_size_selects_additional_args_per_chunk(fill):
    # regression: every chunk got the whole batch's additional_forward_args (here a per-image
    # bias of shape (B,) that silently broadcast against a chunk of one image)
    net = RegionNet()
    mp = MeaningfulPerturbation(net, inpainter=fill)
    x = images(3)
    bias = torch.tensor([0.0, 30.0, -30.0])
    kw = dict(target=0, n_iter=4, seed=1)
    single = torch.cat([mp.attribute(x[i:i + 1], additional_forward_args=(bias[i:i + 1],), **kw)
                        for i in range(3)])
    for ibs in (1, 2):
        chunked = mp.attribute(x, additional_forward_args=(bias,), internal_batch_size=ibs, **kw)
        torch.testing.assert_close(chunked, single)
    with pytest.raises(ValueError, match="first dimension 2"):
        mp.attribute(x, additional_forward_args=(bias[:2],), **kw)


def test_empty_batch_returns_an_empty_map_and_runs_no_model():
    net = RegionNet()
    x = images(1)[:0]
    sal, diag = MeaningfulPerturbation(net, "harmonic").attribute(
        x, target=0, n_iter=3, return_diagnostics=True)
    assert sal.shape == (0, 3, 32, 32) and diag.mask.shape == (0, 1, 4, 4) and not net.seen
    assert MeaningfulPerturbation(net).attribute(x, target=[], n_iter=3).shape == (0, 3, 32, 32)


def test_nan_inputs_and_parameters_are_refused():
    mp = MeaningfulPerturbation(RegionNet())
    x = images(2)
    x[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="`inputs` contains NaN"):
        mp.attribute(x, target=0, n_iter=1)
    for name in ("lr", "tv_beta", "blur_sigma", "l1_coeff", "tv_coeff"):
        for bad in (float("nan"), float("inf")):
            with pytest.raises(ValueError, match=f"`{name}`"):
                mp.attribute(images(1), target=0, n_iter=1, **{name: bad})
    with pytest.raises(ValueError, match="`mask_init`"):
        mp.attribute(images(1), target=0, mask_init=torch.full((4, 4), 2.0))
    with pytest.raises(ValueError, match="`preset`"):
        mp.attribute(images(1), target=0, preset="fong")


class Meddling(nn.Module):
    """Switches itself to eval, adds a hook and freezes its weight, then raises."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)

    def forward(self, x):
        self.eval()
        self.conv.register_forward_hook(lambda *a: None)
        self.conv.weight.requires_grad_(False)
        raise RuntimeError("boom")


def test_model_state_restored_when_forward_changes_it_and_raises():
    net = Meddling().train()
    with pytest.raises(RuntimeError, match="boom"):
        MeaningfulPerturbation(net).attribute(torch.rand(1, 3, 16, 16), target=0, n_iter=2)
    assert net.training and net.conv.training and num_hooks(net) == 0
    assert net.conv.weight.requires_grad


# --- issue 14: one fill argument, one diagnostics pattern ---------------------------------


def test_inpainter_accepts_a_name_a_number_an_inpainter_and_a_callable():
    net = RegionNet()
    x = images(2)
    kw = dict(target=0, n_iter=3, seed=2)
    by_object = MeaningfulPerturbation(net, inpainter=ConstantInpainter(0.25)).attribute(x, **kw)
    by_number = MeaningfulPerturbation(net, inpainter=0.25).attribute(x, **kw)
    by_callable = MeaningfulPerturbation(
        net, inpainter=lambda im, holes: torch.full_like(im, 0.25)).attribute(x, **kw)
    assert torch.equal(by_object, by_number) and torch.equal(by_object, by_callable)
    by_name = MeaningfulPerturbation(net, inpainter="harmonic").attribute(x, **kw)
    assert not torch.equal(by_name, by_object)
    with pytest.raises(TypeError, match="`inpainter`"):
        MeaningfulPerturbation(net, inpainter=None)


def test_fill_is_a_deprecated_alias_of_inpainter():
    net = RegionNet()
    x = images(1)
    with pytest.warns(DeprecationWarning, match="`fill` is deprecated"):
        old = MeaningfulPerturbation(net, fill="harmonic")
    new = MeaningfulPerturbation(net, inpainter="harmonic")
    kw = dict(target=0, n_iter=3)
    assert torch.equal(old.attribute(x, **kw), new.attribute(x, **kw))
    with pytest.raises(TypeError, match="pass `inpainter` only"):
        MeaningfulPerturbation(net, inpainter="harmonic", fill="blur")
    with pytest.raises(TypeError, match="unexpected keyword"):
        MeaningfulPerturbation(net, filler="blur")


def test_return_diagnostics_and_the_deprecated_return_mask():
    import dataclasses
    import typing

    net = RegionNet()
    x = images(2)
    kw = dict(target=0, n_iter=3, mask_shape=(4, 4))
    sal, diag = MeaningfulPerturbation(net).attribute(x, return_diagnostics=True, **kw)
    assert isinstance(diag, MeaningfulPerturbationDiagnostics)
    with pytest.raises(dataclasses.FrozenInstanceError):
        diag.mask = None
    # the saliency is 1 - the upsampled mask (nearest: each cell covers 8 x 8 pixels)
    expected = 1 - diag.mask.repeat_interleave(8, 2).repeat_interleave(8, 3)
    assert torch.equal(sal, expected.expand_as(x))
    # the score is the target's softmax probability on the last image the model saw
    last = net.seen[-1]
    logits = (last * net.weight).flatten(1).sum(1) - 18
    expected_score = torch.softmax(torch.stack([logits, torch.zeros_like(logits)], 1), 1)[:, 0]
    torch.testing.assert_close(diag.score, expected_score)
    assert torch.equal(diag.initial_mask, torch.ones(2, 1, 4, 4))
    with pytest.warns(DeprecationWarning, match="`return_mask` is deprecated"):
        sal_old, mask_old = MeaningfulPerturbation(net).attribute(x, return_mask=True, **kw)
    assert torch.equal(sal_old, sal) and torch.equal(mask_old, diag.mask)
    if hasattr(typing, "get_overloads"):  # Python >= 3.11
        assert len(typing.get_overloads(MeaningfulPerturbation.attribute)) == 2
    with pytest.raises(TypeError, match="unexpected keyword"):
        MeaningfulPerturbation(net).attribute(x, return_info=True, **kw)


def test_binarise_is_a_deprecated_alias():
    from captum_ext.attr.meaningful_perturbation import binarise

    m = torch.tensor([[[[0.2, 0.9], [0.6, 0.7]]]])
    with pytest.warns(DeprecationWarning):
        assert torch.equal(binarise(m), binarize(m))


# --- issue 15.2: the paper's settings -------------------------------------------------------


def test_paper_preset_settings_are_the_authors():
    # Agarwal and Nguyen, formal_MP_single_image.py: np.random.seed(0); np.random.rand(28, 28),
    # UpsamplingNearest2d, Adam lr 0.1, 300 iterations, l1 1e-4 (sum), tv 1e-2 (sum, beta 3),
    # jitter 4, blur radius 10, all at 224 x 224
    x = torch.rand(1, 3, 224, 224)
    settings = MeaningfulPerturbation._settings(x, "paper", {}, 0, True)
    assert settings["mask_shape"] == (28, 28) and settings["n_iter"] == 300
    assert settings["lr"] == 0.1 and settings["l1_coeff"] == 1e-4 and settings["tv_coeff"] == 1e-2
    assert settings["tv_beta"] == 3.0 and settings["upsample"] == "nearest"
    assert settings["jitter"] == 4 and settings["blur_sigma"] == 10.0
    assert settings["mask_init"] == "random"
    # the first values of NumPy's MT19937 stream for seed 0 (rand: 0.5488135, 0.71518937, ...)
    start = paper_initial_mask()
    torch.testing.assert_close(start[0, 0, 0, :3], torch.tensor(
        [0.5488135039273248, 0.7151893663724195, 0.6027633760716439], dtype=torch.float64))
    import numpy as np

    assert torch.equal(start, torch.from_numpy(np.random.RandomState(0).rand(1, 1, 28, 28)))
    net = RegionNet(size=224)
    sal, diag = MeaningfulPerturbation(net).attribute(
        torch.rand(2, 3, 224, 224), target=0, preset="paper", n_iter=0, return_diagnostics=True)
    torch.testing.assert_close(diag.initial_mask, start.float().expand(2, 1, 28, 28))
    assert diag.settings["preset"] == "paper" and diag.settings["n_iter"] == 0
    torch.testing.assert_close(sal[:, :1], 1 - start.float().repeat_interleave(8, 2)
                               .repeat_interleave(8, 3).expand(2, 1, 224, 224))
    # the default preset keeps today's start; an explicit argument overrides a preset
    assert PRESETS["default"]["mask_init"] == "ones"
    assert MeaningfulPerturbation._settings(x, "paper", {"lr": 0.5}, 0, True)["lr"] == 0.5


def test_paper_preset_inpainting_step_is_straight_through_from_the_random_start():
    # forward: x on the binarized keep cells, the fill on the others (the authors overwrite
    # upsampled_mask.data with the binary mask); backward: through the continuous mask,
    # with x - I where I is the blurred image on kept pixels (the stand-in for the
    # generative reconstruction)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = torch.rand(1, 3, 28, 28)
    fill = ConstantInpainter(-1.0)
    _, diag = MeaningfulPerturbation(net, inpainter=fill).attribute(
        x, target=1, preset="paper", n_iter=1, jitter=0, blur_sigma=1.5,
        return_diagnostics=True)
    m = paper_initial_mask().float().requires_grad_(True)
    tau = max(0.5, float(m.detach().amax() + m.detach().amin()) / 2)  # 0.50033 here
    keep = (m >= tau).float()
    straight = m + (keep - m).detach()
    filled = torch.where(keep == 1, _blur(x, 1.5), torch.full_like(x, -1.0))
    phi = x * straight + filled * (1 - straight)
    loss = (1e-4 * (1 - m).abs().sum() + 1e-2 * total_variation(m, 3.0).sum()
            + torch.softmax(net(phi), 1)[:, 1].sum())
    (grad,) = torch.autograd.grad(loss, m)
    adam_step = 0.1 * grad / (grad.abs() + 1e-8)  # Adam's first step (eps 1e-8)
    expected = (m.detach() - adam_step).clamp(0, 1)
    assert torch.allclose(diag.mask, expected, atol=1e-6)


def test_paper_preset_batched_equals_one_by_one():
    net = RegionNet()
    mp = MeaningfulPerturbation(net, inpainter="harmonic")
    x = images(3)
    kw = dict(target=[0, 0, 0], preset="paper", n_iter=4, mask_shape=(8, 8), seed=5)
    batched = mp.attribute(x, **kw)
    single = torch.cat([mp.attribute(x[i:i + 1], **{**kw, "target": [0]}) for i in range(3)])
    torch.testing.assert_close(batched, single)
