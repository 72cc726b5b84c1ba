"""Tests of captum_ext.attr.NeFLAG: closed forms from docs/neflag.md, batching, Captum interplay."""

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from captum_ext._utils import num_hooks
from captum_ext.attr import NeFLAG

SAMPLINGS = ["antithetic", "flip", "descent"]


def _linear(d: int, zero=(), seed: int = 0, outputs: int = 3) -> nn.Linear:
    torch.manual_seed(seed)
    net = nn.Linear(d, outputs).double()
    with torch.no_grad():
        for j in zero:
            net.weight[:, j] = 0.0
    return net


def _mlp(d: int = 6, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Linear(16, 3)).double()


class _Quadratic(nn.Module):
    """f(x) = x^T Q x / 2 per sample, a scalar output per sample."""

    def __init__(self, q: torch.Tensor) -> None:
        super().__init__()
        self.q = q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * torch.einsum("bi,ij,bj->b", x, self.q, x)


class _Negated(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.net(x)


# --- closed forms -----------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [0.1, 0.7])
def test_linear_axis_directions_closed_forms(eps, device, dtype, tolerance):
    d, zero = 7, (2, 5)
    net = _linear(d, zero).to(device, dtype)
    w = net.weight[1].detach()
    k = int((w != 0).sum())
    x = torch.randn(4, d, dtype=torch.float64).to(device, dtype)
    axes = torch.eye(d, dtype=dtype, device=device)
    rtol, atol = tolerance(dtype)
    dec, diag = NeFLAG(net).attribute(x, target=1, directions=axes, eps=eps,
                                      sampling="antithetic", aggregation="decomposition",
                                      return_diagnostics=True)
    vec = NeFLAG(net).attribute(x, target=1, directions=axes, eps=eps, sampling="antithetic",
                                aggregation="vector")
    assert dec.dtype == dtype and dec.device.type == device.type
    torch.testing.assert_close(dec, (eps * w.abs() / k).expand(4, d), rtol=rtol, atol=atol)
    torch.testing.assert_close(vec, (w / k).expand(4, d), rtol=rtol, atol=atol)
    assert diag.n_kept.tolist() == [k] * 4
    assert diag.n_gradients.tolist() == [2 * d] * 4
    torch.testing.assert_close(diag.mean_flux, torch.full((4,), -float(w.abs().sum()) / k,
                                                          dtype=dtype, device=device),
                               rtol=rtol, atol=atol)


def test_linear_each_antithetic_pair_keeps_one_member():
    net = _linear(9)
    x = torch.randn(3, 9, dtype=torch.float64)
    _, diag = NeFLAG(net).attribute(x, target=0, n=13, generator=1, sampling="antithetic",
                                    return_diagnostics=True)
    assert diag.n_kept.tolist() == [13, 13, 13]
    assert diag.n_gradients.tolist() == [26, 26, 26]


def test_linear_flip_equals_antithetic_and_spends_fewer_gradients():
    net = _linear(9)
    x = torch.randn(3, 9, dtype=torch.float64)
    dirs = torch.randn(11, 9, dtype=torch.float64)
    anti = NeFLAG(net).attribute(x, target=0, directions=dirs, sampling="antithetic")
    flip, diag = NeFLAG(net).attribute(x, target=0, directions=dirs, sampling="flip",
                                       return_diagnostics=True)
    torch.testing.assert_close(flip, anti)
    positive = int((dirs @ net.weight[0].detach() > 0).sum())
    assert diag.n_gradients.tolist() == [11 + positive] * 3
    assert diag.n_kept.tolist() == [11] * 3


def test_linear_descent_with_large_step_converges_to_gradient():
    net = _linear(6)
    w = net.weight[2].detach()
    x = torch.randn(2, 6, dtype=torch.float64)
    vec, diag = NeFLAG(net).attribute(x, target=2, n=5, sampling="descent", m=2,
                                      step_size=1e7, aggregation="vector", generator=0,
                                      return_diagnostics=True)
    torch.testing.assert_close(vec, w.expand(2, 6), atol=1e-5, rtol=1e-5)
    dec = NeFLAG(net).attribute(x, target=2, n=5, sampling="descent", m=2, step_size=1e7,
                                aggregation="decomposition", generator=0, eps=0.3)
    torch.testing.assert_close(dec, (0.3 * w * w / w.norm()).expand(2, 6), atol=1e-5, rtol=1e-5)
    assert diag.n_gradients.tolist() == [10, 10]


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_ignored_features_get_exactly_zero(sampling):
    torch.manual_seed(0)
    inner = _mlp(4)

    def model(x):
        return inner(x[:, :4]) + 0.0 * x[:, 4:].sum(1, keepdim=True)

    x = torch.randn(5, 7, dtype=torch.float64)
    attr = NeFLAG(model).attribute(x, target=1, n=6, sampling=sampling,
                                   aggregation="decomposition", generator=3)
    assert torch.equal(attr[:, 4:], torch.zeros(5, 3, dtype=torch.float64))
    assert attr[:, :4].abs().sum() > 0


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_sum_equals_eps_times_mean_absolute_flux(sampling, device, dtype, tolerance):
    net = _mlp(6).to(device, dtype)
    x = torch.randn(4, 6, dtype=torch.float64).to(device, dtype)
    rtol, atol = tolerance(dtype)
    attr, diag = NeFLAG(net).attribute(x, target=0, n=9, eps=0.4, sampling=sampling,
                                       aggregation="decomposition", generator=2,
                                       return_diagnostics=True)
    assert bool((diag.n_kept > 0).all()) and bool((diag.mean_flux < 0).all())
    assert attr.dtype == dtype and attr.device.type == device.type
    torch.testing.assert_close(attr.sum(1), 0.4 * diag.mean_flux.abs(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("eps", [0.05, 1.3])
def test_quadratic_mean_flux_over_sphere_is_eps_trace_over_d(eps, device, dtype, tolerance):
    d = 5
    torch.manual_seed(0)
    a = torch.randn(d, d, dtype=torch.float64)
    q = a + a.T  # indefinite symmetric
    basis, _ = torch.linalg.qr(torch.randn(d, d, dtype=torch.float64))
    x = torch.randn(3, d, dtype=torch.float64)
    # the oracle eps * tr(Q) / d is computed in float64 from the same Q
    expected = torch.full((3,), eps * float(torch.trace(q)) / d, dtype=dtype, device=device)
    q, basis, x = (t.to(device, dtype) for t in (q, basis, x))
    _, diag = NeFLAG(_Quadratic(q)).attribute(x, directions=basis.T.contiguous(), eps=eps,
                                              sampling="antithetic", return_diagnostics=True)
    rtol, atol = tolerance(dtype)
    assert diag.sphere_flux.dtype == dtype and diag.sphere_flux.device.type == device.type
    torch.testing.assert_close(diag.sphere_flux, expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("sampling", ["antithetic", "flip"])
def test_f_and_minus_f_give_same_decomposition(sampling):
    net = _linear(8)
    x = torch.randn(3, 8, dtype=torch.float64)
    pos = NeFLAG(net).attribute(x, target=0, n=7, sampling=sampling,
                                aggregation="decomposition", generator=5)
    neg = NeFLAG(_Negated(net)).attribute(x, target=0, n=7, sampling=sampling,
                                          aggregation="decomposition", generator=5)
    torch.testing.assert_close(pos, neg)
    vec_pos = NeFLAG(net).attribute(x, target=0, n=7, sampling=sampling, aggregation="vector",
                                    generator=5)
    vec_neg = NeFLAG(_Negated(net)).attribute(x, target=0, n=7, sampling=sampling,
                                              aggregation="vector", generator=5)
    torch.testing.assert_close(vec_pos, -vec_neg)


def test_tuple_inputs_share_one_joint_sphere():
    d1, d2 = 3, 4
    net = _mlp(d1 + d2)
    x = torch.randn(2, d1 + d2, dtype=torch.float64)
    dirs = torch.randn(6, d1 + d2, dtype=torch.float64)
    joint = NeFLAG(net).attribute(x, target=2, directions=dirs)

    def split_model(a, b):
        return net(torch.cat([a, b], 1))

    parts = NeFLAG(split_model).attribute((x[:, :d1], x[:, d1:]), target=2,
                                          directions=(dirs[:, :d1], dirs[:, d1:]))
    assert isinstance(parts, tuple) and len(parts) == 2
    torch.testing.assert_close(torch.cat(parts, 1), joint)


# --- batching and reproducibility ----------------------------------------------------------


@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("aggregation", ["decomposition", "vector"])
def test_batched_equals_one_at_a_time(sampling, per_sample, aggregation):
    net = _mlp(6)
    x = torch.randn(4, 6, dtype=torch.float64)
    target = torch.tensor([0, 2, 1, 2])
    dirs = torch.randn(4, 5, 6, dtype=torch.float64) if per_sample else \
        torch.randn(5, 6, dtype=torch.float64)
    m = {"antithetic": None, "flip": 1, "descent": 3}[sampling]
    method = NeFLAG(net)
    batched = method.attribute(x, target=target, directions=dirs, sampling=sampling, m=m,
                               aggregation=aggregation)
    single = torch.cat([
        method.attribute(x[i:i + 1], target=int(target[i]),
                         directions=dirs[i:i + 1] if per_sample else dirs,
                         sampling=sampling, m=m, aggregation=aggregation)
        for i in range(4)
    ])
    torch.testing.assert_close(batched, single)
    for ibs in (1, 3, 8):
        chunked = method.attribute(x, target=target, directions=dirs, sampling=sampling, m=m,
                                   aggregation=aggregation, internal_batch_size=ibs)
        torch.testing.assert_close(chunked, batched)


def test_seeded_runs_repeat_exactly_and_ignore_internal_batch_size():
    net = _mlp(6)
    x = torch.randn(3, 6, dtype=torch.float64)
    method = NeFLAG(net)
    a = method.attribute(x, target=1, n=10, generator=7)
    b = method.attribute(x, target=1, n=10, generator=torch.Generator().manual_seed(7))
    c = method.attribute(x, target=1, n=10, generator=7, internal_batch_size=4)
    d = method.attribute(x, target=1, n=10, generator=8)
    assert torch.equal(a, b)
    torch.testing.assert_close(a, c)
    assert not torch.allclose(a, d)


def test_additional_forward_args_follow_their_sample():
    torch.manual_seed(0)
    net = _mlp(6)

    def model(x, scale, shift):
        return net(x * scale) + shift

    x = torch.randn(3, 6, dtype=torch.float64)
    scale = torch.tensor([[1.0], [2.0], [-0.5]], dtype=torch.float64)
    dirs = torch.randn(4, 6, dtype=torch.float64)
    method = NeFLAG(model)
    batched = method.attribute(x, target=[0, 1, 2], additional_forward_args=(scale, 0.5),
                               directions=dirs, sampling="flip", internal_batch_size=5)
    single = torch.cat([
        method.attribute(x[i:i + 1], target=i, additional_forward_args=(scale[i:i + 1], 0.5),
                         directions=dirs, sampling="flip")
        for i in range(3)
    ])
    torch.testing.assert_close(batched, single)


def test_flip_rounds_resample_when_both_antipodes_are_positive():
    q = torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64))  # saddle at 0
    x = torch.zeros(1, 2, dtype=torch.float64)
    e1 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)  # phi = +eps at both e1 and -e1
    method = NeFLAG(_Quadratic(q))
    with pytest.warns(UserWarning, match="kept no negative-flux point"):
        attr, diag = method.attribute(x, directions=e1, sampling="flip", return_diagnostics=True)
    assert torch.equal(attr, torch.zeros_like(attr)) and diag.n_kept.tolist() == [0]
    assert diag.n_gradients.tolist() == [2] and math.isnan(float(diag.mean_flux[0]))
    attr, diag = method.attribute(x, directions=e1, sampling="flip", m=8, generator=0,
                                  return_diagnostics=True)
    assert diag.n_kept.tolist() == [1] and diag.n_gradients.tolist()[0] > 2
    assert float(diag.mean_flux[0]) < 0


def test_warns_and_returns_zero_when_nothing_is_kept():
    def constant(x):
        return x.sum(1, keepdim=True) * 0.0

    x = torch.randn(2, 4)
    with pytest.warns(UserWarning, match=r"sample\(s\) \[0, 1\]"):
        attr = NeFLAG(constant).attribute(x, target=0, n=3, generator=0)
    assert torch.equal(attr, torch.zeros_like(attr))


def test_clamp_keeps_points_in_range():
    seen = []
    net = _mlp(5)

    def model(x):
        seen.append((float(x.detach().min()), float(x.detach().max())))
        return net(x)

    x = torch.rand(3, 5, dtype=torch.float64)
    attr, diag = NeFLAG(model).attribute(x, target=0, n=6, eps=0.5, clamp=(0.0, 1.0),
                                         aggregation="decomposition", generator=0,
                                         return_diagnostics=True)
    assert min(lo for lo, _ in seen) >= 0.0 and max(hi for _, hi in seen) <= 1.0
    # the decomposition still sums to eps * mean |phi| with the actual displacement as normal
    torch.testing.assert_close(attr.sum(1), 0.5 * diag.mean_flux.abs())


# --- Captum interplay -------------------------------------------------------------------------


def _tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(16, 5)).eval()


