"""IProp as a Captum Attribution: composition with Captum methods, metrics and bad input."""

import dataclasses
import typing
import warnings

import pytest
import torch
from captum.attr import (
    FeatureAblation,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Saliency,
)
from captum.metrics import infidelity, sensitivity_max
from captum_metric_oracles import fixed_noise_perturb, fixed_shift, infidelity_by_hand, sensitivity_max_by_hand
from torch import nn

from captum_ext._utils import num_hooks
from captum_ext.attr import IProp, IPropDiagnostics, propagate
from captum_ext.propagate import min_max_scale


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        nn.Linear(64, 3),
    ).eval()


def _images(batch=2, size=12, seed=1):
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


class _TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = _net(0), _net(1)

    def forward(self, x, y):
        return self.a(x) + self.b(y)


class _Raises(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)

    def forward(self, x):
        raise RuntimeError("boom")


def test_equals_propagate_of_the_base_attribution(device, dtype, tolerance):
    net, x = _net().to(device, dtype), _images().to(device, dtype)
    iprop = IProp(Saliency(net), gamma=0.8, sigma_c=0.2)
    out = iprop.attribute(x, target=1)
    base = Saliency(net).attribute(x, target=1)
    expected = propagate(base, min_max_scale(x), gamma=0.8, sigma_c=0.2)
    assert out.dtype == dtype and out.device.type == device.type
    rtol, atol = tolerance(dtype)
    torch.testing.assert_close(out, expected, rtol=rtol, atol=atol)
    assert out.shape == x.shape


def test_gamma_zero_returns_the_base_method(device, dtype):
    net, x = _net().to(device, dtype), _images().to(device, dtype)
    base = IntegratedGradients(net).attribute(x, target=0, n_steps=8)
    out = IProp(IntegratedGradients(net), gamma=0.0).attribute(x, target=0, n_steps=8)
    assert torch.equal(out, base)


@pytest.mark.parametrize("solver,operator", [("cg", "csr"), ("value_iteration", "stencil")])
def test_solver_and_operator_options_agree(solver, operator):
    net, x = _net(), _images()
    reference = IProp(Saliency(net), tol=1e-6).attribute(x, target=2)
    other = IProp(Saliency(net), tol=1e-6, solver=solver, operator=operator)
    scale = reference.abs().amax()
    assert float((other.attribute(x, target=2) - reference).abs().max() / scale) < 1e-4


def test_reward_modes_and_rescale():
    x = _images()
    maps = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    guide = min_max_scale(x)
    summed = propagate(maps, guide, reward="sum")
    assert summed.shape == maps.shape and torch.equal(summed[:, 0], summed[:, 2])
    torch.testing.assert_close(summed[:, :1], propagate(maps.sum(1, keepdim=True), guide))
    torch.testing.assert_close(propagate(maps, guide, reward="abs"), propagate(maps.abs(), guide))
    raw = propagate(maps, guide, rescale=False, gamma=0.7)
    torch.testing.assert_close(0.3 * raw, propagate(maps, guide, gamma=0.7))


def test_perturbation_base_method(device, dtype, tolerance):
    net, x = _net().to(device, dtype), _images().to(device, dtype)
    mask = torch.arange(9, device=device).view(3, 3).repeat_interleave(4, 0).repeat_interleave(4, 1)
    kwargs = dict(target=1, feature_mask=mask.view(1, 1, 12, 12))
    out = IProp(FeatureAblation(net)).attribute(x, **kwargs)
    base = FeatureAblation(net).attribute(x, **kwargs)
    assert out.dtype == dtype and out.device.type == device.type
    rtol, atol = tolerance(dtype)
    torch.testing.assert_close(out, propagate(base, min_max_scale(x)), rtol=rtol, atol=atol)


