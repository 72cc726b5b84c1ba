"""The pathway gradient on six torchvision architectures against an independent reference.

The reference prunes a hand-rewritten copy of each model: every activation (``nn.ReLU`` /
``nn.ReLU6`` modules, and the functional ``F.relu`` calls of GoogLeNet's and Inception-v3's
``BasicConv2d`` and of ``DenseNet.forward``) is replaced by an explicit out-of-place activation
that records its output (scoring pass) or multiplies it by a mask (pruned pass). Scores are
``|a * dS/da|``, thresholds ``numpy.percentile`` per sample, pruned where ``score <= thr``.
Nothing of ``captum_ext`` is used to build the reference.
"""

import copy
import importlib
import types
import warnings

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from captum_ext._utils import num_hooks
from captum_ext.attr import CriticalPathway, PathwayGradient

warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients")
# the submodules (torchvision.models.googlenet is also the name of a function)
tv_densenet = importlib.import_module("torchvision.models.densenet")
tv_googlenet = importlib.import_module("torchvision.models.googlenet")
tv_inception = importlib.import_module("torchvision.models.inception")


class Acts:
    """Records activations (``masks is None``) or applies the masks, in call order."""

    def __init__(self):
        self.masks = None
        self.recorded = []
        self.count = 0

    def __call__(self, value):
        index = self.count
        self.count += 1
        if self.masks is None:
            self.recorded.append(value)
            return value
        return value * self.masks[index]


class RefAct(nn.Module):
    def __init__(self, acts, low, high):
        super().__init__()
        self.acts, self.low, self.high = acts, low, high

    def forward(self, x):
        return self.acts(x.clamp(min=self.low, max=self.high))


def _basic_conv_forward(acts):
    def forward(self, x):
        return acts(torch.relu(self.bn(self.conv(x))))

    return forward


def _densenet_forward(acts):
    def forward(self, x):
        out = acts(torch.relu(self.features(x)))
        out = torch.flatten(nn.functional.adaptive_avg_pool2d(out, (1, 1)), 1)
        return self.classifier(out)

    return forward


def rewritten(model):
    """A copy of ``model`` with every activation call routed through one ``Acts``."""
    model = copy.deepcopy(model)
    acts = Acts()
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(module, name, RefAct(acts, 0.0, 6.0))
            elif isinstance(child, nn.ReLU):
                setattr(module, name, RefAct(acts, 0.0, None))
    for module in model.modules():
        if isinstance(module, (tv_googlenet.BasicConv2d, tv_inception.BasicConv2d)):
            module.forward = types.MethodType(_basic_conv_forward(acts), module)
    if isinstance(model, tv_densenet.DenseNet):
        model.forward = types.MethodType(_densenet_forward(acts), model)
    return model, acts


def reference_pathway_gradient(model, x, target, sparsity):
    ref, acts = rewritten(model)
    rows = torch.arange(x.shape[0])
    out = ref(x)
    grads = torch.autograd.grad(out[rows, target].sum(), acts.recorded)
    scores = torch.cat([(a * g).abs().flatten(1) for a, g in zip(acts.recorded, grads)], 1)
    thr = np.percentile(scores.detach().numpy(), 100 * sparsity, axis=1, method="linear")
    keep = scores > torch.from_numpy(thr).unsqueeze(1)
    sizes = [a[0].numel() for a in acts.recorded]
    acts.masks = [m.reshape(a.shape).to(x.dtype)
                  for m, a in zip(keep.split(sizes, dim=1), acts.recorded)]
    num_calls = len(acts.recorded)
    acts.count, acts.recorded = 0, []
    z = x.detach().clone().requires_grad_()
    out = ref(z)
    (grad,) = torch.autograd.grad(out[rows, target].sum(), z)
    assert acts.count == num_calls
    return grad, num_calls


def _snapshot(model):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            [m.training for m in model.modules()],
            [p.requires_grad for p in model.parameters()])


def build(name):
    torch.manual_seed(0)
    if name == "googlenet":
        model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True)
    elif name == "inception_v3":
        model = torchvision.models.inception_v3(weights=None, aux_logits=False,
                                                init_weights=True)
    else:
        model = getattr(torchvision.models, name)(weights=None)
    return model.double().eval()


SIZES = {"resnet18": 32, "vgg11": 32, "densenet121": 32, "googlenet": 32, "mobilenet_v2": 16,
         "inception_v3": 75}
CALLS = {"resnet18": 17, "vgg11": 10, "densenet121": 1 + 2 * 58 + 3 + 1, "googlenet": 57,
         "mobilenet_v2": 35, "inception_v3": 94}
