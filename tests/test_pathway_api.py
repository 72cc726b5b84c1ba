"""Regression tests of the pathway classes' API contract (issues 13, 14, 15.2, 16)."""

import warnings

import numpy as np
import pytest
import torch
from captum.attr import (
    Attribution,
    DeepLiftShap,
    GradientShap,
    IntegratedGradients,
    Saliency,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from captum_ext._utils import num_hooks
from captum_ext.attr import CriticalPathway, PathwayGradient, PrunedAttribution
from captum_ext.attr.pathway import PRESETS, expansion_index
from captum_ext.attr.pathway_gradient import PathwayDiagnostics

warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients")
warnings.filterwarnings("ignore", message=".*Setting forward, backward hooks and attributes.*")


class MLP(nn.Module):
    """Two separate ReLU modules (DeepLift needs one module per call)."""

    def __init__(self, sizes=(5, 12, 10, 4)):
        super().__init__()
        self.l1 = nn.Linear(sizes[0], sizes[1])
        self.l2 = nn.Linear(sizes[1], sizes[2])
        self.l3 = nn.Linear(sizes[2], sizes[3])
        self.r1 = nn.ReLU()
        self.r2 = nn.ReLU()

    def forward(self, x):
        return self.l3(self.r2(self.l2(self.r1(self.l1(x)))))


def seeded(model, seed=0):
    torch.manual_seed(seed)
    for p in model.parameters():
        nn.init.normal_(p, std=0.5)
    return model.double().eval()


class RowMasked(nn.Module):
    """The MLP with explicit per-row masks: row r uses the masks of sample ``index[r]``."""

    def __init__(self, net, masks, index_fn):
        super().__init__()
        self.net, self.masks, self.index_fn = net, [m.double() for m in masks], index_fn

    def forward(self, x):
        rows = self.index_fn(x.shape[0])
        m1, m2 = (m[rows] for m in self.masks)
        net = self.net
        return net.l3(torch.relu(net.l2(torch.relu(net.l1(x)) * m1)) * m2)


def test_positional_arguments_bind_as_for_the_wrapped_method():
    net = seeded(MLP())
    torch.manual_seed(1)
    x, base = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    pruned = PrunedAttribution(IntegratedGradients, net, sparsity=0.5)
    positional = pruned.attribute(x, base, 2, None, 16)
    keyword = pruned.attribute(x, baselines=base, target=2, n_steps=16)
    torch.testing.assert_close(positional, keyword, rtol=0, atol=0)
    masks = CriticalPathway(net).compute(x, 2, 0.5).masks
    reference = IntegratedGradients(RowMasked(net, masks, lambda n: torch.arange(n) % 3))
    expected = reference.attribute(x, base, target=2, n_steps=16)
    torch.testing.assert_close(positional, expected, rtol=1e-10, atol=1e-12)
    with pytest.raises(TypeError, match="IntegratedGradients.attribute"):
        pruned.attribute(x, base, 2, bogus=1)


class PlainGradient(Attribution):
    """An Attribution whose ``attribute`` is not wrapped by Captum's ``log_usage``."""

    def attribute(self, inputs, target=None):
        inputs = inputs.detach().requires_grad_()
        out = self.forward_func(inputs)[torch.arange(inputs.shape[0]), target]
        return torch.autograd.grad(out.sum(), inputs)[0]


def test_method_without_log_usage_works():
    net = seeded(MLP())
    x = torch.randn(4, 5, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 3])
    ours = PrunedAttribution(PlainGradient, net, sparsity=0.6).attribute(x, target)
    torch.testing.assert_close(ours, PathwayGradient(net, sparsity=0.6).attribute(x, target))


