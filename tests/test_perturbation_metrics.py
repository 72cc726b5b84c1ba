import math

import numpy as np
import pytest
import torch
from torch import nn

from captum_ext._utils import derive_seed
from captum_ext.inpaint import ConstantInpainter
from captum_ext.metrics.perturbation import (
    SMALL_OBJECT_FRACTIONS,
    ConstantFill,
    deletion_curve,
    insertion_curve,
    insertion_minus_deletion,
    normalised_auc,
    normalized_auc,
    pixel_perturbation,
    pixel_ranks,
    resolve_filler,
)


class LinearScore(nn.Module):
    """f(x) = sum(w * x) + b as a (B, 1) output: every curve has a closed form."""

    def __init__(self, weight: torch.Tensor, bias: float = 0.5) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.clone())
        self.bias = bias

    def forward(self, x):
        return ((x * self.weight).flatten(1).sum(1) + self.bias)[:, None]


class MarkCounter(nn.Module):
    """Counts the pixels whose first channel holds the marker value 7."""

    def forward(self, x):
        return (x[:, 0] == 7.0).flatten(1).sum(1, keepdim=True).to(x.dtype)


def _setup(batch=3, channels=3, size=4, seed=0, device="cpu", dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(channels, size, size, generator=gen, dtype=torch.float64)
    x = torch.rand(batch, channels, size, size, generator=gen, dtype=torch.float64)
    return LinearScore(weight).to(device, dtype), x.to(device, dtype)


def _tol(dtype, tolerance, rtol, atol=0.0):
    """The test's own float64 tolerance; the shared ``tolerance`` fixture's for float32 (the model
    runs in float32, the closed form in float64 from the same float32 numbers)."""
    if dtype == torch.float64:
        return {"rtol": rtol, "atol": atol}
    return dict(zip(("rtol", "atol"), tolerance(dtype)))


def _np(t):
    return t.detach().cpu().double().numpy()


def _closed_form_deletion(model, x, order, counts, fill, insert=False):
    """f after filling the first counts[s] pixels of ``order`` (per image) with ``fill``
    (``insert``: after filling all the other pixels)."""
    w = _np(model.weight)
    xs = _np(x)
    out = np.empty((x.shape[0], len(counts)))
    for b in range(x.shape[0]):
        contrib = (w * xs[b]).sum(0).reshape(-1)  # per pixel
        fill_contrib = (w * fill).sum(0).reshape(-1)
        for s, k in enumerate(counts):
            gone = np.zeros(contrib.shape, dtype=bool)
            gone[order[b][:k]] = True
            gone = ~gone if insert else gone
            out[b, s] = model.bias + contrib[~gone].sum() + fill_contrib[gone].sum()
    return out


def test_perfect_and_reversed_rankings_match_the_closed_form(device, dtype, tolerance):
    model, x = _setup(device=device, dtype=dtype)
    contributions = (model.weight.detach() * x)  # Integrated gradients of a linear model, exactly
    per_pixel = _np(contributions.sum(1).flatten(1))
    tol = _tol(dtype, tolerance, 1e-12, 1e-12)
    fill = 0.25
    counts = [0, 3, 6, 9, 12, 15, 16]  # 16 pixels, 3 per step, a partial last step
    for attributions, order in [
        (contributions, np.argsort(-per_pixel, axis=1, kind="stable")),
        (-contributions, np.argsort(per_pixel, axis=1, kind="stable")),
    ]:
        curve = deletion_curve(model, x, attributions, target=0, inpainter=fill, pixels_per_step=3, softmax=False)
        assert curve.scores.device.type == device.type
        np.testing.assert_allclose(_np(curve.fractions), np.array(counts) / 16)
        expected = _closed_form_deletion(model, x, order, counts, fill)
        np.testing.assert_allclose(_np(curve.scores), expected, **tol)
        np.testing.assert_allclose(_np(curve.auc), np.trapezoid(expected, np.array(counts) / 16, axis=1),
                                   **_tol(dtype, tolerance, 1e-12))
        # insertion keeps the first k pixels and fills the rest: f(fill) + the kept contributions
        ins = insertion_curve(model, x, attributions, target=0, inpainter=fill, pixels_per_step=3, softmax=False)
        expected_ins = _closed_form_deletion(model, x, order, counts, fill, insert=True)
        np.testing.assert_allclose(_np(ins.scores), expected_ins, **tol)
        # linear model: deletion and insertion curves sum to f(x) + f(filled image) at every step
        np.testing.assert_allclose(expected + expected_ins, (expected[:, :1] + expected[:, -1:]).repeat(7, 1))


@pytest.mark.parametrize("shape", [(3, 1, 1), (3, 4, 4), (1, 3, 4, 4)])
def test_constant_tensor_fills_match_the_closed_form(shape):
    """A constant fill of one value per channel or one whole image, for every chunking of the rows."""
    model, x = _setup()
    gen = torch.Generator().manual_seed(1)
    value = torch.rand(shape, generator=gen, dtype=torch.float64)
    a = torch.randn(3, 3, 4, 4, generator=gen, dtype=torch.float64)
    order = np.argsort(-_np(a.sum(1).flatten(1)), axis=1, kind="stable")
    counts = [0, 5, 10, 15, 16]
    fill = _np(value).reshape(value.shape[-3:])
    for insert, fn in ((False, deletion_curve), (True, insertion_curve)):
        expected = _closed_form_deletion(model, x, order, counts, fill, insert=insert)
        for rows in (1, 4, 5, 64):
            scores = fn(model, x, a, target=0, inpainter=value, pixels_per_step=5, softmax=False,
                        max_examples_per_batch=rows).scores
            np.testing.assert_allclose(_np(scores), expected, rtol=1e-12, atol=1e-12)


def test_the_perfect_ranking_deletes_fastest_at_every_step():
    model, x = _setup(batch=2, size=5, seed=1)
    contributions = model.weight.detach() * x
    perfect = deletion_curve(model, x, contributions, target=0, inpainter=0.0, pixels_per_step=2, softmax=False)
    gen = torch.Generator().manual_seed(3)
    for _ in range(5):
        other = deletion_curve(model, x, torch.randn(x.shape, generator=gen, dtype=torch.float64), target=0,
                               inpainter=0.0, pixels_per_step=2, softmax=False)
        assert bool((perfect.scores <= other.scores + 1e-12).all())
        assert bool((perfect.auc <= other.auc + 1e-12).all())


def test_auc_of_a_constant_curve_and_uneven_steps():
    constant = normalized_auc(torch.full((2, 7), 0.3, dtype=torch.float64))
    assert torch.allclose(constant, torch.tensor([0.3, 0.3], dtype=torch.float64))
    fractions = torch.tensor([0.0, 0.5, 0.75, 1.0], dtype=torch.float64)
    values = torch.tensor([[1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    assert normalized_auc(values, fractions).item() == pytest.approx(0.5 + 0.125)
    # a curve of a constant-output model is constant: its AUC is that constant
    model = LinearScore(torch.zeros(1, 3, 3, dtype=torch.float64), bias=0.7)
    curve = deletion_curve(model, torch.rand(2, 1, 3, 3, dtype=torch.float64), torch.rand(2, 1, 3, 3),
                           target=0, softmax=False, pixels_per_step=2)
    assert torch.allclose(curve.auc, torch.full((2,), 0.7, dtype=torch.float64))


def test_auc_errors():
    with pytest.raises(ValueError, match="scores"):
        normalized_auc(torch.ones(2))
    with pytest.raises(ValueError, match="scores"):
        normalized_auc(torch.ones(2, 1))
    with pytest.raises(ValueError, match="fractions"):
        normalized_auc(torch.ones(1, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="increasing"):
        normalized_auc(torch.ones(1, 3), torch.tensor([0.0, 1.0, 0.5]))


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, 3)).eval()


@pytest.mark.parametrize("fn", ["deletion", "insertion", "morf", "lerf"])
def test_batched_equals_one_by_one(fn):
    model = _cnn()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, 8, 8, generator=gen)
    a = torch.randn(5, 3, 8, 8, generator=gen)
    a[:, :, :2] = 0.0  # ties, broken the same way for every image

    def run(inputs, attributions, batch_size):
        if fn in ("morf", "lerf"):
            return pixel_perturbation(model, inputs, attributions, fractions=[0.05, 0.3], order=fn,
                                      inpainter=0.5, max_examples_per_batch=batch_size)
        curve_fn = deletion_curve if fn == "deletion" else insertion_curve
        return curve_fn(model, inputs, attributions, inpainter=0.5, pixels_per_step=5,
                        max_examples_per_batch=batch_size).scores

    batched = run(x, a, 7)
    assert torch.allclose(batched, run(x, a, 1000), atol=1e-6)
    single = torch.cat([run(x[i:i + 1], a[i:i + 1], 3) for i in range(5)])
    assert torch.allclose(batched, single, atol=1e-6)


def test_the_inpainter_is_really_used():
    x = torch.rand(2, 3, 4, 4)
    seen = []

    def marking_fill(images, holes):
        seen.append((images.clone(), holes.clone()))
        assert holes.shape == (images.shape[0], 1, 4, 4) and holes.dtype == images.dtype
        return torch.full_like(images, 7.0)

    a = torch.randn(2, 3, 4, 4)
    deletion = deletion_curve(MarkCounter(), x, a, target=0, inpainter=marking_fill, pixels_per_step=3,
                              softmax=False)
    # a plain callable's all-hole image gets the fallback 0 (apply_inpainter), not the marker
    assert torch.equal(deletion.scores, torch.tensor([0, 3, 6, 9, 12, 15, 0.0], dtype=torch.float64).expand(2, -1))
    insertion = insertion_curve(MarkCounter(), x, a, target=0, inpainter=marking_fill, pixels_per_step=3,
                                softmax=False)
    assert torch.equal(insertion.scores, torch.tensor([0, 13, 10, 7, 4, 1, 0.0], dtype=torch.float64).expand(2, -1))
    # the inpainter sees the images with the hole zeroed (it must not rely on removed content)
    images, holes = seen[0]
    # rows: image-major, 7 steps each; the all-hole last step is not passed to the inpainter
    rows = x.repeat_interleave(7, dim=0)[torch.arange(14) % 7 != 6]
    expected = rows * (1 - holes)
    assert torch.equal(images, expected)
    assert set(holes.unique().tolist()) <= {0.0, 1.0}
    morf = pixel_perturbation(MarkCounter(), x + 1, a, target=0, fractions=[0.25], inpainter=marking_fill,
                              softmax=False)
    assert torch.isnan(morf).all()  # the clean count is 0: relative change undefined


def test_named_fillers_go_through_get_inpainter():
    inpaint = pytest.importorskip("captum_ext.inpaint")
    if not hasattr(inpaint, "get_inpainter"):
        pytest.skip("captum_ext.inpaint.get_inpainter is not merged")
    with pytest.warns(DeprecationWarning, match="resolve_inpainter"):
        assert type(resolve_filler("harmonic")).__name__ == "HarmonicInpainter"
    model = LinearScore(torch.ones(3, 4, 4, dtype=torch.float64), bias=0.0)
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    curve = deletion_curve(model, x, torch.rand(2, 3, 4, 4), target=0, inpainter="constant", pixels_per_step=4,
                           softmax=False)
    assert torch.allclose(curve.scores[:, -1], torch.zeros(2, dtype=torch.float64))  # all pixels 0
    with pytest.raises(ValueError, match="unknown inpainter"):
        deletion_curve(model, x, x, target=0, inpainter="no-such-filler")


def test_pixel_perturbation_closed_form_morf_and_lerf(device, dtype, tolerance):
    model, x = _setup(batch=2, size=10, seed=4, device=device, dtype=dtype)
    x = x + 1.0
    with torch.no_grad():
        model.weight.abs_()  # positive contributions: p(x) > 0
    contributions = (model.weight.detach() * x).amax(1).flatten(1)  # channel max, the default reduction
    fractions = [0.01, 0.05, 0.1, 0.55]
    counts = [1, 5, 10, 55]
    # the clean score in float64 from the same numbers (like the closed form of the curve)
    clean = _closed_form_deletion(model, x, np.zeros((2, 1), dtype=int), [0], 0.0)[:, 0]
    for order, sign in [("morf", -1), ("lerf", 1)]:
        result = pixel_perturbation(model, x, model.weight.detach() * x, target=0, fractions=fractions, order=order,
                                    inpainter=0.0, softmax=False)
        assert result.device.type == device.type
        removal = np.argsort(sign * _np(contributions), axis=1, kind="stable")
        after = _closed_form_deletion(model, x, removal, counts, 0.0)
        expected = np.abs(clean[:, None] - after) / clean[:, None]
        np.testing.assert_allclose(_np(result), expected, **_tol(dtype, tolerance, 1e-10))
    a = model.weight.detach() * x
    assert bool((pixel_perturbation(model, x, a, target=0, order="morf", softmax=False)
                 > pixel_perturbation(model, x, a, target=0, order="lerf", softmax=False)).all())


def test_softmax_target_default_is_the_prediction():
    model = _cnn()
    x = torch.rand(4, 3, 8, 8)
    a = torch.randn(4, 3, 8, 8)
    predicted = model(x).argmax(1)
    default = deletion_curve(model, x, a, pixels_per_step=16)
    explicit = deletion_curve(model, x, a, target=predicted.tolist(), pixels_per_step=16)
    assert torch.equal(default.scores, explicit.scores)
    assert torch.allclose(default.scores[:, 0], model(x).softmax(1).max(1).values.double())
    # the last deletion step is the all-zero image for every input: one probability per class
    assert torch.allclose(default.scores[:, -1], model(torch.zeros(1, 3, 8, 8)).softmax(1)[0, predicted].double())


def test_insertion_minus_deletion_equals_the_closed_form(device, dtype, tolerance):
    model, x = _setup(device=device, dtype=dtype)
    contributions = model.weight.detach() * x
    order = np.argsort(-_np(contributions.sum(1).flatten(1)), axis=1, kind="stable")
    counts = [0, 4, 8, 12, 16]
    grid = np.array(counts) / 16
    deletion = _closed_form_deletion(model, x, order, counts, 0.0)
    insertion = _closed_form_deletion(model, x, order, counts, 0.0, insert=True)
    expected = np.trapezoid(insertion, grid, axis=1) - np.trapezoid(deletion, grid, axis=1)
    both = insertion_minus_deletion(model, x, contributions, target=0, softmax=False, pixels_per_step=4)
    np.testing.assert_allclose(_np(both), expected, **_tol(dtype, tolerance, 1e-12))


def test_additional_forward_args_follow_their_image():
    class Scaled(nn.Module):
        def forward(self, x, scale):
            return torch.stack([x.flatten(1).sum(1) * scale, -x.flatten(1).sum(1)], 1)

    x = torch.rand(3, 1, 4, 4, dtype=torch.float64)
    scale = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    curve = deletion_curve(Scaled(), x, x, target=0, pixels_per_step=4, softmax=False, max_examples_per_batch=5,
                           additional_forward_args=(scale,))
    unscaled = deletion_curve(Scaled(), x, x, target=0, pixels_per_step=4, softmax=False,
                              additional_forward_args=(torch.ones(3, dtype=torch.float64),))
    assert torch.allclose(curve.scores, unscaled.scores * scale[:, None])


def test_model_is_left_unchanged():
    model = _cnn().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    deletion_curve(model, torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), target=0, pixels_per_step=16)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters())