def _flat_linear() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(48, 5)).double()


# NeFLAG on a linear model with the 48 axes as directions (antithetic, decomposition) is
# eps * |w_target| / 48 whatever the input: the closed form of test_linear_axis_directions
AXES = dict(directions=torch.eye(48, dtype=torch.float64).view(48, 3, 4, 4), eps=0.2,
            sampling="antithetic", aggregation="decomposition")


def test_noise_tunnel():
    # NoiseTunnel hands NeFLAG a batch of B * nt_samples noisy copies and an expanded target;
    # each copy's map is the closed form of its own example's target
    from captum.attr import NoiseTunnel

    net = _flat_linear()
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    target = [1, 3]
    attr = NoiseTunnel(NeFLAG(net)).attribute(x, nt_type="smoothgrad", nt_samples=3,
                                              stdevs=0.1, target=target, **AXES)
    w = net[1].weight.detach()[target].view(2, 3, 4, 4)
    torch.testing.assert_close(attr, 0.2 * w.abs() / 48)


def test_sensitivity_max():
    # sensitivity_max calls attribute on n_perturb_samples perturbed copies per example with
    # an expanded target: the closed form does not depend on x, so the sensitivity is 0 (a
    # copy explained for the other example's target would give a positive number)
    from captum.metrics import sensitivity_max

    net = _flat_linear()
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    sens = sensitivity_max(NeFLAG(net).attribute, x, target=[1, 3], n_perturb_samples=3, **AXES)
    torch.testing.assert_close(sens, torch.zeros(2, dtype=torch.float64))


