import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from captum_ext.metrics import (
    mean_and_interval,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    roc_auc,
    stamp_distance,
)


def _stamp_masks(batch=4, size=16):
    masks = torch.zeros(batch, 1, size, size)
    for i in range(batch):
        masks[i, 0, i : i + 4, 2 * i : 2 * i + 3] = 1
    return masks


# The metrics accumulate in float64 whatever the input dtype, so the oracle tests below that take
# ``device, dtype`` keep their float64 tolerances for float32 inputs too; the oracle is computed from
# the same (dtype-rounded) inputs.


def _f64(device):
    return {"dtype": torch.float64, "device": device}


def test_perfect_map_scores_zero_and_inverted_four(device, dtype):
    masks = _stamp_masks().to(device, dtype)
    d = stamp_distance(masks, masks)
    assert d.dtype == torch.float64 and d.device.type == device.type
    assert torch.allclose(d, torch.zeros(4, **_f64(device)), atol=1e-12)
    assert torch.allclose(stamp_distance(1 - masks, masks), torch.full((4,), 4.0, **_f64(device)))


def test_equals_two_times_one_minus_pearson(device, dtype):
    a = torch.randn(3, 3, 10, 10).to(device, dtype)
    masks = _stamp_masks(3, 10).to(device, dtype)
    s = a.double().sum(1).flatten(1)
    m = masks.flatten(1).double()
    rho = torch.stack([torch.corrcoef(torch.stack([s[i], m[i]]))[0, 1] for i in range(3)])
    assert torch.allclose(stamp_distance(a, masks), 2 * (1 - rho), atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(scale=st.floats(1e-3, 1e3), shift=st.floats(-1e3, 1e3), seed=st.integers(0, 10_000))
def test_invariant_to_positive_scaling_and_shift_and_sign_flip_gives_four_minus(scale, shift, seed):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(2, 3, 12, 12, generator=gen, dtype=torch.float64)
    masks = _stamp_masks(2, 12)
    d = stamp_distance(a, masks)
    assert torch.allclose(stamp_distance(a * scale + shift / 3, masks), d, atol=1e-6)
    assert torch.allclose(stamp_distance(-a, masks), 4 - d, atol=1e-9)


def test_random_maps_average_two():
    gen = torch.Generator().manual_seed(1)
    masks = _stamp_masks(4, 32).repeat(100, 1, 1, 1)
    d = stamp_distance(torch.rand(400, 3, 32, 32, generator=gen), masks)
    # per image, 2 * (1 - rho) with rho ~ N(0, 1/N), N = 1024: the mean of 400 has sd 2/sqrt(1024*400)
    assert abs(d.mean().item() - 2.0) < 5 * 2 / math.sqrt(1024 * 400)


def test_constant_maps_and_degenerate_masks_are_nan_never_perfect():
    masks = _stamp_masks(2, 8)
    constant = torch.full((2, 3, 8, 8), 0.7)
    assert torch.isnan(stamp_distance(constant, masks)).all()
    assert torch.isnan(stamp_distance(torch.rand(2, 3, 8, 8), torch.zeros(2, 1, 8, 8))).all()
    assert torch.isnan(stamp_distance(torch.rand(2, 3, 8, 8), torch.ones(2, 1, 8, 8))).all()
    assert (pointing_game(constant, masks) == 0).all()
    assert (relevance_rank_accuracy(constant, masks) < 1).all()
    assert (relevance_mass_accuracy(constant, masks) < 1).all()
    assert torch.allclose(roc_auc(constant, masks), torch.full((2,), 0.5, dtype=torch.float64))


def test_abs_option_turns_an_inverted_signed_map_into_a_perfect_one():
    masks = _stamp_masks(2, 8)
    assert torch.allclose(stamp_distance(-masks, masks, abs=True), torch.zeros(2, dtype=torch.float64), atol=1e-12)


def test_pointing_game():
    masks = _stamp_masks(2, 8)
    a = torch.zeros(2, 1, 8, 8)
    a[0, 0, 0, 0] = 1.0  # inside mask 0 (rows 0..3, cols 0..2)
    a[1, 0, 7, 7] = 1.0  # outside mask 1
    assert pointing_game(a, masks).tolist() == [1.0, 0.0]
    assert torch.isnan(pointing_game(a, torch.zeros(2, 1, 8, 8))).all()


def test_relevance_mass_and_rank_and_auc_on_known_maps(device, dtype):
    mask = torch.zeros(1, 1, 2, 2, dtype=dtype, device=device)
    mask[0, 0, 0] = 1  # top row
    a = torch.tensor([[[[3.0, 1.0], [2.0, -5.0]]]], dtype=dtype, device=device)
    assert relevance_mass_accuracy(a, mask).item() == pytest.approx(4 / 6)
    assert relevance_rank_accuracy(a, mask).item() == pytest.approx(0.5)  # top-2 = {3, 2}
    # positives {3, 1}, negatives {2, -5}: pairs won 3>2, 3>-5, 1>-5; lost 1<2 -> 3/4
    assert roc_auc(a, mask).item() == pytest.approx(0.75)


def test_roc_auc_matches_sklearn(device, dtype):
    sklearn = pytest.importorskip("sklearn.metrics")
    gen = torch.Generator().manual_seed(3)
    a = torch.randint(0, 5, (3, 1, 9, 9), generator=gen).to(dtype)  # many ties
    masks = (torch.rand(3, 1, 9, 9, generator=gen) < 0.3).to(dtype)
    ours = roc_auc(a.to(device), masks.to(device))
    assert ours.device.type == device.type
    for i in range(3):
        ref = sklearn.roc_auc_score(masks[i].flatten().numpy(), a[i].flatten().numpy())
        assert ours[i].item() == pytest.approx(ref, abs=1e-12)


def test_tuple_attributions_are_concatenated_per_image():
    masks = _stamp_masks(2, 8)
    a = torch.rand(2, 3, 8, 8)
    d_tuple = stamp_distance((a, a), (masks, masks))
    d_cat = stamp_distance(torch.cat([a, a], dim=3), torch.cat([masks, masks], dim=3))
    assert torch.allclose(d_tuple, d_cat)


def test_batched_equals_one_by_one():
    a = torch.randn(5, 3, 8, 8)
    masks = _stamp_masks(5, 8)
    for fn in (stamp_distance, pointing_game, relevance_mass_accuracy, relevance_rank_accuracy, roc_auc):
        batched = fn(a, masks)
        single = torch.cat([fn(a[i : i + 1], masks[i : i + 1]) for i in range(5)])
        assert torch.allclose(batched, single, equal_nan=True), fn.__name__


def test_bad_input_errors():
    a = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="masks"):
        stamp_distance(a, torch.zeros(2, 1, 7, 8))
    with pytest.raises(ValueError, match="binary"):
        stamp_distance(a, torch.full((2, 1, 8, 8), 0.5))
    with pytest.raises(TypeError, match="masks"):
        stamp_distance(a, [[0]])
    with pytest.raises(TypeError, match="attributions"):
        stamp_distance(torch.zeros(2, 3, 8, 8, dtype=torch.bool), torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="structure"):
        stamp_distance((a, a), torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="B, C, H, W"):
        stamp_distance(torch.rand(8, 8), torch.zeros(8, 8))
    with pytest.raises(ValueError, match="masks"):  # a multi-channel mask is not a mask
        stamp_distance(a, torch.zeros(2, 3, 8, 8))