def test_pixel_ranks_break_ties_the_same_way_for_every_image():
    ranks = pixel_ranks(torch.zeros(3, 10))
    assert torch.equal(ranks[0], ranks[1]) and torch.equal(ranks[0], ranks[2])
    assert sorted(ranks[0].tolist()) == list(range(10))
    assert pixel_ranks(torch.tensor([[3.0, 1.0, 2.0]]), descending=False).tolist() == [[2, 0, 1]]


def test_bad_input_gets_clear_errors():
    model = _cnn()
    x, a = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="pixels_per_step"):
        deletion_curve(model, x, a, pixels_per_step=0)
    with pytest.raises(ValueError, match="pixels_per_step"):
        deletion_curve(model, x, a, pixels_per_step=65)
    with pytest.raises(TypeError, match="pixels_per_step"):
        insertion_curve(model, x, a, pixels_per_step=2.5)
    with pytest.raises(ValueError, match="fractions"):
        pixel_perturbation(model, x, a, fractions=[0.1, 1.5])
    with pytest.raises(ValueError, match="fractions"):
        pixel_perturbation(model, x, a, fractions=[-0.01])
    with pytest.raises(ValueError, match="fractions"):
        pixel_perturbation(model, x, a, fractions=[])
    with pytest.raises(ValueError, match="order"):
        pixel_perturbation(model, x, a, order="most")
    with pytest.raises(ValueError, match="attributions"):
        deletion_curve(model, x, torch.rand(2, 3, 8, 7))
    with pytest.raises(ValueError, match="attributions"):
        deletion_curve(model, x, torch.rand(3, 3, 8, 8))
    with pytest.raises(ValueError, match="inputs"):
        deletion_curve(model, x[0], a[0])
    with pytest.raises(ValueError, match="max_examples_per_batch"):
        deletion_curve(model, x, a, max_examples_per_batch=0)
    with pytest.raises(ValueError, match="reduce"):
        deletion_curve(model, x, a, reduce="median")
    with pytest.raises(ValueError, match="target"):
        deletion_curve(model, x, a, target=[0, 1, 2])
    with pytest.raises(TypeError, match="inpainter"):
        deletion_curve(model, x, a, inpainter=None)
    with pytest.raises(TypeError, match="inpainter"):
        deletion_curve(model, x, a, inpainter=True)
    with pytest.raises(ValueError, match="inpainter"):
        deletion_curve(model, x, a, inpainter=lambda images, holes: images[:, :1])
    with pytest.raises(ValueError, match="target"):
        deletion_curve(model, x, a, target=5)  # out of range for 3 classes
    with pytest.raises(ValueError, match="target"):
        deletion_curve(model, x, a, target=torch.tensor([[0, 1], [1, 0]]))
    with pytest.raises(ValueError, match="pixels_per_step"):
        deletion_curve(model, x, a, pixels_per_step=4, fractions=[0.0, 1.0])
    with pytest.raises(ValueError, match="fractions"):
        deletion_curve(model, x, a, fractions=[0.0, 0.001, 1.0])  # 0.001 * 64 rounds to 0 pixels
    with pytest.raises(ValueError, match="fractions"):
        insertion_curve(model, x, a, fractions=[0.0, math.nan, 1.0])
    with pytest.raises(TypeError, match="unexpected"):
        deletion_curve(model, x, a, fill=0.0)
    with pytest.raises(ValueError, match="forward_func"):
        deletion_curve(lambda t: t.sum(), x, a, target=0)


