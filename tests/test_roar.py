import pytest
import torch
from captum.attr import Saliency

from captum_ext.benchmark.roar import stamp_roar
from captum_ext.metrics.roar import RoarResult, accuracy, roar, train_classifier

TINY = dict(n_train=48, n_test=24, image_size=24, stamp_size=6, width=2, epochs=1)


def _data(n=32, seed=0):
    """Class 1 images have a bright 2 x 2 patch at a random place: a separable toy problem."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, 8, 8, generator=gen) * 0.2
    labels = torch.arange(n) % 2
    masks = torch.zeros(n, 1, 8, 8)
    for i in range(n):
        r, c = torch.randint(0, 7, (2,), generator=gen).tolist()
        masks[i, 0, r:r + 2, c:c + 2] = 1
    images = images + masks * labels.view(-1, 1, 1, 1)
    return images, labels, masks


def _factory():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveMaxPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(4, 2))


def test_clean_accuracy_is_the_independently_trained_models_and_the_fill_covers_the_fraction():
    x, y, m = _data()
    seen = []

    def marking_fill(images, holes):
        seen.append(holes.mean().item())
        return torch.zeros_like(images)

    result = roar({"gt": "ground_truth", "Saliency": Saliency}, x, y, x, y, _factory, fractions=[0.25, 0.5],
                  inpainter=marking_fill, epochs=2, batch_size=8, train_masks=m, test_masks=m)
    assert isinstance(result, RoarResult) and result.fractions == [0.0, 0.25, 0.5]
    torch.manual_seed(0)
    oracle = train_classifier(_factory(), x, y, epochs=2, batch_size=8, seed=0)
    assert result.accuracy["gt"][0].item() == accuracy(oracle, x, y)
    assert result.accuracy["Saliency"][0] == result.accuracy["gt"][0]  # the clean model is shared
    assert pytest.approx(sorted(set(round(v, 2) for v in seen))) == [0.25, 0.5]
    again = roar({"gt": "ground_truth", "Saliency": Saliency}, x, y, x, y, _factory, fractions=[0.25, 0.5],
                 inpainter=marking_fill, epochs=2, batch_size=8, train_masks=m, test_masks=m)
    for name in result.accuracy:
        assert torch.equal(result.accuracy[name], again.accuracy[name])
    gt = result.accuracy["gt"].tolist()
    table = result.markdown().splitlines()
    assert table[0] == "| method | t = 0 % | t = 25 % | t = 50 % |"
    assert table[2] == f"| gt | {gt[0]:.3f} | {gt[1]:.3f} | {gt[2]:.3f} |"


def test_removing_everything_leaves_one_image_and_one_prediction():
    x, y, _ = _data(n=30)
    y = torch.tensor([0] * 20 + [1] * 10)
    result = roar("random", x, y, x, y, _factory, fractions=[1.0], inpainter=0.0, epochs=1)
    # every modified image is the same constant image: the retrained model predicts one class,
    # so its accuracy is that class's frequency
    assert result.accuracy["random"][1].item() in (pytest.approx(20 / 30), pytest.approx(10 / 30))
    assert result.chance == pytest.approx(20 / 30)


def test_random_control_is_seeded_per_image():
    from captum_ext.metrics.roar import _random_maps

    x = torch.zeros(5, 1, 4, 4)
    assert torch.equal(_random_maps("train", x, 0)[:3], _random_maps("train", x[:3], 0))
    assert not torch.equal(_random_maps("train", x, 0), _random_maps("test", x, 0))


def test_global_random_state_is_left_alone():
    x, y, _ = _data()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    roar("random", x, y, x, y, _factory, fractions=[0.5], epochs=1)
    assert torch.equal(torch.rand(3), expected)


def test_train_classifier_learns_a_separable_problem():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(64, 3, 8, 8, generator=gen)
    labels = torch.arange(64) % 2
    images[labels == 1, 0] += 2.0  # a bright red channel means class 1
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 64, 2))
    model = train_classifier(model, images, labels, epochs=20, batch_size=16, lr=1e-2)
    assert accuracy(model, images, labels) == 1.0
    assert not model.training


def test_stamp_preset_and_the_deprecated_calls():
    result = stamp_roar({"gt": "ground_truth"}, fractions=[0.5], **TINY)
    with pytest.warns(DeprecationWarning, match="stamp_roar"):
        old = roar({"gt": "ground_truth"}, fractions=[0.5], **TINY)
    assert torch.equal(result.accuracy["gt"], old.accuracy["gt"])
    with pytest.warns(DeprecationWarning):
        with_filler = stamp_roar({"gt": "ground_truth"}, fractions=[0.5], filler=0.0, **TINY)
    assert torch.equal(with_filler.accuracy["gt"], stamp_roar({"gt": "ground_truth"}, fractions=[0.5],
                                                              inpainter=0.0, **TINY).accuracy["gt"])


def test_bad_input_gets_clear_errors():
    x, y, _ = _data(n=8)
    for bad in ([0.0], [1.2], []):
        with pytest.raises(ValueError, match="fractions"):
            roar("random", x, y, x, y, _factory, fractions=bad)
    with pytest.raises(ValueError, match="control"):
        roar("oracle", x, y, x, y, _factory)
    with pytest.raises(TypeError, match="method"):
        roar({"x": 3}, x, y, x, y, _factory)
    with pytest.raises(ValueError, match="duplicate"):
        roar(["random", "random"], x, y, x, y, _factory)
    with pytest.raises(ValueError, match="masks"):
        roar("ground_truth", x, y, x, y, _factory)
    with pytest.raises(TypeError, match="model_factory"):
        roar("random", x, y, x, y, None)
    with pytest.raises(ValueError, match="test_images"):
        roar("random", x, y, x[0], y, _factory)
    with pytest.raises(ValueError, match="epochs"):
        roar("random", x, y, x, y, _factory, epochs=0)
    with pytest.raises(ValueError, match="n_train"):
        stamp_roar("random", n_train=0)


@pytest.mark.slow
def test_removing_the_stamp_hurts_far_more_than_removing_random_pixels():
    """The footprint of the stamp is the only cue: removing it (inpainted, so no silhouette is left)
    must bring the retrained model near chance, while removing as many random pixels barely hurts."""
    # one glyph against "no stamp" (chance about 0.5), small enough for a CPU test
    result = stamp_roar(["ground_truth", "random"], fractions=[0.15], inpainter="harmonic", n_train=512, n_test=128,
                        image_size=24, stamp_size=8, num_glyphs=1, width=8, epochs=10)
    accuracy_ = result.accuracy
    clean, truth, rand = accuracy_["ground_truth"][0], accuracy_["ground_truth"][1], accuracy_["random"][1]
    assert clean > 0.9
    assert truth < result.chance + 0.15
    assert rand - truth > 0.3


def test_roar_imports_no_private_helper_of_other_metrics_and_no_stamp_data():
    import ast
    import inspect

    import captum_ext.metrics.roar as module

    tree = ast.parse(inspect.getsource(module))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("captum_ext.metrics.sanity",
                                                                "captum_ext.metrics.perturbation"):
            assert not any(alias.name.startswith("_") for alias in node.names), node.module
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("captum_ext.data"):
            raise AssertionError("metrics.roar must not depend on the stamp data set")
