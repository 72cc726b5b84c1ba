"""End-to-end: the trained stamp classifier reaches the recall bar and IG beats the random control."""

import pytest
import torch

from captum_ext.benchmark.runner import BenchmarkConfig, run_benchmark
from captum_ext.data import StampNet, load_stamp_classifier, make_stamped_batch, stamp_recall
from captum_ext.data.classifier import cache_dir


def test_stampnet_uses_relu_modules():
    net = StampNet()
    assert sum(isinstance(m, torch.nn.ReLU) for m in net.modules()) == 5


def test_cache_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CAPTUM_EXT_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path


@pytest.fixture(scope="module")
def trained():
    return load_stamp_classifier(progress=False)


@pytest.mark.slow
def test_trained_classifier_reaches_the_recall_bar(trained):
    held_out = make_stamped_batch(3000, seed=424242)
    recall = stamp_recall(trained, held_out.images, held_out.labels, num_glyphs=4)
    stamped = held_out.labels < 4
    with torch.no_grad():
        preds = torch.cat([trained(held_out.images[i : i + 500]).argmax(1) for i in range(0, 3000, 500)])
    stamp_class_recall = (preds[stamped] == held_out.labels[stamped]).float().mean().item()
    assert stamp_class_recall >= 0.99, recall  # the acceptance bar, over all stamped images
    assert (recall[:4] >= 0.98).all(), recall  # and no glyph class far below it
    assert recall[4] >= 0.95, recall


@pytest.mark.slow
def test_integrated_gradients_beats_the_random_control(trained):
    result = run_benchmark(
        BenchmarkConfig(n_images=32, methods=["IntegratedGradients", "Random"], progress=False), model=trained
    )
    ig = result.per_image["IntegratedGradients"]["stamp_distance"]
    rnd = result.per_image["Random"]["stamp_distance"]
    assert abs(rnd.nanmean().item() - 2.0) < 0.1
    assert ig.nanmean().item() < 1.5
    assert (ig < rnd).float().mean().item() > 0.9