def test_low_resolution_layer_maps_are_upsampled(device, dtype, tolerance):
    net, x = _net().to(device, dtype), _images().to(device, dtype)
    gradcam = LayerGradCam(net, net[2])  # the pooled 4x4 layer
    low = gradcam.attribute(x, target=0)
    assert low.shape[2:] == (4, 4)
    out = IProp(gradcam).attribute(x, target=0)
    upsampled = LayerAttribution.interpolate(low, (12, 12), "bilinear")
    assert out.shape == (2, 1, 12, 12)
    assert out.dtype == dtype and out.device.type == device.type
    rtol, atol = tolerance(dtype)
    torch.testing.assert_close(out, propagate(upsampled, min_max_scale(x)), rtol=rtol, atol=atol)


def test_tuple_inputs_with_their_own_guides():
    model = _TwoInputs().eval()
    x, y = _images(seed=3), _images(seed=4)
    guides = (torch.zeros(2, 1, 12, 12), torch.ones(1, 3, 12, 12))  # flat: plain averaging
    out = IProp(Saliency(model)).attribute((x, y), guide=guides, target=0)
    base = Saliency(model).attribute((x, y), target=0)
    assert isinstance(out, tuple) and len(out) == 2
    torch.testing.assert_close(out[0], propagate(base[0], guides[0]))
    torch.testing.assert_close(out[1], propagate(base[1], guides[1].expand(2, 3, 12, 12)))


def test_batched_equals_one_by_one():
    net, x = _net(), _images(batch=3)
    iprop = IProp(Saliency(net), tol=1e-6)
    batched = iprop.attribute(x, target=torch.tensor([0, 1, 2]))
    for i in range(3):
        single = iprop.attribute(x[i : i + 1], target=i)
        torch.testing.assert_close(batched[i : i + 1], single, rtol=1e-4, atol=1e-5)


def test_inside_noise_tunnel_with_a_guide():
    net, x = _net(), _images()
    iprop = IProp(Saliency(net))
    # no noise: every sample is the input, so the mean is IProp itself
    tunnel = NoiseTunnel(iprop).attribute(x, nt_samples=3, stdevs=0.0, target=1, guide=x)
    torch.testing.assert_close(tunnel, iprop.attribute(x, target=1, guide=x))
    torch.manual_seed(0)
    noisy = NoiseTunnel(iprop).attribute(x, nt_samples=4, nt_type="smoothgrad_sq", target=1,
                                         guide=x)
    # the oracle: the same noise, each sample propagated over the clean guide, then squared
    torch.manual_seed(0)
    samples = x.repeat_interleave(4, 0) + torch.normal(0, 1.0, (8, 3, 12, 12))
    base = Saliency(net).attribute(samples, target=1)
    expected = propagate(base, x.repeat_interleave(4, 0)).square().view(2, 4, 3, 12, 12).mean(1)
    torch.testing.assert_close(noisy, expected)


def test_iprop_around_noise_tunnel_propagates_the_smoothed_map_over_the_clean_image():
    """Issue 15.3: the recommended composition IProp(NoiseTunnel(base)) smooths first, then
    propagates over the clean inputs (the default guide)."""
    net, x = _net(), _images()
    torch.manual_seed(0)
    out = IProp(NoiseTunnel(Saliency(net))).attribute(x, nt_samples=4, stdevs=0.5, target=1)
    torch.manual_seed(0)
    smoothed = NoiseTunnel(Saliency(net)).attribute(x, nt_samples=4, stdevs=0.5, target=1)
    torch.testing.assert_close(out, propagate(smoothed, min_max_scale(x)))
    outer = IProp(NoiseTunnel(Saliency(net))).attribute(x, nt_samples=2, stdevs=0.0, target=1)
    torch.testing.assert_close(outer, IProp(Saliency(net)).attribute(x, target=1))


def test_noise_tunnel_around_iprop_without_a_guide_warns():
    """NoiseTunnel(IProp) would build each graph from noisy inputs: the user is told."""
    net, x = _net(), _images()
    with pytest.warns(UserWarning, match=r"IProp\(NoiseTunnel\(base_method\)\)"):
        NoiseTunnel(IProp(Saliency(net))).attribute(x, nt_samples=2, target=1)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*NoiseTunnel.*")
        NoiseTunnel(IProp(Saliency(net))).attribute(x, nt_samples=2, target=1, guide=x)
        IProp(NoiseTunnel(Saliency(net))).attribute(x, nt_samples=2, target=1)