ALL_METRICS = (stamp_distance, pointing_game, relevance_mass_accuracy, relevance_rank_accuracy, roc_auc)


@pytest.mark.parametrize("fn", ALL_METRICS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_nonfinite_map_gives_nan_for_exactly_that_image(fn, bad):
    # regression (issue 13): pointing_game counted a NaN map as a hit, roc_auc and
    # relevance_rank_accuracy ranked NaN as the largest value and returned finite numbers
    gen = torch.Generator().manual_seed(0)
    masks = _stamp_masks(3, 8)
    a = torch.rand(3, 1, 8, 8, generator=gen)
    a[1] = masks[1] * 2 - 1  # a perfect map ...
    a[1, 0, 1, 2] = bad  # ... spoilt by one value inside the mask
    clean = fn(a[[0, 2]], masks[[0, 2]])
    out = fn(a, masks)
    assert torch.isnan(out[1])
    assert torch.equal(out[[0, 2]], clean)


@pytest.mark.parametrize("fn", ALL_METRICS, ids=lambda f: f.__name__)
def test_three_dimensional_maps_and_masks_are_batches_of_two_dimensional_maps(fn):
    # regression (issue 13): (B, H, W) was read as (B, C=H, W), summing over the rows
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(3, 8, 10, generator=gen)
    masks = torch.zeros(3, 8, 10)
    masks[:, 2:5, 1:4] = 1
    masks[1, 6, 8] = 1
    expected = fn(a.unsqueeze(1), masks.unsqueeze(1))
    assert torch.equal(fn(a, masks), expected)
    assert torch.equal(fn(a, masks.unsqueeze(1)), expected)
    assert torch.equal(fn(a.unsqueeze(1), masks), expected)
    # the oracle: the value computed from the flat pixel lists
    if fn is roc_auc:
        from sklearn.metrics import roc_auc_score

        ref = [roc_auc_score(masks[i].flatten().numpy(), a[i].flatten().numpy()) for i in range(3)]
        assert expected.tolist() == pytest.approx(ref, abs=1e-12)
    if fn is pointing_game:
        hits = [float(bool(masks[i].flatten()[a[i].flatten().argmax()])) for i in range(3)]
        assert expected.tolist() == hits


@pytest.mark.parametrize("fn", ALL_METRICS, ids=lambda f: f.__name__)
def test_an_empty_batch_gives_an_empty_result(fn):
    out = fn(torch.zeros(0, 3, 8, 8), torch.zeros(0, 1, 8, 8))
    assert out.shape == (0,) and out.dtype == torch.float64


def test_mean_and_interval_ignores_nan():
    mean, half, count = mean_and_interval(torch.tensor([1.0, float("nan"), 3.0]))
    assert (mean, count) == (2.0, 2)
    assert half == pytest.approx(1.959964 * math.sqrt(2) / math.sqrt(2), rel=1e-5)