def test_gradient_shap_gives_each_sample_its_own_pathway():
    net = seeded(MLP())
    torch.manual_seed(2)
    x = torch.randn(3, 5, dtype=torch.float64)
    baselines = torch.randn(4, 5, dtype=torch.float64)
    n = 5
    masks = CriticalPathway(net).compute(x, 1, 0.6).masks
    torch.manual_seed(7)
    np.random.seed(7)  # Captum draws the baselines with numpy
    ours = PrunedAttribution(GradientShap, net, sparsity=0.6).attribute(
        x, baselines, n_samples=n, stdevs=0.1, target=1)
    reference = GradientShap(RowMasked(net, masks, lambda r: torch.arange(r) // (r // 3)))
    torch.manual_seed(7)
    np.random.seed(7)
    expected = reference.attribute(x, baselines, n_samples=n, stdevs=0.1, target=1)
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-12)
    tiled = GradientShap(RowMasked(net, masks, lambda r: torch.arange(r) % 3))
    torch.manual_seed(7)
    np.random.seed(7)
    wrong = tiled.attribute(x, baselines, n_samples=n, stdevs=0.1, target=1)
    assert not torch.allclose(ours, wrong, rtol=1e-3)


def test_deeplift_shap_batched_equals_one_at_a_time():
    net = seeded(MLP())
    torch.manual_seed(3)
    x = torch.randn(3, 5, dtype=torch.float64)
    baselines = torch.randn(4, 5, dtype=torch.float64)
    target = [0, 3, 1]
    method = PrunedAttribution(DeepLiftShap, net, sparsity=0.6)
    batched = method.attribute(x, baselines, target=target)
    single = torch.cat([method.attribute(x[i:i + 1], baselines, target=target[i])
                        for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=1e-10, atol=1e-12)
    assert num_hooks(net) == 0


def test_expansion_index_rules():
    assert expansion_index("repeat", 6, 3).tolist() == [0, 1, 2, 0, 1, 2]
    assert expansion_index("repeat_interleave", 6, 3).tolist() == [0, 0, 1, 1, 2, 2]
    assert expansion_index("interleave_halves", 12, 3).tolist() == [0, 0, 1, 1, 2, 2] * 2
    assert expansion_index("repeat", 3, 3) is None
    with pytest.raises(RuntimeError, match="multiple of 6"):
        expansion_index("interleave_halves", 9, 3)


class Branchy(nn.Module):
    """Calls a second ReLU only when the first input's sum is positive."""

    def __init__(self):
        super().__init__()
        self.l1, self.l2 = nn.Linear(4, 6), nn.Linear(6, 2)

    def forward(self, x):
        h = torch.relu(self.l1(x))
        if x[0].sum() > 0:
            h = torch.relu(h - 0.1)
        return self.l2(h)


def test_applied_raises_when_the_forward_calls_other_activations():
    net = seeded(Branchy())
    positive = torch.ones(1, 4, dtype=torch.float64)
    negative = -positive
    pathway = CriticalPathway(net).compute(negative, target=0, sparsity=0.5)
    assert pathway.num_calls == 1
    with pytest.raises(RuntimeError, match="does not match the pathway"):
        with pathway.applied():
            net(positive)
    pathway = CriticalPathway(net).compute(positive, target=0, sparsity=0.5)
    with pytest.raises(RuntimeError, match="made 1 prunable activation calls"):
        with pathway.applied():
            net(negative)
    assert num_hooks(net) == 0 and torch._C._len_torch_function_stack() == 0


def test_empty_batch_returns_empty_result():
    net = seeded(MLP())
    x = torch.zeros(0, 5, dtype=torch.float64)
    out = PathwayGradient(net).attribute(x)
    assert out.shape == (0, 5) and out.dtype == x.dtype
    attr, delta = PrunedAttribution(IntegratedGradients, net).attribute(
        x, return_convergence_delta=True)
    assert attr.shape == (0, 5) and delta.shape == (0,)
    a, b = PathwayGradient(net, forward_func=lambda u, v: net(u + v)).attribute((x, x))
    assert a.shape == b.shape == (0, 5)
    _, diag = PathwayGradient(net).attribute(x, return_diagnostics=True)
    assert diag.pathway is None and diag.realized_sparsity.shape == (0,)


@pytest.mark.parametrize("target", [[0, 1, 2], torch.tensor([0, 1, 2]), [0]])
def test_target_length_must_match_the_batch(target):
    net = seeded(MLP())
    x = torch.randn(2, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match="target"):
        PathwayGradient(net, sparsity=0.5).attribute(x, target=target)
    with pytest.raises(ValueError, match="target"):
        PrunedAttribution(IntegratedGradients, net).attribute(x, target=target)


def test_nan_inputs_raise_naming_inputs():
    net = seeded(MLP())
    x = torch.randn(2, 5, dtype=torch.float64)
    x[1, 2] = float("nan")
    with pytest.raises(ValueError, match="`inputs`"):
        PathwayGradient(net).attribute(x, target=0)
    with pytest.raises(ValueError, match="`inputs`"):
        PrunedAttribution(IntegratedGradients, net, sparsity=0.0).attribute(x, target=0)
    with pytest.raises(ValueError, match="`inputs`"):
        CriticalPathway(net).compute(x, target=0)


class FunctionalRaiser(nn.Module):
    def __init__(self, fail_at):
        super().__init__()
        self.l1, self.l2 = nn.Linear(5, 6), nn.Linear(6, 2)
        self.fail_at, self.calls = fail_at, 0

    def forward(self, x):
        self.calls += 1
        h = torch.relu(self.l1(x))
        if self.calls == self.fail_at:
            raise RuntimeError("boom")
        return self.l2(h)


@pytest.mark.parametrize("fail_at", [1, 2])
def test_model_unchanged_when_functional_model_raises(fail_at):
    net = seeded(FunctionalRaiser(fail_at)).train()
    net.l1.bias.requires_grad_(False)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(RuntimeError, match="boom"):
        PathwayGradient(net, sparsity=0.5).attribute(torch.randn(2, 5, dtype=torch.float64), 0)
    assert net.training and not net.l1.bias.requires_grad and net.l1.weight.requires_grad
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    assert num_hooks(net) == 0 and torch._C._len_torch_function_stack() == 0
    assert all(p.grad is None for p in net.parameters())


def test_pathway_gradient_docstring_states_signed_default_first():
    head = " ".join(PathwayGradient.__doc__.split("\n\n")[:2])
    assert "signed" in head and "abs=False" in head and "Saliency" in head


def test_presets_are_the_papers_settings():
    # authors' code (CAMP-eXplain-AI/PathwayGrad): percentile 85 by default, 75 for the
    # ResNet-50 figures, 90 for VGG-16, 70 in the sanity checks
    assert PRESETS["paper"]["sparsity"] == 0.85
    assert PRESETS["paper-resnet50"]["sparsity"] == 0.75
    assert PRESETS["paper-vgg16"]["sparsity"] == 0.90
    assert PRESETS["paper-sanity"]["sparsity"] == 0.70
    assert all(p["scoring"] == "taylor" for p in PRESETS.values())
    net = seeded(MLP())
    for name, preset in PRESETS.items():
        method = PathwayGradient(net, preset=name)
        assert method.sparsity == preset["sparsity"] and method.finder.scoring == "taylor"
    assert PathwayGradient(net).sparsity == 0.95  # our default (stamp benchmark)
    with pytest.raises(TypeError, match="preset"):
        PathwayGradient(net, sparsity=0.5, preset="paper")
    with pytest.raises(ValueError, match="preset"):
        PathwayGradient(net, preset="papers")
    # the preset's realised sparsity on an MLP: floor(0.85 * 21) + 1 = 18 of 22 units
    x = torch.randn(2, 5, dtype=torch.float64)
    _, diag = PathwayGradient(net, preset="paper").attribute(x, return_diagnostics=True)
    assert isinstance(diag, PathwayDiagnostics)
    assert (diag.realized_sparsity >= 18 / 22 - 1e-12).all()
    flat = torch.cat([s.flatten(1) for s in diag.pathway.scores], 1).numpy()
    thr = np.percentile(flat, 85, axis=1, method="linear")
    assert np.array_equal(diag.pathway.flat_masks().numpy(), flat > thr[:, None])


class FunctionalNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2 = nn.Linear(5, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.l2(nn.functional.relu(self.l1(x)))


@pytest.mark.parametrize("compile_", ["script", "trace"])
def test_sparsity_zero_reduces_to_the_wrapped_method_on_a_scripted_model(compile_):
    net = seeded(FunctionalNet())
    x = torch.randn(3, 5, dtype=torch.float64)
    compiled = torch.jit.script(net) if compile_ == "script" else torch.jit.trace(net, x)
    ours = PathwayGradient(compiled, sparsity=0.0).attribute(x, target=[0, 2, 1])
    assert torch.equal(ours, Saliency(compiled).attribute(x, target=[0, 2, 1], abs=False))
    ig = PrunedAttribution(IntegratedGradients, compiled, sparsity=0.0).attribute(
        x, target=1, n_steps=8)
    assert torch.equal(ig, IntegratedGradients(compiled).attribute(x, target=1, n_steps=8))
    with pytest.raises(ValueError, match="scripted"):
        PathwayGradient(compiled, sparsity=0.5).attribute(x, target=0)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10, 101])
def test_percentile_threshold_matches_numpy_on_small_rows_and_both_selection_sides(n):
    from captum_ext.attr.pathway import percentile_threshold

    rng = np.random.default_rng(n)
    x = rng.random((3, n))
    x[:, : n // 3] = 0.0  # ties at the minimum
    x[1] = np.round(x[1], 1)  # ties elsewhere
    for q in (0.0, 0.1, 0.3, 0.49, 0.5, 0.51, 0.7, 0.85, 0.95, 0.9999):
        got = percentile_threshold(torch.from_numpy(x), q).numpy()
        assert np.array_equal(got, np.quantile(x, q, axis=1, method="linear")), q


@settings(max_examples=15, deadline=None)
@given(batch=st.integers(1, 5), sparsity=st.sampled_from([0.0, 0.3, 0.7, 0.95]),
       seed=st.integers(0, 1000), per_sample=st.booleans())
def test_batched_equals_one_at_a_time_for_random_batches_and_targets(batch, sparsity, seed,
                                                                       per_sample):
    net = seeded(MLP())
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 5, generator=gen, dtype=torch.float64)
    target = (torch.randint(0, 4, (batch,), generator=gen).tolist() if per_sample
              else seed % 4)
    method = PathwayGradient(net, sparsity=sparsity)
    batched = method.attribute(x, target=target)
    single = torch.cat([
        method.attribute(x[i:i + 1], target=target[i] if per_sample else target)
        for i in range(batch)])
    torch.testing.assert_close(batched, single, rtol=1e-10, atol=1e-12)


def test_activation_of_a_parameter_is_not_a_unit():
    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 3)
            self.gate = nn.Parameter(torch.randn(3))

        def forward(self, x):
            # a parameter (even one as long as the batch) and a per-feature tensor: no units
            scale = torch.relu(self.gate.unsqueeze(0) * 1.0)[:, :1]
            return torch.relu(self.lin(x)) * torch.relu(self.gate) * scale

    net = seeded(Gated())
    x = torch.randn(3, 4, dtype=torch.float64)
    _, diag = PathwayGradient(net, sparsity=0.5).attribute(x, target=0, return_diagnostics=True)
    assert diag.num_calls == 1 and diag.num_units == 3