def test_infidelity_and_sensitivity_max():
    net, x = _net(), _images()
    iprop = IProp(Saliency(net))
    attributions = iprop.attribute(x, target=1)

    infid = infidelity(net, fixed_noise_perturb, x, attributions, target=1, n_perturb_samples=3)
    torch.testing.assert_close(infid, infidelity_by_hand(net, x, attributions, 1, 3), rtol=1e-4, atol=1e-9)
    # with a fixed guide (the clean image) and with the default guide (each perturbed image)
    # (a guide of B images is repeated for the B n perturbed ones, as Captum expands inputs)
    for kwargs, per_example in ((dict(guide=x), lambda i: dict(guide=x[i:i + 1])), ({}, None)):
        sens = sensitivity_max(iprop.attribute, x, perturb_func=fixed_shift, target=1, n_perturb_samples=3,
                               **kwargs)
        expected = sensitivity_max_by_hand(iprop.attribute, x, 3, per_example=per_example, target=1)
        torch.testing.assert_close(sens, expected, rtol=1e-4, atol=1e-6)
        assert bool((sens > 0).all())


def test_model_is_left_unchanged_even_when_it_raises():
    net = _net().train()
    flags = [p.requires_grad for p in net.parameters()]
    IProp(IntegratedGradients(net)).attribute(_images(), target=0, n_steps=4)
    assert net.training and [p.requires_grad for p in net.parameters()] == flags
    assert num_hooks(net) == 0
    bad = _Raises()
    with pytest.raises(RuntimeError, match="boom"):
        IProp(Saliency(bad)).attribute(_images(), target=0)
    assert num_hooks(bad) == 0 and all(p.requires_grad for p in bad.parameters())


def test_log_usage_and_captum_flags():
    iprop = IProp(IntegratedGradients(_net()))
    assert hasattr(IProp.attribute, "__wrapped__")
    assert not iprop.has_convergence_delta() and iprop.multiplies_by_inputs


def test_bad_arguments_raise_clear_errors():
    net, x = _net(), _images()
    with pytest.raises(ValueError, match="gamma"):
        IProp(Saliency(net), gamma=1.0)
    with pytest.raises(ValueError, match="gamma"):
        IProp(Saliency(net), gamma=-0.1)
    with pytest.raises(ValueError, match="sigma_c"):
        IProp(Saliency(net), sigma_c=-1.0)
    with pytest.raises(ValueError, match="sigma_s"):
        propagate(x, x, sigma_s=-2.0)
    with pytest.raises(ValueError, match="radius"):
        IProp(Saliency(net), radius=-1)
    with pytest.raises(ValueError, match="solver"):
        IProp(Saliency(net), solver="lu")
    with pytest.raises(TypeError, match="base_method"):
        IProp(net)
    with pytest.raises(ValueError, match="inputs"):
        IProp(Saliency(net)).attribute(x[0], target=0)  # 3-D
    with pytest.raises(ValueError, match="4-D"):
        propagate(x[0], x[0])
    with pytest.raises(ValueError, match="spatial size"):
        IProp(Saliency(net)).attribute(x, guide=x[..., :10], target=0)
    with pytest.raises(ValueError, match="spatial size"):
        propagate(x[..., :6, :6], x)
    with pytest.raises(ValueError, match="batch size"):
        propagate(x, torch.rand(3, 3, 12, 12))
    with pytest.raises(ValueError, match="structure"):
        IProp(Saliency(net)).attribute(x, guide=(x, x), target=0)
    with pytest.raises(ValueError, match="structure"):
        IProp(Saliency(_TwoInputs())).attribute((x, x), guide=x, target=0)


