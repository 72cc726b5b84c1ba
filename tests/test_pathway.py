"""Tests of the critical pathway, PathwayGradient and PrunedAttribution (issue 5)."""

import copy
import doctest
import warnings

import numpy as np
import pytest
import torch
import torchvision
from captum.attr import InputXGradient, IntegratedGradients, NoiseTunnel, Saliency
from captum.metrics import infidelity, sensitivity_max
from captum_metric_oracles import fixed_noise_perturb, fixed_shift, infidelity_by_hand, sensitivity_max_by_hand
from torch import nn

import captum_ext.attr.pathway as pathway_module
import captum_ext.attr.pathway_gradient as pathway_gradient_module
from captum_ext._utils import num_hooks
from captum_ext.attr import CriticalPathway, PathwayGradient, PrunedAttribution
from captum_ext.attr.pathway import percentile_threshold, threshold_scores

warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients")


# ----------------------------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------------------------


class SharedReluMLP(nn.Module):
    """Linear-ReLU-Linear-ReLU-Linear with ONE inplace ReLU module called twice."""

    def __init__(self, sizes=(5, 12, 10, 4), inplace=True):
        super().__init__()
        self.l1 = nn.Linear(sizes[0], sizes[1])
        self.l2 = nn.Linear(sizes[1], sizes[2])
        self.l3 = nn.Linear(sizes[2], sizes[3])
        self.relu = nn.ReLU(inplace=inplace)

    def forward(self, x):
        return self.l3(self.relu(self.l2(self.relu(self.l1(x)))))


