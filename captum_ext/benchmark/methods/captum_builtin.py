"""Captum's own methods and a random-map control, as benchmark rows.

Settings for 64x64 stamped images: zero (black) baselines, IntegratedGradients with 32 steps,
GradientShap with 32 samples around 8 seeded uniform-noise baselines, Occlusion with 8x8 windows
at stride 4 (so every pixel is covered by 4 windows).
"""

import torch
from captum.attr import DeepLift, GradientShap, InputXGradient, IntegratedGradients, Occlusion, Saliency
from torch import Tensor, nn

from captum_ext.benchmark.registry import Explainer, MethodSpec, register_method

#: Shared settings, so wrappers of these methods (IProp, pruning, inpainting) can match them.
IG_STEPS = 32
INTERNAL_BATCH_SIZE = 256
OCCLUSION_WINDOW = (3, 8, 8)
OCCLUSION_STRIDE = (3, 4, 4)


def saliency(model: nn.Module) -> Explainer:
    method = Saliency(model)
    return lambda x, t: method.attribute(x, target=t, abs=True)


def input_x_gradient(model: nn.Module) -> Explainer:
    method = InputXGradient(model)
    return lambda x, t: method.attribute(x, target=t)


def integrated_gradients(model: nn.Module) -> Explainer:
    method = IntegratedGradients(model)
    return lambda x, t: method.attribute(
        x, target=t, baselines=0.0, n_steps=IG_STEPS, internal_batch_size=INTERNAL_BATCH_SIZE
    )


def deep_lift(model: nn.Module) -> Explainer:
    method = DeepLift(model)
    return lambda x, t: method.attribute(x, target=t, baselines=0.0)


def gradient_shap(model: nn.Module) -> Explainer:
    method = GradientShap(model)

    def explain(x: Tensor, t: Tensor) -> Tensor:
        gen = torch.Generator(device="cpu").manual_seed(0)
        baselines = torch.rand((8,) + tuple(x.shape[1:]), generator=gen).to(x)
        return method.attribute(x, baselines=baselines, target=t, n_samples=32, stdevs=0.0)

    return explain


def occlusion(model: nn.Module) -> Explainer:
    method = Occlusion(model)
    return lambda x, t: method.attribute(
        x, target=t, sliding_window_shapes=OCCLUSION_WINDOW, strides=OCCLUSION_STRIDE,
        baselines=0.0, perturbations_per_eval=64,
    )


def random_map(model: nn.Module) -> Explainer:
    def explain(x: Tensor, t: Tensor) -> Tensor:
        gen = torch.Generator(device="cpu").manual_seed(int(x.shape[0]))
        return torch.rand(x.shape, generator=gen).to(x)

    return explain


register_method(MethodSpec("Saliency", saliency, "Captum Saliency (|gradient|)"))
register_method(MethodSpec("InputXGradient", input_x_gradient, "Captum InputXGradient"))
register_method(MethodSpec("IntegratedGradients", integrated_gradients, f"Captum IG, {IG_STEPS} steps, black baseline"))
register_method(MethodSpec("DeepLift", deep_lift, "Captum DeepLift, black baseline"))
register_method(MethodSpec("GradientShap", gradient_shap, "Captum GradientShap, 32 samples, noise baselines"))
register_method(MethodSpec("Occlusion", occlusion, "Captum Occlusion, 8x8 window, stride 4, black"))
register_method(MethodSpec("Random", random_map, "control: uniform random map", group="control"))