def test_nan_in_the_base_attribution_is_reported():
    maps = torch.zeros(3, 1, 8, 8)
    maps[1, 0, 2, 3] = float("nan")
    with pytest.raises(ValueError, match=r"NaN.*images \[1\]"):
        propagate(maps, torch.rand(3, 3, 8, 8))

    class NaNGradient(nn.Module):
        def forward(self, x):
            return torch.sqrt(x - x.amax()).flatten(1)[:, :2]  # d/dx sqrt(0) = inf -> NaN

    with pytest.raises(ValueError, match="NaN"):
        IProp(Saliency(NaNGradient())).attribute(torch.rand(2, 3, 4, 4), target=0)


def test_propagate_with_a_user_affinity():
    from captum_ext.propagate import CSROperator

    x = _images()
    maps = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(5))
    guide = min_max_scale(x)
    affinity = CSROperator.from_guide(guide, sigma_c=0.2).matrix
    out = propagate(maps, guide, affinity=affinity, tol=1e-6)
    torch.testing.assert_close(out, propagate(maps, guide, sigma_c=0.2, tol=1e-6),
                               rtol=1e-4, atol=1e-5)


def test_batched_equals_one_at_a_time_in_float32_at_the_defaults():
    """Issue 16: at the defaults (float32, gamma 0.99, tol 1e-4) a batch stopped as a whole
    differed from one-at-a-time by ~1.7e-4 on maps of magnitude ~60; each image now stops on
    its own, so the difference is float rounding at most."""
    gen = torch.Generator().manual_seed(0)
    guide = torch.rand(4, 3, 24, 24, generator=gen)
    guide[1] = guide[1].mean(dim=(1, 2), keepdim=True)
    guide[2, :, :, 12:], guide[2, :, :, :12] = 1.0, 0.0
    maps = 60 * torch.randn(4, 3, 24, 24, generator=gen)
    eps = torch.finfo(torch.float32).eps
    for solver in ("cg", "value_iteration"):
        batched = propagate(maps, guide, solver=solver)
        for i in range(4):
            single = propagate(maps[i : i + 1], guide[i : i + 1], solver=solver)
            torch.testing.assert_close(batched[i : i + 1], single, rtol=0,
                                       atol=4 * eps * float(single.abs().max()))


# ----------------------------------------------------------------------------- issue 13


@pytest.mark.parametrize("solver", ["cg", "value_iteration"])
def test_tol_zero_in_float32_stays_finite_and_accurate(solver):
    """tol=0 used to drive float32 CG to NaN; it now runs to the float precision limit."""
    x = _images(batch=2, size=10)
    maps = torch.randn(2, 3, 10, 10, generator=torch.Generator().manual_seed(3))
    reference = propagate(maps.double(), x.double(), tol=1e-12)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = propagate(maps, x, tol=0.0, solver=solver, max_iter=3000)
    # value iteration may reach an exact float fixed point (step 0: the rule is met)
    assert solver != "cg" or any("tol=0" in str(w.message) for w in caught)
    assert bool(torch.isfinite(out).all())
    torch.testing.assert_close(out.double(), reference, rtol=0, atol=1e-4 * maps.abs().max())
    with pytest.warns(RuntimeWarning):
        net = _net()
        assert bool(torch.isfinite(IProp(Saliency(net), tol=0.0, max_iter=500)
                                   .attribute(x, target=0)).all())


def test_guide_outside_zero_one_is_refused():
    x = _images()
    maps = torch.randn(2, 3, 12, 12)
    with pytest.raises(ValueError, match=r"`guide` must have values in \[0, 1\]"):
        propagate(maps, x * 255)
    with pytest.raises(ValueError, match="guide"):
        propagate(maps, x - 0.5)  # a normalised image
    with pytest.raises(ValueError, match="guide"):
        IProp(Saliency(_net())).attribute(x, guide=x * 255, target=0)
    # the documented fixes work: a 0..255 guide divided by 255 is the [0, 1] guide
    torch.testing.assert_close(propagate(maps, (x * 255).round() / 255),
                               propagate(maps, (x * 255).round() / 255))


