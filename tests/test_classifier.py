"""End-to-end: the trained stamp classifier reaches the recall bar and IG beats the random control."""

import pytest
import torch

from captum_ext.benchmark.runner import BenchmarkConfig, run_benchmark
from captum_ext.data import StampNet, load_stamp_classifier, make_stamped_batch, stamp_recall
from captum_ext.data.classifier import cache_dir

#: Held-out accuracy bar of the cached resnet18 on stamped images (it reaches 0.995 on the 3000
#: images of test_resnet18_reaches_the_accuracy_bar; StampNet's bar is the same 0.99).
RESNET18_BAR = 0.99


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


# ------------------------------------------------------------------------------------------
# the torchvision resnet18 stamp classifier
# ------------------------------------------------------------------------------------------


def test_stamp_resnet18_is_torchvisions_resnet18():
    """Same parameter names and shapes as torchvision's resnet18, and the same function."""
    import torchvision

    from captum_ext.data.classifier import stamp_resnet18

    ours = stamp_resnet18(num_classes=5).eval()
    ref = torchvision.models.resnet18(num_classes=5).eval()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.01 * torch.randn_like(p))
    ref.load_state_dict(ours.state_dict())
    x = torch.rand(3, 3, 64, 64)
    assert torch.allclose(ours(x), ref(x), atol=1e-5)
    relus = [m for m in ours.modules() if isinstance(m, torch.nn.ReLU)]
    assert len(relus) == 1 + 2 * 8 and not any(m.inplace for m in relus)  # one module per use


@pytest.mark.slow
def test_resnet18_reaches_the_accuracy_bar():
    """The cached resnet18 (trained once, ~6 minutes on 2 cores) on 3000 held-out images."""
    model = load_stamp_classifier(arch="resnet18", progress=False)
    held_out = make_stamped_batch(3000, seed=424242)
    recall = stamp_recall(model, held_out.images, held_out.labels, num_glyphs=4)
    stamped = held_out.labels < 4
    with torch.no_grad():
        preds = torch.cat([model(held_out.images[i : i + 500]).argmax(1) for i in range(0, 3000, 500)])
    accuracy = (preds[stamped] == held_out.labels[stamped]).float().mean().item()
    assert accuracy >= RESNET18_BAR, recall
    assert (recall[:4] >= 0.98).all(), recall  # no glyph class far below it (reached: >= 0.987)
    assert recall[4] >= 0.95, recall  # "no stamp" (reached: 0.997)


@pytest.mark.slow
def test_cli_runs_the_resnet18_benchmark(tmp_path):
    from captum_ext.benchmark.cli import main

    out = tmp_path / "out"
    assert main(["benchmark", "--model", "resnet18", "--n-images", "4", "--methods", "Saliency", "Random",
                 "--metrics", "stamp_distance", "--out", str(out), "--no-progress"]) == 0
    assert "| Saliency |" in (out / "results.md").read_text()


class _Fixed(torch.nn.Module):
    """Predicts the given classes in order, whatever the images (an oracle for stamp_recall)."""

    def __init__(self, preds, classes):
        super().__init__()
        self.preds, self.classes, self.at = preds, classes, 0

    def forward(self, x):
        out = torch.nn.functional.one_hot(self.preds[self.at:self.at + len(x)], self.classes).float()
        self.at += len(x)
        return out


def test_stamp_recall_counts_by_hand_and_is_nan_for_an_absent_class():
    labels = torch.tensor([0, 0, 1, 1, 1, 0])
    preds = torch.tensor([0, 1, 1, 1, 0, 0])
    images = torch.rand(6, 3, 8, 8)
    recall = stamp_recall(_Fixed(preds, 3), images, labels, num_glyphs=2, batch_size=4)
    # class 0: 2 of 3, class 1: 2 of 3, class 2: no image -> 0 / 0 = NaN (was 0 before)
    torch.testing.assert_close(recall[:2], torch.tensor([2 / 3, 2 / 3]))
    assert torch.isnan(recall[2])
    # the chunking does not change the result
    torch.testing.assert_close(
        stamp_recall(_Fixed(preds, 3), images, labels, 2, batch_size=1), recall, equal_nan=True
    )


def test_stamp_recall_bad_arguments():
    net = StampNet(num_classes=3)
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="batch_size"):
        stamp_recall(net, x, torch.tensor([0, 1]), 2, batch_size=0)
    with pytest.raises(ValueError, match="labels"):
        stamp_recall(net, x, torch.tensor([0]), 2)
    x[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="images"):
        stamp_recall(net, x, torch.tensor([0, 1]), 2)


@pytest.mark.parametrize(
    "override, key",
    [({"lr": float("nan")}, "lr"), ({"lr": 0.0}, "lr"), ({"steps": 0}, "steps"), ({"batch_size": 0}, "batch_size"),
     ({"num_glyphs": 9}, "num_glyphs"), ({"stamp_size": 80}, "image_size"), ({"width": 2.5}, "width")],
)
def test_bad_recipe_values_are_refused_before_training(monkeypatch, override, key):
    import captum_ext.data.classifier as C

    def refuse(*_, **__):
        raise AssertionError("training started")

    monkeypatch.setattr(C, "make_stamped_batch", refuse)
    with pytest.raises((ValueError, TypeError), match=key):
        C.train_stamp_classifier(recipe=override)
    with pytest.raises((ValueError, TypeError), match=key):
        load_stamp_classifier(recipe=override, progress=False)


def test_stampnet_refuses_zero_sizes():
    with pytest.raises(ValueError, match="num_classes"):
        StampNet(num_classes=0)
    with pytest.raises(ValueError, match="width"):
        StampNet(width=0)