# --- bad input and model state ------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(eps=0.0), ValueError, "eps"),
    (dict(eps=-1.0), ValueError, "eps"),
    (dict(eps=float("inf")), ValueError, "eps"),
    (dict(n=0), ValueError, "`n`"),
    (dict(n=2.5), TypeError, "`n`"),
    (dict(sampling="sobol"), ValueError, "sampling"),
    (dict(aggregation="sum"), ValueError, "aggregation"),
    (dict(sampling="antithetic", m=2), ValueError, "`m`"),
    (dict(sampling="descent", m=0), ValueError, "`m`"),
    (dict(directions=torch.randn(3, 5)), ValueError, "directions"),
    (dict(directions=torch.randn(2, 3, 5)), ValueError, "directions"),
    (dict(directions=torch.zeros(3, 4)), ValueError, "zero direction"),
    (dict(directions=(torch.randn(3, 4), torch.randn(3, 4))), ValueError, "one tensor per input"),
    (dict(directions=torch.randn(3, 4), n=4), ValueError, "disagrees"),
    (dict(generator="seed"), TypeError, "generator"),
    (dict(clamp=(1.0, 0.0)), ValueError, "clamp"),
    (dict(internal_batch_size=0), ValueError, "internal_batch_size"),
    (dict(step_size=0.0), ValueError, "step_size"),
])
def test_bad_arguments(kwargs, error, match):
    net = nn.Linear(4, 2)
    with pytest.raises(error, match=match):
        NeFLAG(net).attribute(torch.randn(2, 4), target=0, **kwargs)