def test_radius_larger_than_the_image():
    x, maps = _images(batch=1, size=16), torch.randn(1, 3, 16, 16)
    with pytest.raises(ValueError, match="`radius`=17"):
        propagate(maps, x, radius=17)
    with pytest.raises(ValueError, match="radius"):
        IProp(Saliency(_net()), radius=16).attribute(x, target=0)
    # a radius between the short and the long side works: a flat 3x16 image with sigma_s inf
    # and colour ignored is a complete graph along each row of reach 5 (checked densely)
    flat = torch.zeros(1, 1, 3, 16, dtype=torch.float64)
    reward = torch.randn(1, 1, 3, 16, dtype=torch.float64)
    out = propagate(reward, flat, radius=5, sigma_s=float("inf"), sigma_c=float("inf"),
                    gamma=0.5, tol=1e-12)
    ys, xs = torch.meshgrid(torch.arange(3), torch.arange(16), indexing="ij")
    near = ((ys.reshape(-1, 1) - ys.reshape(1, -1)).abs() <= 5) & (
        (xs.reshape(-1, 1) - xs.reshape(1, -1)).abs() <= 5)
    weights = near.double()
    transition = weights / weights.sum(1, keepdim=True)
    expected = 0.5 * torch.linalg.solve(torch.eye(48, dtype=torch.float64) - 0.5 * transition,
                                        reward.flatten())
    torch.testing.assert_close(out.flatten(), expected)


def test_empty_batch_gives_an_empty_result_without_running_the_model():
    class Counting(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.calls = _net(), 0

        def forward(self, x):
            self.calls += 1
            return self.inner(x)

    model = Counting()
    empty = torch.zeros(0, 3, 12, 12)
    out = IProp(Saliency(model)).attribute(empty, target=0)
    assert out.shape == (0, 3, 12, 12) and model.calls == 0
    assert propagate(torch.zeros(0, 2, 12, 12), empty).shape == (0, 2, 12, 12)


def test_nan_in_maps_guide_and_inputs_names_the_argument():
    x = _images()
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    maps = torch.randn(2, 3, 12, 12)
    with pytest.raises(ValueError, match="`guide`"):
        propagate(maps, bad)
    with pytest.raises(ValueError, match="`attributions`"):
        propagate(bad, x)
    with pytest.raises(ValueError, match="`inputs`"):
        IProp(Saliency(_net())).attribute(bad, target=0)
    with pytest.raises(ValueError, match="`guide`"):
        IProp(Saliency(_net())).attribute(x, guide=bad, target=0)


@pytest.mark.parametrize("name,value", [
    ("gamma", float("nan")), ("gamma", float("inf")), ("sigma_s", float("nan")),
    ("sigma_c", float("nan")), ("tol", float("nan")), ("tol", float("inf")),
    ("sigma_s", 0.0), ("sigma_c", -float("inf")), ("max_iter", 2.5), ("radius", 1.0),
    ("self_loop", 1), ("rescale", "yes"), ("reward", "max"), ("color_space", "hsv"),
])
def test_bad_parameters_are_refused_naming_them(name, value):
    with pytest.raises((ValueError, TypeError), match=f"`{name}`"):
        IProp(Saliency(_net()), **{name: value})
    with pytest.raises((ValueError, TypeError), match=f"`{name}`"):
        propagate(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), **{name: value})


def test_infinite_bandwidths_are_accepted():
    x, maps = _images(), torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    out = propagate(maps, x, sigma_c=float("inf"))
    # colour ignored: the same as a graph on a flat guide
    torch.testing.assert_close(out, propagate(maps, torch.zeros_like(x)))
    # distance ignored: the limit of a growing spatial bandwidth, and not the default graph
    wide = propagate(maps, x, sigma_s=float("inf"))
    torch.testing.assert_close(wide, propagate(maps, x, sigma_s=1e8))
    assert not torch.allclose(wide, propagate(maps, x), atol=1e-4)


