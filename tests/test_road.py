"""ROAD (Rong et al., ICML 2022) against closed forms and a direct sparse solve of the imputation."""

import math

import numpy as np
import pytest
import torch
from test_linear_inpainter import _scipy_imputation
from torch import nn

from captum_ext.metrics import ROAD_PERCENTAGES, RoadResult, road, road_combined


class LinearScore(nn.Module):
    """Two classes: f0(x) = sum(w * x) + 0.5, f1 = 0."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.clone())

    def forward(self, x):
        f0 = (x * self.weight).flatten(1).sum(1) + 0.5
        return torch.stack([f0, torch.zeros_like(f0)], dim=1)


def _setup(batch=3, size=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(3, size, size, generator=gen, dtype=torch.float64)
    x = torch.rand(batch, 3, size, size, generator=gen, dtype=torch.float64)
    a = torch.randn(batch, 3, size, size, generator=gen, dtype=torch.float64)
    return LinearScore(weight), x, a


def test_default_percentages_are_the_papers():
    assert ROAD_PERCENTAGES == (10, 20, 30, 40, 50, 60, 70, 80, 90)


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_noise_free_scores_equal_the_model_on_the_scipy_imputed_images(order):
    model, x, a = _setup()
    percentages = [10, 50, 90]
    result = road(model, x, a, target=0, percentages=percentages, order=order, noise=0.0, softmax=False)
    per_pixel = a.sum(1).flatten(1).numpy()
    w = model.weight.detach().numpy()
    for b in range(3):
        ranking = np.argsort(-per_pixel[b] if order == "morf" else per_pixel[b], kind="stable")
        for j, p in enumerate(percentages):
            k = int(math.floor(p / 100 * 36 + 0.5))
            hole = np.zeros(36, dtype=bool)
            hole[ranking[:k]] = True
            imputed = _scipy_imputation(x[b].numpy(), hole.reshape(6, 6))
            expected = (w * imputed).sum() + 0.5
            assert result.scores[b, j].item() == pytest.approx(expected, abs=1e-5)
            assert bool(result.correct[b, j]) == (expected > 0)
    assert torch.equal(result.percentages, torch.tensor(percentages, dtype=torch.float64))
    assert torch.allclose(result.mean, result.scores.mean(1))


def test_probabilities_and_accuracy():
    model, x, a = _setup()
    logits = road(model, x, a, target=0, percentages=[30], noise=0.0, softmax=False).scores
    probs = road(model, x, a, target=0, percentages=[30], noise=0.0).scores
    assert torch.allclose(probs, torch.sigmoid(logits), atol=1e-10)  # two classes, f1 = 0
    result = road(model, x, a, target=0, percentages=[30, 60], noise=0.0)
    assert torch.equal(result.accuracy, (result.scores > 0.5).double().mean(0))


def test_results_do_not_depend_on_batch_composition_with_image_indices():
    model, x, a = _setup(batch=4, size=8, seed=1)
    ids = [40, 41, 42, 43]
    batched = road(model, x, a, target=0, percentages=[20, 60], image_indices=ids, softmax=False,
                   max_examples_per_batch=3)
    for b in range(4):
        alone = road(model, x[b:b + 1], a[b:b + 1], target=0, percentages=[20, 60], image_indices=[ids[b]],
                     softmax=False)
        assert torch.allclose(batched.scores[b:b + 1], alone.scores, atol=1e-9)
    order = [2, 0, 3, 1]
    shuffled = road(model, x[order], a[order], target=0, percentages=[20, 60],
                    image_indices=[ids[i] for i in order], softmax=False)
    assert torch.allclose(shuffled.scores, batched.scores[order], atol=1e-9)
    # the noise is real: a different seed changes the scores, noise=0 removes the difference
    other = road(model, x, a, target=0, percentages=[20, 60], image_indices=ids, softmax=False, seed=1)
    assert not torch.allclose(other.scores, batched.scores)


def test_other_inpainters_and_a_constant_closed_form():
    model, x, a = _setup()
    result = road(model, x, a, target=0, percentages=[50], inpainter=0.0, softmax=False)
    per_pixel = a.sum(1).flatten(1)
    top = torch.zeros_like(per_pixel, dtype=torch.bool).scatter_(1, per_pixel.topk(18, dim=1).indices, True)
    kept = (model.weight.detach() * x).sum(1).flatten(1) * ~top
    assert torch.allclose(result.scores[:, 0], kept.sum(1) + 0.5)


def test_nan_maps_empty_batches_and_errors():
    model, x, a = _setup()
    a[1, 0, 0, 0] = math.nan
    result = road(model, x, a, target=0, percentages=[10, 20])
    assert torch.isnan(result.scores[1]).all() and torch.isfinite(result.scores[[0, 2]]).all()
    empty = road(model, x[:0], a[:0], percentages=[10, 20])
    assert empty.scores.shape == (0, 2) and empty.correct.shape == (0, 2)
    with pytest.raises(ValueError, match="order"):
        road(model, x, a, order="most")
    with pytest.raises(ValueError, match="percentages"):
        road(model, x, a, percentages=[10, 120])
    with pytest.raises(ValueError, match="noise"):
        road(model, x, a, noise=-1.0)
    with pytest.raises(ValueError, match="target"):
        road(model, x, a, target=[0, 1])
    with pytest.raises(ValueError, match="image_indices"):
        road(model, x, a, image_indices=[1, 2])
    with pytest.raises(ValueError, match="max_examples_per_batch"):
        road(model, x, a, max_examples_per_batch=0)


def test_road_combined_needs_matching_morf_and_lerf():
    model, x, a = _setup()
    morf = road(model, x, a, target=0, percentages=[10, 50], noise=0.0)
    lerf = road(model, x, a, target=0, percentages=[10, 50], order="lerf", noise=0.0)
    combined = road_combined(morf, lerf)
    assert torch.allclose(combined, ((lerf.scores - morf.scores) / 2).mean(1))
    with pytest.raises(ValueError, match="MoRF"):
        road_combined(lerf, morf)
    with pytest.raises(ValueError, match="same"):
        road_combined(morf, road(model, x, a, target=0, percentages=[10], order="lerf"))
    with pytest.raises(TypeError, match="RoadResult"):
        road_combined(morf.scores, lerf)
    assert isinstance(morf, RoadResult)


def test_model_left_unchanged_when_it_raises():
    class Flaky(LinearScore):
        calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("boom")
            return super().forward(x)

    model, x, a = _setup()
    flaky = Flaky(model.weight.detach()).train()
    flaky.weight.requires_grad_(False)
    with pytest.raises(RuntimeError, match="boom"):
        road(flaky, x, a, percentages=[10, 20], max_examples_per_batch=2)
    assert flaky.training and not flaky.weight.requires_grad


def test_benchmark_columns_are_registered_and_equal_road():
    from captum_ext.benchmark.registry import MetricContext, available_metrics

    metrics = available_metrics()
    assert {"road_morf", "road_lerf", "road_combined"} <= set(metrics)
    assert metrics["road_morf"].lower_is_better and not metrics["road_morf"].default
    model, x, a = _setup()
    context = MetricContext(model, x, torch.zeros(3, dtype=torch.long), a, torch.zeros(3, 1, 6, 6),
                            {"abs": False})
    morf = road(model, x, a, target=0)
    assert torch.equal(metrics["road_morf"].fn(context), morf.mean)
    lerf = road(model, x, a, target=0, order="lerf")
    assert torch.equal(metrics["road_combined"].fn(context), road_combined(morf, lerf))