def test_integer_inputs_rejected():
    with pytest.raises(TypeError, match="floating-point"):
        NeFLAG(nn.Linear(4, 2)).attribute(torch.ones(2, 4, dtype=torch.long), target=0)


class _Flaky(nn.Module):
    """Raises on its ``fail_at``-th forward call."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))
        self.calls, self.fail_at = 0, fail_at

    def forward(self, x):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("boom")
        return self.body(x)


@pytest.mark.parametrize("fail_at", [None, 2])
def test_model_state_unchanged(fail_at):
    net = _Flaky(fail_at or 10**9).train()
    net.body[0].weight.requires_grad_(False)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    flags = [p.requires_grad for p in net.parameters()]
    x = torch.randn(3, 4)
    hooks = num_hooks(net)
    call = lambda: NeFLAG(net).attribute(x, target=0, n=4, generator=0,  # noqa: E731
                                         internal_batch_size=6)
    if fail_at is None:
        call()
    else:
        with pytest.raises(RuntimeError, match="boom"):
            call()
    assert net.training and all(m.training for m in net.modules())
    assert [p.requires_grad for p in net.parameters()] == flags
    assert num_hooks(net) == hooks
    assert not x.requires_grad and x.grad is None
    assert all(p.grad is None for p in net.parameters())
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    net = _mlp(6)
    x = torch.randn(3, 6, dtype=torch.float64)
    cpu = NeFLAG(net).attribute(x, target=0, n=5, generator=0, sampling="flip")
    gpu = NeFLAG(net.cuda()).attribute(x.cuda(), target=0, n=5, generator=0, sampling="flip")
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu)


def test_benchmark_rows_registered_and_reproducible():
    from captum_ext.benchmark.registry import available_methods

    rows = {k: v for k, v in available_methods().items() if v.group == "neflag"}
    assert {"NeFLAG(antithetic)", "NeFLAG(flip)", "NeFLAG(descent)"} <= set(rows)
    net = _tiny_cnn()
    x, target = torch.rand(2, 3, 8, 8), torch.tensor([0, 3])
    for name, spec in rows.items():
        first = spec.build(net)(x, target)
        again = spec.build(net)(x, target)
        assert torch.equal(first, again)
        # each row is NeFLAG with the settings its name and the module docstring give
        sampling, _, aggregation = name[len("NeFLAG("):-1].partition(",")
        expected = NeFLAG(net).attribute(x, target=target, n=20, eps=0.1, sampling=sampling,
                                         aggregation=aggregation or "decomposition",
                                         generator=0)
        torch.testing.assert_close(first, expected, msg=name)


# --- issue 16: an example's map never depends on the rest of the batch ---------------------


@pytest.mark.parametrize("sampling, m", [("antithetic", None), ("flip", 3), ("descent", 3)])
def test_seeded_map_does_not_depend_on_batch_composition(sampling, m):
    # regression: directions used to be drawn per batch row, so one-at-a-time differed
    net = _mlp(6)
    x = torch.randn(5, 6, dtype=torch.float64)
    target = torch.tensor([0, 2, 1, 2, 0])
    method = NeFLAG(net)
    kw = dict(n=6, sampling=sampling, m=m, aggregation="decomposition", generator=11)
    batched = method.attribute(x, target=target, **kw)
    single = torch.cat([method.attribute(x[i:i + 1], target=int(target[i]), **kw)
                        for i in range(5)])
    torch.testing.assert_close(batched, single)
    order = torch.tensor([3, 0, 4])
    subset = method.attribute(x[order], target=target[order], internal_batch_size=4, **kw)
    torch.testing.assert_close(subset, batched[order])


def test_flip_fresh_draws_do_not_depend_on_batch_or_internal_batch_size():
    # a saddle: both antipodes of e1 have positive flux, so rounds > 0 draw fresh directions
    q = torch.diag(torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64))
    method = NeFLAG(_Quadratic(q))
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.01
    kw = dict(n=5, sampling="flip", m=4, generator=2, aggregation="decomposition")
    batched, diag = method.attribute(x, return_diagnostics=True, **kw)
    assert bool((diag.n_gradients > 2 * 5).all())  # one round spends at most 2n: fresh rounds ran
    for ibs in (1, 3):
        torch.testing.assert_close(method.attribute(x, internal_batch_size=ibs, **kw), batched)
    single = torch.cat([method.attribute(x[i:i + 1], **kw) for i in range(4)])
    torch.testing.assert_close(single, batched)


def test_a_generator_object_advances_and_an_int_seed_does_not():
    net = _mlp(6)
    x = torch.randn(2, 6, dtype=torch.float64)
    method = NeFLAG(net)
    gen = torch.Generator().manual_seed(4)
    first = method.attribute(x, target=0, n=4, generator=gen)
    second = method.attribute(x, target=0, n=4, generator=gen)
    assert not torch.allclose(first, second)
    torch.testing.assert_close(method.attribute(x, target=0, n=4, generator=4), first)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(batch=st.integers(2, 5), seed=st.integers(0, 2**31), data=st.data())
def test_property_batched_equals_one_at_a_time(batch, seed, data):
    net = _mlp(4)
    x = torch.randn(batch, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    targets = data.draw(st.lists(st.integers(0, 2), min_size=batch, max_size=batch))
    form = data.draw(st.sampled_from(["list", "tensor", "int"]))
    sampling = data.draw(st.sampled_from(SAMPLINGS))
    target = {"list": targets, "tensor": torch.tensor(targets), "int": targets[0]}[form]
    kw = dict(n=3, sampling=sampling, generator=seed, aggregation="decomposition")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a sample may keep no point
        batched = NeFLAG(net).attribute(x, target=target, **kw)
        single = torch.cat([
            NeFLAG(net).attribute(x[i:i + 1], target=targets[i] if form != "int" else targets[0],
                                  **kw)
            for i in range(batch)
        ])
    torch.testing.assert_close(batched, single)


# --- issue 13: bad input is refused, never silently used ---------------------------------


@pytest.mark.parametrize("target", [[0, 1, 2], torch.tensor([0, 1, 2]), [0]])
def test_target_with_wrong_length_raises(target):
    # regression: a target longer than the batch used to be truncated silently
    with pytest.raises(ValueError, match="`target` has"):
        NeFLAG(nn.Linear(4, 3)).attribute(torch.randn(2, 4), target=target, n=2, generator=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(step_size=float("nan")), "step_size"),
    (dict(step_size=float("inf")), "step_size"),
    (dict(eps=float("nan")), "eps"),
    (dict(clamp=(float("nan"), 1.0)), "clamp"),
])
def test_nan_and_inf_parameters_are_refused(kwargs, match):
    # regression: step_size=nan silently acted as m=1
    with pytest.raises(ValueError, match=match):
        NeFLAG(nn.Linear(4, 2)).attribute(torch.randn(2, 4), target=0, n=2, generator=0,
                                          sampling="descent", **kwargs)


def test_nan_inputs_and_directions_are_refused():
    x = torch.randn(2, 4)
    x[1, 2] = float("nan")
    with pytest.raises(ValueError, match="`inputs` contains NaN"):
        NeFLAG(nn.Linear(4, 2)).attribute(x, target=0, n=2, generator=0)
    with pytest.raises(ValueError, match=r"`inputs\[1\]` contains NaN"):
        NeFLAG(lambda a, b: a @ torch.ones(4, 2) + b @ torch.ones(4, 2)).attribute(
            (torch.randn(2, 4), x), target=0, n=2, generator=0)
    d = torch.randn(3, 4)
    d[0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"`directions\[0\]` contains NaN"):
        NeFLAG(nn.Linear(4, 2)).attribute(torch.randn(2, 4), target=0, directions=d)


def test_misaligned_additional_forward_args_raise():
    def model(x, scale):
        return x * scale

    with pytest.raises(ValueError, match=r"`additional_forward_args\[0\]` has first dimension"):
        NeFLAG(model).attribute(torch.randn(2, 4), target=0, n=2, generator=0,
                                additional_forward_args=(torch.ones(3, 1),))


def test_empty_batch_returns_empty_maps_and_runs_no_model():
    calls = []

    def model(a, b):
        calls.append(1)
        return a + b

    attr, diag = NeFLAG(model).attribute((torch.zeros(0, 4), torch.zeros(0, 4)), target=0,
                                         n=2, generator=0, return_diagnostics=True)
    assert [tuple(a.shape) for a in attr] == [(0, 4), (0, 4)] and not calls
    assert diag.n_kept.shape == (0,) and diag.mean_flux.shape == (0,)


class _Meddling(nn.Module):
    """Switches itself to eval, adds a hook and freezes a weight, then raises."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x):
        self.eval()
        self.lin.register_forward_hook(lambda *a: None)
        self.lin.weight.requires_grad_(False)
        raise RuntimeError("boom")