def test_old_names_are_deprecated_aliases_that_give_the_same_result():
    model, x = _setup()
    a = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    new = deletion_curve(model, x, a, target=0, inpainter=0.25, pixels_per_step=3, max_examples_per_batch=4,
                         softmax=False)
    with pytest.warns(DeprecationWarning, match="filler"):
        old = deletion_curve(model, x, a, target=0, filler=0.25, pixels_per_step=3, softmax=False)
    assert torch.equal(new.scores, old.scores)
    with pytest.warns(DeprecationWarning, match="batch_size"):
        old = pixel_perturbation(model, x, a, target=0, batch_size=4, softmax=False)
    assert torch.equal(old, pixel_perturbation(model, x, a, target=0, softmax=False))
    with pytest.raises(TypeError, match="inpainter"):
        deletion_curve(model, x, a, inpainter=0.5, filler=0.25)
    with pytest.warns(DeprecationWarning, match="ConstantInpainter"):
        fill = ConstantFill(torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1))
    assert isinstance(fill, ConstantInpainter)
    out = fill(torch.zeros(1, 3, 2, 2), torch.ones(1, 1, 2, 2))
    assert out[0, :, 0, 0].tolist() == [1.0, 2.0, 3.0]
    with pytest.warns(DeprecationWarning, match="normalized_auc"):
        assert normalised_auc(torch.tensor([[1.0, 0.0]])).item() == 0.5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    model = _cnn().cuda()
    x, a = torch.rand(2, 3, 8, 8, device="cuda"), torch.rand(2, 3, 8, 8, device="cuda")
    cpu = deletion_curve(model.cpu(), x.cpu(), a.cpu(), pixels_per_step=16).scores
    gpu = deletion_curve(model.cuda(), x, a, pixels_per_step=16).scores
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-5)


