import pytest
import torch
from captum.attr import Saliency

from captum_ext.metrics.roar import RoarResult, accuracy, roar, train_classifier

TINY = dict(n_train=48, n_test=24, image_size=24, stamp_size=6, width=2, epochs=1)


def test_shapes_controls_and_reproducibility():
    seen = []

    def marking_fill(images, holes):
        seen.append(holes.mean().item())
        return torch.zeros_like(images)

    result = roar({"gt": "ground_truth", "Saliency": Saliency}, fractions=[0.25, 0.5], filler=marking_fill, **TINY)
    assert isinstance(result, RoarResult)
    assert result.fractions == [0.0, 0.25, 0.5]
    assert list(result.accuracy) == ["gt", "Saliency"]
    for values in result.accuracy.values():
        assert values.shape == (3,) and bool(((values >= 0) & (values <= 1)).all())
    # the clean model is shared: one accuracy at t = 0 for every method
    assert result.accuracy["gt"][0] == result.accuracy["Saliency"][0]
    # the filler is used, on exactly the asked fraction of the pixels
    assert pytest.approx(sorted(set(round(v, 2) for v in seen))) == [0.25, 0.5]
    again = roar({"gt": "ground_truth", "Saliency": Saliency}, fractions=[0.25, 0.5], filler=marking_fill, **TINY)
    for name in result.accuracy:
        assert torch.equal(result.accuracy[name], again.accuracy[name])
    assert "| gt |" in result.markdown() and "t = 50 %" in result.markdown()
    assert 0 < result.chance <= 1 and result.seconds > 0


def test_global_random_state_is_left_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    roar("random", fractions=[0.5], **TINY)
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


def test_bad_input_gets_clear_errors():
    with pytest.raises(ValueError, match="fractions"):
        roar("random", fractions=[0.0], **TINY)
    with pytest.raises(ValueError, match="fractions"):
        roar("random", fractions=[1.2], **TINY)
    with pytest.raises(ValueError, match="fractions"):
        roar("random", fractions=[], **TINY)
    with pytest.raises(ValueError, match="control"):
        roar("oracle", **TINY)
    with pytest.raises(TypeError, match="method"):
        roar({"x": 3}, **TINY)
    with pytest.raises(ValueError, match="duplicate"):
        roar(["random", "random"], **TINY)
    with pytest.raises(ValueError, match="n_train"):
        roar("random", n_train=0)
    with pytest.raises(ValueError, match="epochs"):
        roar("random", fractions=[0.5], **{**TINY, "epochs": 0})


@pytest.mark.slow
def test_removing_the_stamp_hurts_far_more_than_removing_random_pixels():
    """The footprint of the stamp is the only cue: removing it (inpainted, so no silhouette is left)
    must bring the retrained model near chance, while removing as many random pixels barely hurts."""
    inpaint = pytest.importorskip("captum_ext.inpaint")
    if not hasattr(inpaint, "get_inpainter"):
        pytest.skip("captum_ext.inpaint.get_inpainter is not merged")
    # one glyph against "no stamp" (chance about 0.5), small enough for a CPU test
    result = roar(["ground_truth", "random"], fractions=[0.15], filler="harmonic", n_train=512, n_test=128,
                  image_size=24, stamp_size=8, num_glyphs=1, width=8, epochs=10)
    clean, truth, rand = result.accuracy["ground_truth"][0], result.accuracy["ground_truth"][1], result.accuracy["random"][1]
    assert clean > 0.9
    assert truth < result.chance + 0.15
    assert rand - truth > 0.3