def test_model_state_restored_when_forward_changes_it_and_raises():
    net = _Meddling().train()
    with pytest.raises(RuntimeError, match="boom"):
        NeFLAG(net).attribute(torch.randn(2, 4), target=0, n=2, generator=0)
    assert net.training and net.lin.training and num_hooks(net) == 0
    assert net.lin.weight.requires_grad


# --- issue 14: the diagnostics pattern ----------------------------------------------------


def test_diagnostics_are_a_frozen_dataclass_that_still_unpacks():
    import dataclasses
    import typing

    x = torch.randn(2, 4, dtype=torch.float64)
    _, diag = NeFLAG(_linear(4)).attribute(x, target=0, n=3, generator=0,
                                           return_diagnostics=True)
    assert dataclasses.is_dataclass(diag)
    with pytest.raises(dataclasses.FrozenInstanceError):
        diag.n_kept = torch.zeros(2)
    n_kept, mean_flux, n_gradients, sphere_flux = diag
    assert n_kept is diag.n_kept and sphere_flux is diag.sphere_flux
    if hasattr(typing, "get_overloads"):  # Python >= 3.11
        assert len(typing.get_overloads(NeFLAG.attribute)) == 2


def test_warning_points_at_the_caller():
    def constant(x):
        return x.sum(1, keepdim=True) * 0.0

    with pytest.warns(UserWarning, match="kept no negative-flux point") as record:
        NeFLAG(constant).attribute(torch.randn(2, 4), target=0, n=2, generator=0)
    assert record[0].filename == __file__