def test_benchmark_columns():
    from captum_ext.benchmark.cli import main
    from captum_ext.benchmark.registry import available_metrics
    from captum_ext.benchmark.runner import BenchmarkConfig, held_out_images, run_benchmark
    from captum_ext.data import StampNet
    from captum_ext.metrics.perturbation import pixel_ranks

    metrics = available_metrics()
    assert {"deletion", "insertion", "insertion_minus_deletion"} <= {n for n, m in metrics.items() if m.default}
    assert metrics["deletion"].lower_is_better and not metrics["insertion"].lower_is_better
    torch.manual_seed(0)
    config = BenchmarkConfig(n_images=3, methods=["Saliency"], metrics=["deletion", "insertion",
                             "insertion_minus_deletion", "morf"], progress=False, only_correct=False,
                             options={"filler": 0.0, "perturbation_steps": 4})
    model = StampNet().eval()
    result = run_benchmark(config, model=model)
    values = result.per_image["Saliency"]
    # oracle: the curves rebuilt by hand from the run's images and maps, 4 steps of 1024 of the
    # 4096 pixels set to the filler 0 (deletion) or kept from a black image (insertion), most
    # |attribution| first, the softmax probability of the label, trapezoid over the fraction
    images, labels, _ = held_out_images(model, 3, 0, "cpu", only_correct=False)
    assert torch.equal(images, result.images)
    order = pixel_ranks(result.maps["Saliency"].abs().sum(1).flatten(1))  # (3, 4096) ranks
    fractions = torch.arange(5, dtype=torch.float64) / 4
    with torch.no_grad():
        for column, insert in (("deletion", False), ("insertion", True)):
            scores = torch.empty(3, 5, dtype=torch.float64)
            for step in range(5):
                removed = (order < 1024 * step).view(3, 1, 64, 64)
                kept = removed if insert else ~removed
                probs = torch.softmax(model(images * kept), dim=1)
                scores[:, step] = probs[torch.arange(3), labels].double()
            auc = torch.trapezoid(scores, fractions, dim=1)
            torch.testing.assert_close(values[column].double(), auc, rtol=0, atol=1e-6)
    torch.testing.assert_close(values["insertion_minus_deletion"], values["insertion"] - values["deletion"],
                               rtol=0, atol=0)
    assert not torch.allclose(values["deletion"], values["insertion"])  # the two curves differ
    assert "| deletion ↓ | insertion ↑ |" in result.markdown()
    assert main(["benchmark", "--filler", "no-such-filler", "--n-images", "1"]) == 2