SLOW = {"vgg11", "densenet121", "inception_v3", "mobilenet_v2"}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in SIZES],
)
def test_pathway_gradient_equals_reference_on_torchvision_models(name):
    model = build(name)
    torch.manual_seed(1)
    size = SIZES[name]
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    target = torch.tensor([3, 7])
    snapshot = _snapshot(model)
    expected, num_calls = reference_pathway_gradient(model, x, target, 0.7)
    assert num_calls == CALLS[name]
    method = PathwayGradient(model, sparsity=0.7)
    ours, diag = method.attribute(x, target=target, return_diagnostics=True)
    assert diag.num_calls == num_calls
    torch.testing.assert_close(ours, expected, rtol=1e-7, atol=1e-10)
    single = torch.cat([method.attribute(x[i:i + 1], target=int(target[i])) for i in range(2)])
    torch.testing.assert_close(ours, single, rtol=1e-7, atol=1e-10)
    state, modes, flags = snapshot
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert num_hooks(model) == 0 and torch._C._len_torch_function_stack() == 0
    assert all(p.grad is None for p in model.parameters())


def test_reference_differs_from_the_module_only_pruning_on_googlenet():
    """The functional F.relu calls matter: hooking nn.ReLU modules alone finds no unit."""
    model = build("googlenet")
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    with pytest.raises(ValueError, match="no prunable"):
        CriticalPathway(model, module_types=(nn.ReLU,), activations=()).compute(x, 0, 0.5)


class EveryForm(nn.Module):
    """One unit set per activation form: module, functional, method, in place, clamp, twice."""

    def __init__(self):
        super().__init__()
        self.lins = nn.ModuleList([nn.Linear(6, 6) for _ in range(9)])
        self.relu = nn.ReLU(inplace=True)
        self.relu6 = nn.ReLU6(inplace=True)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        f = nn.functional
        h = self.relu(self.lins[0](x))
        h = f.relu(self.lins[1](h), inplace=True)
        h = torch.relu(self.lins[2](h))
        z = self.lins[3](h)
        z.relu_()  # in place, return value ignored: the side effect carries the unit
        h = self.relu6(z * 3)
        h = f.relu6(self.lins[4](h))
        h = f.hardtanh(self.lins[5](h), -1.0, 1.0)
        h = self.lins[6](h).clamp(min=0)
        h = torch.clamp_min(self.lins[7](h), 0)
        h = self.relu(self.lins[8](h))  # the same module again
        return self.head(h)


def _every_form_reference(net, x, target, sparsity):
    """Out-of-place rewrite of EveryForm with explicit recording / masking."""
    acts = Acts()
    lin = net.lins

    def forward(z):
        acts.count = 0
        h = acts(lin[0](z).clamp(min=0))
        h = acts(lin[1](h).clamp(min=0))
        h = acts(lin[2](h).clamp(min=0))
        h = acts(lin[3](h).clamp(min=0))
        h = acts((h * 3).clamp(0, 6))
        h = acts(lin[4](h).clamp(0, 6))
        h = acts(lin[5](h).clamp(-1, 1))
        h = acts(lin[6](h).clamp(min=0))
        h = acts(lin[7](h).clamp(min=0))
        h = acts(lin[8](h).clamp(min=0))
        return net.head(h)

    rows = torch.arange(x.shape[0])
    out = forward(x)
    grads = torch.autograd.grad(out[rows, target].sum(), acts.recorded)
    scores = torch.cat([(a * g).abs().flatten(1) for a, g in zip(acts.recorded, grads)], 1)
    thr = np.percentile(scores.detach().numpy(), 100 * sparsity, axis=1, method="linear")
    keep = (scores > torch.from_numpy(thr).unsqueeze(1)).to(x.dtype)
    acts.masks = list(keep.split(6, dim=1))
    z = x.detach().clone().requires_grad_()
    out = forward(z)
    return torch.autograd.grad(out[rows, target].sum(), z)[0], len(acts.masks)


def test_every_activation_form_is_a_unit_and_matches_the_reference():
    torch.manual_seed(4)
    net = EveryForm().double().eval()
    for p in net.parameters():
        nn.init.normal_(p, std=0.8)
    x = torch.randn(4, 6, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 0])
    expected, calls = _every_form_reference(net, x, target, 0.5)
    ours, diag = PathwayGradient(net, sparsity=0.5).attribute(x, target, return_diagnostics=True)
    assert diag.pathway.call_modules == ["relu"] * 4 + ["hardtanh", "relu6", "hardtanh"] + [
        "clamp"] * 2 + ["relu"]
    assert calls == diag.num_calls == 10
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(ours, PathwayGradient(net, sparsity=0.0).attribute(x, target))
    single = torch.cat([PathwayGradient(net, sparsity=0.5).attribute(x[i:i + 1], int(target[i]))
                        for i in range(4)])
    torch.testing.assert_close(ours, single, rtol=1e-10, atol=1e-12)
    assert num_hooks(net) == 0 and torch._C._len_torch_function_stack() == 0


def test_non_relu_clamps_are_not_units():
    class Clamps(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x):
            h = self.lin(x).clamp(min=-1.0)  # not ReLU-like: no unit
            h = nn.functional.hardtanh(h, 0.5, 2.0)  # does not map 0 to 0: no unit
            return torch.relu(h)

    net = Clamps().double()
    pathway = CriticalPathway(net).compute(torch.randn(2, 3, dtype=torch.float64), 0, 0.5)
    assert pathway.call_modules == ["relu"]