def test_a_model_that_raises_mid_forward_is_left_as_it_was():
    class HalfWay(nn.Module):
        def __init__(self):
            super().__init__()
            self.first, self.second = nn.Conv2d(3, 2, 3), nn.Linear(2, 2)

        def forward(self, x):
            self.first.register_forward_hook(lambda *args: None)
            self.eval()
            for p in self.parameters():
                p.requires_grad_(False)
            self.first(x)
            raise RuntimeError("boom")

    model = HalfWay().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError, match="boom"):
        IProp(Saliency(model)).attribute(_images(), target=0)
    assert model.training and model.first.training
    assert all(p.requires_grad for p in model.parameters()) and num_hooks(model) == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# ----------------------------------------------------------------------------- issue 14


def test_return_diagnostics_on_propagate_and_iprop():
    net, x = _net(), _images(batch=3)
    maps = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(4))
    plain = propagate(maps, x)
    out, diagnostics = propagate(maps, x, return_diagnostics=True)
    assert torch.equal(out, plain) and isinstance(diagnostics, IPropDiagnostics)
    assert diagnostics.image_iterations.shape == (3,) and diagnostics.residual.shape == (3,)
    singles = [propagate(maps[i : i + 1], x[i : i + 1], return_diagnostics=True)[1]
               for i in range(3)]
    assert diagnostics.image_iterations.tolist() == [d.iterations for d in singles]
    assert diagnostics.converged and bool(diagnostics.image_converged.all())
    with pytest.raises(dataclasses.FrozenInstanceError):
        diagnostics.iterations = 0  # type: ignore[misc]
    iprop = IProp(Saliency(net))
    attr, diag = iprop.attribute(x, target=0, return_diagnostics=True)
    torch.testing.assert_close(attr, iprop.attribute(x, target=0))
    torch.testing.assert_close(diag.residual, propagate(Saliency(net).attribute(x, target=0),
                                                        min_max_scale(x),
                                                        return_diagnostics=True)[1].residual)
    model = _TwoInputs().eval()
    y = _images(batch=3, seed=5)
    attrs, diags = IProp(Saliency(model)).attribute((x, y), target=0, return_diagnostics=True)
    assert isinstance(attrs, tuple) and isinstance(diags, tuple) and len(diags) == 2
    assert all(isinstance(d, IPropDiagnostics) for d in diags)


def test_old_diagnostics_spellings_are_deprecated_aliases():
    net, x = _net(), _images()
    maps = torch.randn(2, 3, 12, 12)
    with pytest.warns(DeprecationWarning, match="return_info"):
        out, info = propagate(maps, x, return_info=True)
    expected, diagnostics = propagate(maps, x, return_diagnostics=True)
    assert torch.equal(out, expected) and type(info) is IPropDiagnostics
    assert torch.equal(info.residual, diagnostics.residual) and info.solver == diagnostics.solver
    iprop = IProp(Saliency(net))
    _, diag = iprop.attribute(x, target=0, return_diagnostics=True)
    with pytest.warns(DeprecationWarning, match="last_info"):
        last = iprop.last_info
    assert len(last) == 1 and torch.equal(last[0].residual, diag.residual)


def test_diagnostics_are_typed_with_overloads():
    from captum_ext.attr import iprop as module

    assert len(typing.get_overloads(module.propagate)) == 3
    assert len(typing.get_overloads(module.IProp.attribute.__wrapped__)) == 2 or len(
        typing.get_overloads(module.IProp.attribute)) == 2
    hints = [typing.get_type_hints(f) for f in typing.get_overloads(module.propagate)[:2]]
    assert hints[0]["return_diagnostics"] == typing.Literal[False] and hints[0]["return"] is torch.Tensor
    assert hints[1]["return_diagnostics"] == typing.Literal[True]


def test_max_iter_warning_points_at_the_caller():
    with pytest.warns(RuntimeWarning, match="max_iter=3"):
        propagate(torch.randn(1, 1, 8, 8), torch.rand(1, 3, 8, 8), max_iter=3)