def test_fractions_schedule_matches_the_closed_form_and_its_auc():
    model, x = _setup(batch=2, channels=3, size=20, seed=5)  # 400 pixels
    contributions = model.weight.detach() * x
    per_pixel = contributions.sum(1).flatten(1).numpy()
    order = np.argsort(-per_pixel, axis=1, kind="stable")
    assert SMALL_OBJECT_FRACTIONS[:6] == (0.0, 0.005, 0.01, 0.02, 0.05, 0.1)
    assert SMALL_OBJECT_FRACTIONS[-1] == 1.0 and list(SMALL_OBJECT_FRACTIONS) == sorted(SMALL_OBJECT_FRACTIONS)
    counts = [round(f * 400) for f in SMALL_OBJECT_FRACTIONS]  # 0, 2, 4, 8, 20, 40, 80, ...
    for fn, insert in [(deletion_curve, False), (insertion_curve, True)]:
        curve = fn(model, x, contributions, target=0, inpainter=0.25, fractions=SMALL_OBJECT_FRACTIONS,
                   softmax=False)
        expected = _closed_form_deletion(model, x, order, counts, 0.25, insert=insert)
        np.testing.assert_allclose(curve.scores.numpy(), expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(curve.fractions.numpy(), np.array(counts) / 400)
        # the AUC is over the fraction of pixels removed, not over the step number
        np.testing.assert_allclose(curve.auc.numpy(), np.trapezoid(expected, np.array(counts) / 400, axis=1),
                                   rtol=1e-12)
        assert not np.allclose(curve.auc.numpy(), expected.mean(1))


def test_a_nonfinite_map_gives_nan_for_exactly_that_image():
    # the NaN policy (issue 13): NaN for the affected image, the others unchanged
    model, x = _setup(batch=3)
    a = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    clean = deletion_curve(model, x[[0, 2]], a[[0, 2]], target=0, pixels_per_step=3, softmax=False)
    a[1, 0, 2, 2] = math.nan
    out = deletion_curve(model, x, a, target=0, pixels_per_step=3, softmax=False)
    assert torch.isnan(out.scores[1]).all() and torch.isnan(out.auc[1])
    assert torch.equal(out.scores[[0, 2]], clean.scores)
    morf = pixel_perturbation(model, x, a, target=0, softmax=False)
    assert torch.isnan(morf[1]).all() and torch.isfinite(morf[[0, 2]]).all()


def test_three_dimensional_maps_are_batches_of_two_dimensional_maps():
    model, x = _setup(batch=3, channels=1)
    a = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    flat = deletion_curve(model, x, a, target=0, pixels_per_step=3, softmax=False)
    assert torch.equal(flat.scores, deletion_curve(model, x, a[:, None], target=0, pixels_per_step=3,
                                                   softmax=False).scores)


@pytest.mark.parametrize("fn", ["deletion", "insertion", "both", "morf"])
def test_an_empty_batch_returns_an_empty_result_and_runs_no_model(fn):
    def never(x):
        raise AssertionError("the model must not run on an empty batch")

    x, a = torch.zeros(0, 3, 8, 8), torch.zeros(0, 3, 8, 8)
    if fn == "morf":
        assert pixel_perturbation(never, x, a, fractions=[0.1, 0.2]).shape == (0, 2)
    elif fn == "both":
        assert insertion_minus_deletion(never, x, a, pixels_per_step=16).shape == (0,)
    else:
        curve = (deletion_curve if fn == "deletion" else insertion_curve)(never, x, a, pixels_per_step=16)
        assert curve.scores.shape == (0, 5) and curve.auc.shape == (0,)


def test_a_model_that_raises_mid_forward_and_a_train_mode_model_are_left_unchanged():
    class Flaky(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _cnn()
            self.bn = nn.BatchNorm2d(3)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("boom")
            return self.net(self.bn(x))

    model = Flaky().train()
    model.net[0].weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError, match="boom"):
        deletion_curve(model, torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), target=0, pixels_per_step=16,
                       max_examples_per_batch=2)
    assert model.training and model.net.training
    assert not model.net[0].weight.requires_grad
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN statistics too
    model.calls = -100
    deletion_curve(model, torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), target=0, pixels_per_step=16)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_linear_inpainter_by_name_gives_batch_independent_results():
    model = _cnn()
    gen = torch.Generator().manual_seed(0)
    x, a = torch.rand(3, 3, 8, 8, generator=gen), torch.randn(3, 3, 8, 8, generator=gen)
    batched = deletion_curve(model, x, a, target=0, inpainter="linear", pixels_per_step=16).scores
    # the noise of image b is seeded by (position, step): one image alone at position 0 matches
    first = deletion_curve(model, x[:1], a[:1], target=0, inpainter="linear", pixels_per_step=16).scores
    assert torch.allclose(batched[:1], first, atol=1e-6)
    assert not torch.allclose(batched[:, 1:-1], deletion_curve(model, x, a, target=0, inpainter=0.0,
                                                               pixels_per_step=16).scores[:, 1:-1])