class SmallCNN(nn.Module):
    """Conv net with a shared inplace ReLU, a residual add and a second ReLU module."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 6, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.head_relu = nn.ReLU()
        self.fc1 = nn.Linear(6 * 4 * 4, 16)
        self.fc2 = nn.Linear(16, 5)

    def forward(self, x):
        h = self.relu(self.c1(x))
        h = self.relu(self.c2(h) + h)
        h = nn.functional.adaptive_avg_pool2d(h, 4).flatten(1)
        return self.fc2(self.head_relu(self.fc1(h)))


class Raiser(nn.Module):
    """Identity that raises on its ``fail_at``-th call (1-based)."""

    def __init__(self, fail_at):
        super().__init__()
        self.fail_at = fail_at
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("boom")
        return x


def seeded(model, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    for p in model.parameters():
        nn.init.normal_(p, std=0.5)
    return model.to(dtype).eval()


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).eval()


# ----------------------------------------------------------------------------------------------
# threshold rule
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("q", [0.0, 0.1, 0.5, 0.85, 0.9, 0.999])
def test_percentile_threshold_matches_numpy_linear(q):
    torch.manual_seed(1)
    scores = torch.rand(4, 1001, dtype=torch.float64)
    scores[:, :300] = 0.0  # ties at the minimum, like dead ReLUs
    scores[1, 500:700] = 0.5  # a plateau
    expected = np.quantile(scores.numpy(), q, axis=1, method="linear")
    np.testing.assert_array_equal(percentile_threshold(scores, q).numpy(), expected)


@pytest.mark.parametrize("q", [0.2, 0.5, 0.85, 0.97])
def test_threshold_scores_prunes_score_le_numpy_percentile(q):
    torch.manual_seed(2)
    scores = [torch.rand(3, 4, 5), torch.rand(3, 7).round(decimals=1), torch.zeros(3, 2)]
    masks, _ = threshold_scores(scores, q)
    flat = torch.cat([s.reshape(3, -1) for s in scores], 1).numpy()
    thr = np.percentile(flat, 100 * q, axis=1, method="linear")
    expected = flat > thr[:, None]
    got = torch.cat([m.reshape(3, -1) for m in masks], 1).numpy()
    np.testing.assert_array_equal(got, expected)
    # at least floor(q (N - 1)) + 1 units go: the realised sparsity is >= q (N - 1) / N
    n = flat.shape[1]
    assert (1 - got.mean(1) >= q * (n - 1) / n - 1e-12).all()


def _large_scores(dtype):
    """Three calls with 2^16 + 1200 units per sample: half tied at 0, a plateau, random rest."""
    g = torch.Generator().manual_seed(3)
    scores = [torch.rand(3, 64, 16, 16, generator=g, dtype=dtype),
              torch.rand(3, 48000, generator=g, dtype=dtype),
              torch.rand(3, 2, 600, generator=g, dtype=dtype)]
    scores[0][:, :32] = 0.0
    scores[1][:, ::2] = 0.0
    scores[1][1, 1:20000:2] = 0.25
    return scores


def _order_statistics(scores, q, workers=1):
    flat = [s.reshape(s.shape[0], -1) for s in scores]
    _, lower, _, need_high = pathway_module._quantile_position(sum(f.shape[1] for f in flat), q)
    return pathway_module._bracketed_statistics([f.numpy() for f in flat], lower,
                                                2 if need_high else 1, workers)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("q", [0.05, 0.3, 0.5, 0.7, 0.85, 0.95, 0.9999])
def test_bracketed_threshold_of_large_rows_equals_numpy(q, dtype):
    scores = _large_scores(dtype)
    flat = torch.cat([s.reshape(3, -1) for s in scores], 1)
    assert flat.shape[1] >= pathway_module.BRACKET_MIN_UNITS
    serial = _order_statistics(scores, q)
    assert serial is not None  # the bracketed selection is used
    assert np.array_equal(_order_statistics(scores, q, workers=2), serial)  # rows in threads
    masks, thr = threshold_scores(scores, q)
    expected = np.quantile(flat.numpy(), q, axis=1, method="linear")
    assert thr.dtype == dtype and np.array_equal(thr.numpy(), expected)
    assert torch.equal(thr, percentile_threshold(flat, q))
    got = torch.cat([m.reshape(3, -1) for m in masks], 1).numpy()
    np.testing.assert_array_equal(got, flat.numpy() > expected[:, None])


@pytest.mark.parametrize("q, shift", [(0.9, 10.0), (0.1, -10.0)])
def test_bracketed_threshold_falls_back_when_the_sample_misleads(q, shift):
    # every sampled position is moved far beyond the wanted ranks: the bound lands on the
    # wrong side, the count shows it, and torch.topk selects instead
    n = 2 * pathway_module.BRACKET_MIN_UNITS
    x = torch.rand(2, n, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    (positions,) = pathway_module._bracket_sample([n])
    x[:, torch.from_numpy(positions)] += shift
    assert _order_statistics([x], q) is None
    _, thr = threshold_scores([x], q)
    assert np.array_equal(thr.numpy(), np.quantile(x.numpy(), q, axis=1, method="linear"))


@pytest.mark.parametrize("q", [0.3, 0.95])  # 0.3: both bounds on the tied zeros
def test_bracketed_threshold_leaves_nan_to_topk(q):
    scores = _large_scores(torch.float32)
    scores[1][0, 5] = float("nan")
    assert _order_statistics(scores, q) is None
    _, thr = threshold_scores(scores, q)
    flat = torch.cat([s.reshape(3, -1) for s in scores], 1)
    torch.testing.assert_close(thr, percentile_threshold(flat, q), equal_nan=True,
                               rtol=0, atol=0)


@pytest.mark.parametrize("sparsity", [0.0, 0.6])
def test_factors_are_the_masks_in_the_activation_dtype_and_prune_alike(sparsity):
    # PrunedAttribution's pathway carries 0/1 factors (written over the scores) for in-place
    # masking; they must equal the masks and give the same pruned network
    torch.manual_seed(5)
    net = SmallCNN().double().eval()
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    finder = CriticalPathway(net)
    pathway = finder._compute((x,), 1, sparsity, None, keep_scores=False, factors=True)
    reference = finder.compute(x, 1, sparsity)
    assert all(torch.equal(m, r) for m, r in zip(pathway.masks, reference.masks))
    if sparsity == 0:
        assert pathway.factors is None
        return
    assert pathway.factors is not None and pathway.scores == []
    for factor, mask in zip(pathway.factors, pathway.masks):
        assert factor.dtype == torch.float64 and torch.equal(factor, mask.double())
    z = x.clone().requires_grad_()
    with pathway.applied():
        (with_factors,) = torch.autograd.grad(net(z)[:, 1].sum(), z)
    with reference.applied():
        (with_masks,) = torch.autograd.grad(net(z)[:, 1].sum(), z)
    assert torch.equal(with_factors, with_masks)
    assert torch.equal(PathwayGradient(net, sparsity=sparsity).attribute(x, target=1),
                       with_masks)


def test_sparsity_zero_keeps_every_unit_even_ties():
    scores = [torch.zeros(2, 3), torch.tensor([[0.0, 1.0], [0.0, 0.0]])]
    masks, thr = threshold_scores(scores, 0.0)
    assert all(m.all() for m in masks)
    assert torch.isinf(thr).all()
    # with sparsity > 0 the `<=` rule removes every tied minimum
    masks, _ = threshold_scores(scores, 0.01)
    assert masks[1].tolist() == [[False, True], [False, False]] and not masks[0].any()


# ----------------------------------------------------------------------------------------------
# exact oracles
# ----------------------------------------------------------------------------------------------


def test_sparsity_zero_equals_captum_saliency_exactly(resnet):
    x = torch.randn(2, 3, 64, 64)
    pathway = CriticalPathway(resnet).compute(x, target=7, sparsity=0.0)
    assert all(bool(m.all()) for m in pathway.masks)
    ours = PathwayGradient(resnet, sparsity=0.0).attribute(x, target=7)
    assert torch.equal(ours, Saliency(resnet).attribute(x, target=7, abs=False))
    ours_abs = PathwayGradient(resnet, sparsity=0.0).attribute(x, target=7, abs=True)
    assert torch.equal(ours_abs, Saliency(resnet).attribute(x, target=7))


def _tol(dtype, tolerance, f64):
    """The test's own float64 tolerance, and the shared ``tolerance`` fixture's for float32."""
    return f64 if dtype == torch.float64 else tolerance(dtype)


def _mlp_closed_form(net, x, target, m1, m2):
    """Gradient of the pruned MLP: W3[t] diag(m2 act2) W2 diag(m1 act1) W1, per sample."""
    w1, w2, w3 = net.l1.weight, net.l2.weight, net.l3.weight
    h1 = x @ w1.T + net.l1.bias
    a1 = h1.clamp(min=0) * m1
    h2 = a1 @ w2.T + net.l2.bias
    d2 = (h2 > 0).to(x.dtype) * m2
    d1 = (h1 > 0).to(x.dtype) * m1
    rows = w3[target]  # (B, H2)
    g2 = rows * d2  # (B, H2)
    g1 = (g2 @ w2) * d1  # (B, H1)
    return g1 @ w1


def test_mlp_pathway_gradient_equals_closed_form_product_of_weights(device, dtype, tolerance):
    net = seeded(SharedReluMLP()).to(device, dtype)
    torch.manual_seed(3)
    x = torch.randn(6, 5, dtype=torch.float64).to(device, dtype)
    target = torch.tensor([0, 1, 2, 3, 0, 1], device=device)
    rtol, atol = _tol(dtype, tolerance, (1e-12, 1e-12))
    pathway = CriticalPathway(net).compute(x, target=target, sparsity=0.6)
    assert pathway.num_calls == 2 and pathway.call_modules == ["relu", "relu"]
    m1, m2 = (m.to(x.dtype) for m in pathway.masks)
    assert 0 < m1.sum() < m1.numel() and 0 < m2.sum() < m2.numel()
    expected = _mlp_closed_form(net, x, target, m1, m2)
    ours = PathwayGradient(net, sparsity=0.6).attribute(x, target=target)
    assert ours.dtype == dtype and ours.device.type == device.type
    torch.testing.assert_close(ours, expected, rtol=rtol, atol=atol)
    assert not torch.allclose(ours, _mlp_closed_form(net, x, target, 1.0, 1.0))


def test_mlp_taylor_scores_equal_closed_form(device, dtype, tolerance):
    net = seeded(SharedReluMLP()).to(device, dtype)
    torch.manual_seed(4)
    x = torch.randn(3, 5, dtype=torch.float64).to(device, dtype)
    target = torch.tensor([2, 0, 1], device=device)
    rtol, atol = _tol(dtype, tolerance, (1e-12, 1e-14))
    pathway = CriticalPathway(net).compute(x, target=target, sparsity=0.5)
    h1 = x @ net.l1.weight.T + net.l1.bias
    a1 = h1.clamp(min=0)
    h2 = a1 @ net.l2.weight.T + net.l2.bias
    a2 = h2.clamp(min=0)
    g2 = net.l3.weight[target]
    g1 = (g2 * (h2 > 0)) @ net.l2.weight
    assert pathway.scores[0].dtype == dtype and pathway.scores[0].device.type == device.type
    torch.testing.assert_close(pathway.scores[0], (a1 * g1).abs(), rtol=rtol, atol=atol)
    torch.testing.assert_close(pathway.scores[1], (a2 * g2).abs(), rtol=rtol, atol=atol)


def test_neuron_int_grad_scores_each_call_against_explicit_loop():
    net = seeded(SharedReluMLP())
    torch.manual_seed(5)
    x = torch.randn(3, 5, dtype=torch.float64)
    target = torch.tensor([1, 3, 0])
    steps = 4
    finder = CriticalPathway(net, scoring="neuron_int_grad", n_steps=steps, internal_batch_size=6)
    pathway = finder.compute(x, target=target, sparsity=0.5)
    alphas = [(k + 0.5) / steps for k in range(steps)]
    w1, b1, w2, b2, w3, b3 = (net.l1.weight, net.l1.bias, net.l2.weight, net.l2.bias,
                              net.l3.weight, net.l3.bias)
    rows = torch.arange(3)

    def logits(scale1, scale2, a1_override=None):
        a1 = (x @ w1.T + b1).clamp(min=0) * scale1 if a1_override is None else a1_override
        a2 = (a1 @ w2.T + b2).clamp(min=0) * scale2
        return a2 @ w3.T + b3

    a1 = (x @ w1.T + b1).clamp(min=0)
    a2 = (a1 @ w2.T + b2).clamp(min=0)
    grads1 = []
    for alpha in alphas:
        z = (a1 * alpha).requires_grad_()
        out = logits(1.0, 1.0, a1_override=z)[rows, target].sum()
        grads1.append(torch.autograd.grad(out, z)[0])
    score1 = (a1 * torch.stack(grads1).mean(0)).abs()
    score2 = (a2 * w3[target]).abs()  # linear after the last call: constant over alpha
    torch.testing.assert_close(pathway.scores[0], score1, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(pathway.scores[1], score2, rtol=1e-12, atol=1e-14)
    taylor = CriticalPathway(net).compute(x, target=target, sparsity=0.5)
    assert not torch.allclose(pathway.scores[0], taylor.scores[0])


def test_pruned_integrated_gradients_equals_ig_on_explicitly_masked_network(device, dtype,
                                                                            tolerance):
    net = seeded(SharedReluMLP()).to(device, dtype)
    torch.manual_seed(6)
    x = torch.randn(4, 5, dtype=torch.float64).to(device, dtype)
    target = torch.tensor([0, 1, 2, 3], device=device)
    pruned_ig = PrunedAttribution(IntegratedGradients, net, sparsity=0.5)
    ours = pruned_ig.attribute(x, target=target, n_steps=20)
    assert ours.dtype == dtype and ours.device.type == device.type
    chunked = pruned_ig.attribute(x, target=target, n_steps=20, internal_batch_size=12)
    torch.testing.assert_close(chunked, ours, **dict(zip(("rtol", "atol"),
                                                         _tol(dtype, tolerance, (1e-12, 1e-12)))))
    rtol, atol = _tol(dtype, tolerance, (1e-10, 1e-12))
    pathway = CriticalPathway(net).compute(x, target=target, sparsity=0.5)
    for i in range(4):
        m1, m2 = (m[i:i + 1].to(x.dtype) for m in pathway.masks)

        def masked(z, m1=m1, m2=m2):
            a1 = torch.relu(net.l1(z)) * m1
            return net.l3(torch.relu(net.l2(a1)) * m2)

        expected = IntegratedGradients(masked).attribute(x[i:i + 1], target=int(target[i]),
                                                         n_steps=20)
        torch.testing.assert_close(ours[i:i + 1], expected, rtol=rtol, atol=atol)


def test_pruned_ig_at_sparsity_zero_equals_captum_ig_and_delta_is_small(device, dtype,
                                                                        tolerance):
    net = seeded(SmallCNN()).to(device, dtype)
    torch.manual_seed(7)
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64).to(device, dtype)
    ours, delta = PrunedAttribution(IntegratedGradients, net, sparsity=0.0).attribute(
        x, target=2, n_steps=10, return_convergence_delta=True)
    ref, ref_delta = IntegratedGradients(net).attribute(x, target=2, n_steps=10,
                                                        return_convergence_delta=True)
    assert torch.equal(ours, ref) and torch.equal(delta, ref_delta)
    pruned_ig = PrunedAttribution(IntegratedGradients, net, sparsity=0.7)
    attr, delta = pruned_ig.attribute(x, target=2, n_steps=200, method="riemann_trapezoid",
                                      return_convergence_delta=True)
    with torch.no_grad(), CriticalPathway(net).compute(x, 2, 0.7).applied():
        gap = net(x)[:, 2] - net(torch.zeros_like(x))[:, 2]
    # the delta is that of the pruned network, and completeness holds to 1%
    rtol, atol = _tol(dtype, tolerance, (1e-9, 1e-9))
    torch.testing.assert_close(delta, attr.flatten(1).sum(1) - gap, rtol=rtol, atol=atol)
    assert (delta.abs() < 0.01 * gap.abs()).all()


def test_pruned_input_x_gradient_is_input_times_pathway_gradient():
    net = seeded(SmallCNN())
    torch.manual_seed(8)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    ixg = PrunedAttribution(InputXGradient, net, sparsity=0.6).attribute(x, target=1)
    pg = PathwayGradient(net, sparsity=0.6).attribute(x, target=1)
    torch.testing.assert_close(ixg, x * pg, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------------------------
# batching, nesting, targets, input structures
# ----------------------------------------------------------------------------------------------


def test_batched_equals_one_by_one():
    net = seeded(SmallCNN())
    torch.manual_seed(9)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    target = torch.tensor([0, 4, 2, 2])
    method = PathwayGradient(net, sparsity=0.8)
    batched = method.attribute(x, target=target)
    single = torch.cat([method.attribute(x[i:i + 1], target=int(target[i])) for i in range(4)])
    torch.testing.assert_close(batched, single, rtol=1e-10, atol=1e-12)
    finder = CriticalPathway(net)
    masks_b = finder.compute(x, target, 0.8).flat_masks()
    masks_1 = torch.cat([finder.compute(x[i:i + 1], int(target[i]), 0.8).flat_masks()
                         for i in range(4)])
    assert torch.equal(masks_b, masks_1)


def test_masks_nest_as_sparsity_grows(resnet):
    x = torch.randn(2, 3, 64, 64)
    finder = CriticalPathway(resnet)
    kept = [finder.compute(x, target=1, sparsity=s).flat_masks() for s in (0.0, 0.3, 0.6, 0.9)]
    for looser, tighter in zip(kept, kept[1:]):
        assert torch.equal(tighter & looser, tighter)
        assert tighter.sum() < looser.sum()


def test_default_target_is_predicted_class():
    net = seeded(SmallCNN())
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    predicted = net(x).argmax(1)
    ours = PathwayGradient(net, sparsity=0.0).attribute(x)
    assert torch.equal(ours, Saliency(net).attribute(x, target=predicted, abs=False))
    assert torch.equal(PathwayGradient(net, sparsity=0.5).attribute(x),
                       PathwayGradient(net, sparsity=0.5).attribute(x, target=predicted))


def test_tuple_inputs_and_additional_forward_args():
    net = seeded(SharedReluMLP())

    def forward(a, b, scale):
        return net(a * scale + b)

    torch.manual_seed(10)
    a, b = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    method = PathwayGradient(net, sparsity=0.5, forward_func=forward)
    ga, gb = method.attribute((a, b), target=1, additional_forward_args=(2.0,))
    direct = PathwayGradient(net, sparsity=0.5).attribute(a * 2.0 + b, target=1)
    torch.testing.assert_close(gb, direct, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(ga, 2.0 * direct, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------------------------
# torchvision models, inplace ReLU, modules called twice
# ----------------------------------------------------------------------------------------------


def _set_inplace(model, flag):
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = flag
    return model


def test_resnet18_one_mask_per_call_and_inplace_relu_does_not_corrupt_scores(resnet):
    x = torch.randn(2, 3, 64, 64)
    pathway = CriticalPathway(resnet).compute(x, target=3, sparsity=0.85)
    assert pathway.num_calls == 17 and set(pathway.call_modules) == {"relu"}
    n = pathway.flat_masks().shape[1]
    assert (pathway.realized_sparsity() >= 0.85 * (n - 1) / n - 1e-6).all()
    # every call, including second calls of a module, holds non-zero scores
    assert all(bool((s > 0).any()) for s in pathway.scores)
    not_inplace = _set_inplace(copy.deepcopy(resnet), False)
    reference = CriticalPathway(not_inplace).compute(x, target=3, sparsity=0.85)
    for ours, ref in zip(pathway.scores, reference.scores):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-9)
    grad = PathwayGradient(resnet).attribute(x, target=3)
    grad_ref = PathwayGradient(not_inplace).attribute(x, target=3)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-4, atol=1e-7)
    assert not torch.allclose(grad, Saliency(resnet).attribute(x, target=3, abs=False))
    probabilities = pathway.probabilities(x)
    with torch.no_grad():  # the unpruned probabilities of the target, by hand
        full = torch.softmax(resnet(x), dim=1)[:, 3]
    torch.testing.assert_close(probabilities["target_prob"], full, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(probabilities["relative_prob_change"],
                               (probabilities["pruned_target_prob"] - full) / full, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(probabilities["pruned_target_prob"], reference.probabilities(x)["pruned_target_prob"],
                               rtol=1e-5, atol=1e-9)


def test_vgg11_random_weights():
    torch.manual_seed(0)
    vgg = torchvision.models.vgg11(weights=None).eval()
    x = torch.randn(1, 3, 32, 32)
    method = PathwayGradient(vgg, sparsity=0.9)
    pathway = CriticalPathway(vgg).compute(x, target=5, sparsity=0.9)
    assert pathway.num_calls == 10  # 8 conv ReLUs + 2 classifier ReLUs
    grad = method.attribute(x, target=5)
    from test_pathway_architectures import reference_pathway_gradient  # a hand-rewritten copy

    expected, num_calls = reference_pathway_gradient(vgg, x, 5, 0.9)
    assert num_calls == 10
    torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(grad, Saliency(vgg).attribute(x, target=5, abs=False), rtol=1e-3, atol=1e-6)
    assert num_hooks(vgg) == 0


def test_module_types_are_configurable():
    net = seeded(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(),
                               nn.Linear(8, 2)))
    pathway = CriticalPathway(net, module_types=(nn.Tanh, nn.ReLU)).compute(
        torch.randn(2, 4, dtype=torch.float64), target=0, sparsity=0.5)
    assert [type(m) for m in pathway.call_modules] == [nn.Tanh, nn.ReLU]
    # without module_types the Tanh is no unit, the ReLU module is found through F.relu
    pathway = CriticalPathway(net).compute(torch.randn(2, 4, dtype=torch.float64), target=0,
                                           sparsity=0.5)
    assert pathway.call_modules == ["relu"]


# ----------------------------------------------------------------------------------------------
# variants and diagnostics
# ----------------------------------------------------------------------------------------------


def test_random_pathway_control(resnet):
    x = torch.randn(2, 3, 64, 64)

    def random_masks(seed):
        gen = torch.Generator().manual_seed(seed)
        return CriticalPathway(resnet, scoring="random", generator=gen).compute(
            x, target=0, sparsity=0.7)

    first, again, other = random_masks(0), random_masks(0), random_masks(1)
    assert torch.equal(first.flat_masks(), again.flat_masks())
    assert not torch.equal(first.flat_masks(), other.flat_masks())
    taylor = CriticalPathway(resnet).compute(x, target=0, sparsity=0.7)
    assert not torch.equal(first.flat_masks(), taylor.flat_masks())
    torch.testing.assert_close(first.realized_sparsity().float(), torch.full((2,), 0.7), atol=1e-4,
                               rtol=0)


def test_diagnostics_are_exact_against_an_explicitly_masked_mlp():
    net = seeded(SharedReluMLP())
    torch.manual_seed(12)
    x = torch.randn(3, 5, dtype=torch.float64)
    method = PathwayGradient(net, sparsity=0.0)
    _, diag = method.attribute(x, return_diagnostics=True)
    assert torch.equal(diag.realized_sparsity, torch.zeros(3, dtype=torch.float64))
    assert torch.equal(diag.relative_prob_change, torch.zeros(3))
    attr, diag = PathwayGradient(net, sparsity=0.6).attribute(x, return_diagnostics=True)
    m1, m2 = (m.to(x.dtype) for m in diag.pathway.masks)
    predicted = net(x).argmax(1)
    assert torch.equal(diag.target, predicted)
    pruned = net.l3(torch.relu(net.l2(torch.relu(net.l1(x)) * m1)) * m2)
    rows = torch.arange(3)
    expected = torch.softmax(pruned.float(), 1)[rows, predicted]
    torch.testing.assert_close(diag.pruned_target_prob, expected)
    torch.testing.assert_close(diag.target_prob, torch.softmax(net(x).float(), 1)[rows, predicted])
    kept = torch.cat([m1, m2], 1).sum(1)
    torch.testing.assert_close(diag.realized_sparsity, 1 - kept / 22)
    assert diag.num_units == 22 and diag.num_calls == 2 and diag.sparsity == 0.6
    torch.testing.assert_close(attr, _mlp_closed_form(net, x, predicted, m1, m2))
    lean = CriticalPathway(net).compute(x, sparsity=0.6, keep_scores=False)
    assert lean.scores == [] and torch.equal(lean.flat_masks(), diag.pathway.flat_masks())


def test_old_diagnostics_spellings_are_deprecated_aliases():
    net = seeded(SharedReluMLP())
    x = torch.randn(2, 5, dtype=torch.float64)
    method = PathwayGradient(net, sparsity=0.5)
    with pytest.warns(DeprecationWarning, match="pathway"):
        pathway = method.pathway(x, target=1)
    with pytest.warns(DeprecationWarning, match="diagnostics"):
        old = pathway.diagnostics(x)
    _, new = method.attribute(x, target=1, return_diagnostics=True)
    assert torch.equal(pathway.flat_masks(), new.pathway.flat_masks())
    torch.testing.assert_close(old["realized_sparsity"], new.realized_sparsity)
    torch.testing.assert_close(old["relative_prob_change"], new.relative_prob_change)


# ----------------------------------------------------------------------------------------------
# Captum integration
# ----------------------------------------------------------------------------------------------


def test_noise_tunnel_with_zero_noise_equals_plain_call():
    net = seeded(SmallCNN())
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    method = PathwayGradient(net, sparsity=0.7)
    smooth = NoiseTunnel(method).attribute(x, nt_type="smoothgrad", nt_samples=3, stdevs=0.0,
                                           target=1)
    torch.testing.assert_close(smooth, method.attribute(x, target=1), rtol=1e-12, atol=1e-14)
    pruned_ig = PrunedAttribution(IntegratedGradients, net, sparsity=0.7)
    smooth_ig = NoiseTunnel(pruned_ig).attribute(x, nt_samples=2, stdevs=0.0, target=1,
                                                 n_steps=8)
    torch.testing.assert_close(smooth_ig, pruned_ig.attribute(x, target=1, n_steps=8),
                               rtol=1e-10, atol=1e-12)
    squared = NoiseTunnel(method).attribute(x, nt_type="smoothgrad_sq", nt_samples=3, stdevs=0.0,
                                            target=1)
    torch.testing.assert_close(squared, method.attribute(x, target=1) ** 2, rtol=1e-12, atol=1e-14)


def test_captum_metrics_accept_pathway_gradient():
    net = seeded(SmallCNN(), dtype=torch.float32)
    x = torch.randn(2, 3, 8, 8)
    method = PathwayGradient(net, sparsity=0.7)
    attributions = method.attribute(x, target=0)

    infid = infidelity(net, fixed_noise_perturb, x, attributions, target=0, n_perturb_samples=4)
    sens = sensitivity_max(method.attribute, x, perturb_func=fixed_shift, target=0, n_perturb_samples=3)
    torch.testing.assert_close(infid, infidelity_by_hand(net, x, attributions, 0, 4), rtol=1e-4, atol=1e-9)
    torch.testing.assert_close(sens, sensitivity_max_by_hand(method.attribute, x, 3, target=0),
                               rtol=1e-4, atol=1e-6)
    assert bool((sens > 0).all())  # the maps do move with the input
    assert num_hooks(net) == 0


# ----------------------------------------------------------------------------------------------
# model left unchanged
# ----------------------------------------------------------------------------------------------


def _snapshot(model):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            [m.training for m in model.modules()],
            [p.requires_grad for p in model.parameters()])


def _assert_unchanged(model, snapshot):
    state, modes, flags = snapshot
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert num_hooks(model) == 0


@pytest.mark.parametrize("scoring", ["taylor", "neuron_int_grad", "random"])
def test_model_unchanged_after_call(scoring):
    net = seeded(SharedReluMLP()).train()
    net.l1.weight.requires_grad_(False)
    snapshot = _snapshot(net)
    x = torch.randn(3, 5, dtype=torch.float64)
    PathwayGradient(net, sparsity=0.5, scoring=scoring).attribute(x, target=1)
    PrunedAttribution(IntegratedGradients, net, sparsity=0.5, scoring=scoring).attribute(
        x, target=1, n_steps=5)
    _assert_unchanged(net, snapshot)
    assert not x.requires_grad


@pytest.mark.parametrize("fail_at", [1, 2])
def test_model_unchanged_when_forward_raises(fail_at):
    net = seeded(SharedReluMLP())
    net.l1 = nn.Sequential(net.l1, Raiser(fail_at))
    net.train()
    snapshot = _snapshot(net)
    with pytest.raises(RuntimeError, match="boom"):
        PathwayGradient(net, sparsity=0.5).attribute(torch.randn(2, 5, dtype=torch.float64),
                                                    target=0)
    _assert_unchanged(net, snapshot)


def test_applied_removes_hooks_when_body_raises():
    net = seeded(SharedReluMLP())
    x = torch.randn(2, 5, dtype=torch.float64)
    pathway = CriticalPathway(net).compute(x, target=0, sparsity=0.5)
    with pytest.raises(ValueError, match="inside"):
        with pathway.applied():
            assert num_hooks(net) == 2  # root pre-hook + the ReLU hook
            raise ValueError("inside")
    assert num_hooks(net) == 0


# ----------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------


def test_model_without_prunable_activations_is_an_error_except_at_sparsity_zero():
    net = seeded(nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 2)))
    x = torch.randn(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="no prunable activation call"):
        PathwayGradient(net).attribute(x, target=0)
    with pytest.raises(ValueError, match="no prunable"):
        CriticalPathway(net, activations=())
    assert torch.equal(PathwayGradient(net, sparsity=0.0).attribute(x, target=0),
                       Saliency(net).attribute(x, target=0, abs=False))
    assert num_hooks(net) == 0


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_sparsity_outside_unit_interval_is_an_error(bad):
    net = seeded(SharedReluMLP())
    with pytest.raises(ValueError, match="sparsity"):
        PathwayGradient(net, sparsity=bad)
    with pytest.raises(ValueError, match="sparsity"):
        CriticalPathway(net).compute(torch.randn(1, 5, dtype=torch.float64), sparsity=bad)


def test_bad_arguments_name_the_argument():
    net = seeded(SharedReluMLP())
    with pytest.raises(TypeError, match="sparsity"):
        PathwayGradient(net, sparsity="0.5")
    with pytest.raises(ValueError, match="scoring"):
        CriticalPathway(net, scoring="greedy")
    with pytest.raises(ValueError, match="expansion"):
        PrunedAttribution(IntegratedGradients, net, expansion="tile")
    with pytest.raises(TypeError, match="module_types"):
        CriticalPathway(net, module_types=(int,))
    with pytest.raises(TypeError, match="model"):
        CriticalPathway(lambda x: x)
    with pytest.raises(ValueError, match="n_steps"):
        CriticalPathway(net, scoring="neuron_int_grad", n_steps=0)


def test_pathway_applied_to_an_incompatible_batch_is_an_error():
    net = seeded(SharedReluMLP())
    pathway = CriticalPathway(net).compute(torch.randn(2, 5, dtype=torch.float64), target=0,
                                           sparsity=0.5)
    with pytest.raises(RuntimeError, match="multiple of 2"):
        with pathway.applied():
            net(torch.randn(3, 5, dtype=torch.float64))
    assert num_hooks(net) == 0


def test_repeat_interleave_expansion_maps_rows_to_samples():
    net = seeded(SharedReluMLP())
    x = torch.randn(2, 5, dtype=torch.float64)
    pathway = CriticalPathway(net).compute(x, target=0, sparsity=0.5)
    with torch.no_grad():
        with pathway.applied():
            ref = net(x)
            tiled = net(torch.cat([x, x, x]))
        with pathway.applied("repeat_interleave"):
            interleaved = net(x.repeat_interleave(3, dim=0))
    torch.testing.assert_close(tiled, ref.repeat(3, 1))
    torch.testing.assert_close(interleaved, ref.repeat_interleave(3, dim=0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    net = seeded(SmallCNN(), dtype=torch.float32).cuda()
    x = torch.randn(2, 3, 8, 8, device="cuda")
    grad = PathwayGradient(net, sparsity=0.7).attribute(x, target=1)
    assert grad.device.type == "cuda" and torch.isfinite(grad).all()


@pytest.mark.parametrize("module", [pathway_module, pathway_gradient_module])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# ----------------------------------------------------------------------------------------------
# other Captum methods on the pruned network, benchmark rows
# ----------------------------------------------------------------------------------------------


def test_pruned_guided_backprop_and_layer_gradcam_reduce_to_captum_at_sparsity_zero():
    from captum.attr import GuidedBackprop, LayerGradCam

    net = seeded(SmallCNN())
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    ours = PrunedAttribution(GuidedBackprop, net, sparsity=0.0).attribute(x, target=3)
    assert torch.equal(ours, GuidedBackprop(net).attribute(x, target=3))
    pruned = PrunedAttribution(GuidedBackprop, net, sparsity=0.8).attribute(x, target=3)
    assert not torch.allclose(pruned, ours)
    cam = PrunedAttribution(lambda f: LayerGradCam(f, net.c2), net, sparsity=0.0)
    assert torch.equal(cam.attribute(x, target=3), LayerGradCam(net, net.c2).attribute(x, 3))
    assert num_hooks(net) == 0


def test_benchmark_rows_are_registered_and_explain_stamp_images():
    from captum_ext.benchmark.registry import available_methods
    from captum_ext.data.classifier import StampNet

    methods = available_methods()
    for name in ("PathwayGradient", "PrunedIG", "PathwayGradient@0.5", "PathwayGradient-random",
                 "PathwayGradient-NIG"):
        assert methods[name].group == "pruning"
    assert methods["PathwayGradient"].default and not methods["PathwayGradient@0.5"].default
    assert not methods["PathwayGradient-paper"].default
    torch.manual_seed(0)
    net = StampNet(num_classes=5).eval()
    x, t = torch.rand(2, 3, 32, 32), torch.tensor([1, 4])
    maps = methods["PathwayGradient"].build(net)(x, t)
    torch.testing.assert_close(maps, PathwayGradient(net).attribute(x, target=t), rtol=0, atol=0)
    random_maps = methods["PathwayGradient-random"].build(net)(x, t)
    assert random_maps.shape == x.shape and not torch.allclose(random_maps, maps)
    assert num_hooks(net) == 0


def test_noise_tunnel_inside_the_pruning_keeps_the_clean_pathway_with_interleaved_rows():
    net = seeded(SmallCNN())
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    reference = PathwayGradient(net, sparsity=0.7).attribute(x, target=1)

    def smooth(expansion):
        method = PrunedAttribution(lambda f: NoiseTunnel(Saliency(f)), net, sparsity=0.7,
                                   expansion=expansion)
        return method.attribute(x, target=1, nt_samples=4, stdevs=0.0, abs=False)

    # NoiseTunnel stacks the copies of each sample together: rows map by repeat_interleave
    torch.testing.assert_close(smooth("repeat_interleave"), reference, rtol=1e-12, atol=1e-14)
    assert not torch.allclose(smooth("repeat"), reference)


class AddOneInplace(nn.Module):
    def __init__(self, inplace):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return x.add_(1.0) if self.inplace else x + 1.0


def test_later_inplace_op_on_a_recorded_activation_does_not_corrupt_scores():
    def net(inplace):
        torch.manual_seed(11)
        return seeded(nn.Sequential(nn.Linear(4, 6), nn.GELU(), AddOneInplace(inplace),
                                    nn.Linear(6, 3)))

    x = torch.randn(3, 4, dtype=torch.float64)
    ours = CriticalPathway(net(True), module_types=(nn.GELU,)).compute(x, target=1, sparsity=0.5)
    ref = CriticalPathway(net(False), module_types=(nn.GELU,)).compute(x, target=1, sparsity=0.5)
    torch.testing.assert_close(ours.scores[0], ref.scores[0], rtol=1e-12, atol=1e-14)
    assert torch.equal(ours.flat_masks(), ref.flat_masks())
