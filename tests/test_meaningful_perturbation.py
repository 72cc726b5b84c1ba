"""Tests of MeaningfulPerturbation (blur and inpainting fills)."""

import pytest
import torch
from torch import nn

from captum_ext._utils import num_hooks
from captum_ext.attr import MeaningfulPerturbation
from captum_ext.attr.meaningful_perturbation import _blur, binarise, total_variation
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
    sal = MeaningfulPerturbation(net, fill=fill).attribute(images(), target=0, n_iter=60,
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
    mp = MeaningfulPerturbation(net, fill=fill)
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
    MeaningfulPerturbation(net, fill=ConstantInpainter(-3.0)).attribute(
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
    _, mask = MeaningfulPerturbation(net).attribute(
        x, target=1, n_iter=1, lr=lr, l1_coeff=l1, tv_coeff=tv, jitter=0, blur_sigma=2.0,
        mask_shape=(4, 4), return_mask=True)
    m = torch.full((2, 1, 4, 4), 0.7, requires_grad=True)  # check the objective off the corner
    big = m.repeat_interleave(4, 2).repeat_interleave(4, 3)
    phi = x * big + _blur(x, 2.0) * (1 - big)
    loss = (l1 * (1 - m).abs().sum() + tv * total_variation(m, 3.0).sum()
            + torch.softmax(net(phi), 1)[:, 1].sum())
    (grad,) = torch.autograd.grad(loss, m)
    mp = MeaningfulPerturbation(net)
    init = torch.full((2, 1, 4, 4), 0.7)
    mp_mask = _one_step_from(mp, x, init, l1, tv, lr)
    assert torch.allclose(mp_mask, (init - lr * grad.sign()).clamp(0, 1), atol=1e-5)
    # from the all-ones start, Adam's first step is lr * sign(grad) then clamped to [0, 1]
    start = torch.ones(2, 1, 4, 4, requires_grad=True)
    big = start.repeat_interleave(4, 2).repeat_interleave(4, 3)
    phi = x * big + _blur(x, 2.0) * (1 - big)
    loss = torch.softmax(net(phi), 1)[:, 1].sum() + tv * total_variation(start, 3.0).sum()
    (grad,) = torch.autograd.grad(loss, start)
    assert torch.allclose(mask, (1 - lr * grad.sign()).clamp(0, 1), atol=1e-3)  # Adam eps


def _one_step_from(mp, x, init, l1, tv, lr):
    """Run MP's optimiser for one step from a given mask (monkeypatching the start)."""
    original = torch.ones

    def ones(*shape, **kwargs):
        if kwargs.get("requires_grad"):
            return init.clone().requires_grad_(True)
        return original(*shape, **kwargs)

    torch.ones = ones
    try:
        _, mask = mp.attribute(x, target=1, n_iter=1, lr=lr, l1_coeff=l1, tv_coeff=tv, jitter=0,
                               blur_sigma=2.0, mask_shape=(4, 4), return_mask=True)
    finally:
        torch.ones = original
    return mask


def test_helpers():
    m = torch.tensor([[[[0.0, 0.5], [1.0, 0.5]]]])
    assert torch.allclose(total_variation(m, 2.0), torch.tensor([1.0 + 0.0 + 0.25 + 0.25]))
    assert torch.equal(binarise(torch.full((1, 1, 2, 2), 0.3)), torch.zeros(1, 1, 2, 2))
    assert torch.equal(binarise(torch.tensor([[[[0.0, 0.8], [0.79, 0.81]]]])),
                       torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]]))


def test_zero_iterations_and_additional_args():
    net = RegionNet()
    x = images(2)
    sal = MeaningfulPerturbation(net).attribute(x, target=0, n_iter=0)
    assert torch.equal(sal, torch.zeros_like(x))
    sal = MeaningfulPerturbation(net, "harmonic").attribute(
        x, target=torch.tensor([0, 0]), n_iter=3, additional_forward_args=(5.0,))
    assert sal.shape == x.shape


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
    with pytest.raises(RuntimeError, match="boom"):
        mp.attribute(torch.rand(1, 3, 16, 16), target=0, n_iter=5)
    assert mp.attribute(torch.rand(1, 3, 16, 16), target=0, n_iter=2).shape == (1, 3, 16, 16)
    assert model.training and num_hooks(model) == 0
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_errors():
    mp = MeaningfulPerturbation(RegionNet())
    x = images(1)
    with pytest.raises(TypeError, match="`inputs` must be a single image tensor"):
        mp.attribute((x,), target=0)
    with pytest.raises(ValueError, match="`upsample`"):
        mp.attribute(x, target=0, upsample="cubic")
    with pytest.raises(ValueError, match="`mask_shape`"):
        mp.attribute(x, target=0, mask_shape=(0, 4))
    with pytest.raises(ValueError, match="`lr`"):
        mp.attribute(x, target=0, lr=-1.0)
    with pytest.raises(TypeError, match="`n_iter`"):
        mp.attribute(x, target=0, n_iter=2.5)
    with pytest.raises(ValueError, match="`st_proxy`"):
        mp.attribute(x, target=0, st_proxy="zero")
    with pytest.raises(ValueError, match="unknown inpainter"):
        MeaningfulPerturbation(RegionNet(), fill="gray")