def test_benchmark_perturbation_columns_equal_the_metrics():
    from captum_ext.benchmark.registry import MetricContext, available_metrics

    metrics = available_metrics()
    model = _cnn()
    gen = torch.Generator().manual_seed(4)
    x, a = torch.rand(3, 3, 8, 8, generator=gen), torch.randn(3, 3, 8, 8, generator=gen)
    target = torch.tensor([0, 2, 1])
    for key in ("inpainter", "filler"):  # the CLI's new and old option names
        context = MetricContext(model, x, target, a, torch.zeros(3, 1, 8, 8),
                                {key: 0.5, "perturbation_steps": 4, "abs": False})
        deletion = deletion_curve(model, x, a, target, inpainter=0.5, pixels_per_step=16)
        insertion = insertion_curve(model, x, a, target, inpainter=0.5, pixels_per_step=16)
        assert torch.equal(metrics["deletion"].fn(context), deletion.auc)
        assert torch.equal(metrics["insertion"].fn(context), insertion.auc)
        assert torch.equal(metrics["insertion_minus_deletion"].fn(context), insertion.auc - deletion.auc)
        morf = pixel_perturbation(model, x, a, target, order="morf", inpainter=0.5).mean(1)
        assert torch.equal(metrics["morf"].fn(context), morf)


class RowByRow(nn.Module):
    """A CNN evaluated one row at a time: its output for an image never depends on the batch
    (batched convolutions and matrix products may round differently with the batch size)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = _cnn()

    def forward(self, x):
        return torch.cat([self.net(row[None]) for row in x])


@pytest.mark.parametrize("rows", [4, 9, 20, 64])
def test_road_of_a_batch_equals_its_images_one_at_a_time_exactly(rows):
    """With ``image_indices`` the noisy linear imputation of an image sees the same rows (its
    own, chunked at the same offsets) and the same noise whatever batch it is in."""
    from captum_ext.metrics.road import road

    model = RowByRow().eval()
    gen = torch.Generator().manual_seed(2)
    x, a = torch.rand(3, 3, 12, 12, generator=gen), torch.randn(3, 3, 12, 12, generator=gen)
    keys = [derive_seed(7, i) for i in range(3)]
    for order in ("morf", "lerf"):
        batched = road(model, x, a, target=[0, 1, 2], order=order, image_indices=keys, max_examples_per_batch=rows)
        for i in range(3):
            alone = road(model, x[i:i + 1], a[i:i + 1], target=[i], order=order, image_indices=keys[i:i + 1],
                         max_examples_per_batch=rows)
            assert torch.equal(batched.scores[i:i + 1], alone.scores)
            assert torch.equal(batched.correct[i:i + 1], alone.correct)
    # and the noise is really drawn from the keys: other keys give other scores
    other = road(model, x, a, target=[0, 1, 2], image_indices=[k + 1 for k in keys], max_examples_per_batch=rows)
    assert not torch.equal(other.scores, road(model, x, a, target=[0, 1, 2], image_indices=keys,
                                              max_examples_per_batch=rows).scores)
