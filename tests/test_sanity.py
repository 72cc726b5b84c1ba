import numpy as np
import pytest
import torch
from captum.attr import Saliency
from scipy.stats import spearmanr
from skimage.feature import hog
from skimage.metrics import structural_similarity
from torch import nn

from captum_ext._utils import num_hooks
from captum_ext.metrics.sanity import (
    cascading_randomisation,
    cascading_randomization,
    randomisation_layers,
    randomization_layers,
    resolve_methods,
)
from captum_ext.metrics.similarity import (
    average_ranks,
    hog_features,
    map_similarities,
    normalise_abs_map,
    normalize_abs_map,
    pearson,
    spearman,
    ssim,
)


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, 3),
    ).eval()


def edge_detector(model):
    """A 'method' that ignores the model: the image's gradient magnitude (Sobel)."""
    import kornia

    return lambda x, t: kornia.filters.sobel(x)


def saliency(model):
    method = Saliency(model)
    return lambda x, t: method.attribute(x, target=t, abs=True)


# ----------------------------------------------------------------------------- oracles


def test_spearman_matches_scipy_with_ties():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 6, (4, 60), generator=gen).double()
    y = x + torch.randint(0, 4, (4, 60), generator=gen).double()
    ours = spearman(x, y)
    for i in range(4):
        assert ours[i].item() == pytest.approx(spearmanr(x[i].numpy(), y[i].numpy()).statistic, abs=1e-12)
    assert torch.isnan(spearman(torch.ones(1, 5), torch.rand(1, 5))).all()
    assert spearman(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[3.0, 2.0, 1.0]])).item() == pytest.approx(-1.0)


def test_pearson_matches_numpy():
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(3, 40, generator=gen), torch.randn(3, 40, generator=gen)
    for i in range(3):
        assert pearson(x, y)[i].item() == pytest.approx(np.corrcoef(x[i].numpy(), y[i].numpy())[0, 1], abs=1e-6)


@pytest.mark.parametrize("shape", [(32, 32), (40, 37), (7, 9)])
def test_ssim_matches_scikit_image(shape):
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(3, *shape, generator=gen, dtype=torch.float64)
    y = (0.6 * x + 0.4 * torch.rand(3, *shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    ours = ssim(x, y)
    for i in range(3):
        expected = structural_similarity(x[i].numpy(), y[i].numpy(), data_range=1.0)
        assert ours[i].item() == pytest.approx(expected, abs=1e-12)
    assert torch.allclose(ssim(x, x), torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("shape", [(32, 32), (48, 41)])
def test_hog_matches_scikit_image(shape):
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(2, *shape, generator=gen, dtype=torch.float64)
    x[1, 10:20, 5:30] = 0.0  # flat areas: zero gradients, orientation 0
    ours = hog_features(x)
    for i in range(2):
        expected = hog(x[i].numpy(), orientations=9, pixels_per_cell=(8, 8), cells_per_block=(3, 3),
                       block_norm="L2-Hys")
        assert ours.shape[1] == expected.shape[0]
        # scikit-image sums each cell in single precision; ours is float64 throughout
        np.testing.assert_allclose(ours[i].numpy(), expected, atol=2e-6)


def test_normalise_abs_map_is_the_pair_grayscale_visualisation():
    gen = torch.Generator().manual_seed(4)
    a = torch.randn(2, 3, 9, 11, generator=gen, dtype=torch.float64)
    ours = normalize_abs_map(a)
    for i in range(2):
        image = np.abs(a[i].numpy()).sum(0)
        vmax, vmin = np.percentile(image, 99), image.min()
        np.testing.assert_allclose(ours[i].numpy(), np.clip((image - vmin) / (vmax - vmin), 0, 1), atol=1e-12)
    assert torch.equal(normalize_abs_map(torch.ones(1, 1, 3, 3)), torch.zeros(1, 3, 3, dtype=torch.float64))


def test_map_similarities_of_identical_and_unrelated_maps():
    gen = torch.Generator().manual_seed(5)
    a, b = torch.rand(4, 3, 32, 32, generator=gen), torch.rand(4, 3, 32, 32, generator=gen)
    same = map_similarities(a, a)
    for measure in ("spearman_abs", "spearman", "ssim", "hog"):
        assert torch.allclose(same[measure], torch.ones(4, dtype=torch.float64))
    other = map_similarities(a, b)
    assert bool((other["spearman_abs"].abs() < 0.2).all()) and bool((other["ssim"] < 0.2).all())
    assert torch.isnan(map_similarities(a[:, :, :16, :16], b[:, :, :16, :16])["hog"]).all()  # too small for HOG


# ----------------------------------------------------------------------------- randomization


def test_randomization_leaves_the_model_bit_identical():
    model = _net().train()
    model[0].weight.requires_grad_(False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    params = list(model.parameters())
    hooks = num_hooks(model)
    result = cascading_randomization(model, {"Saliency": saliency}, torch.rand(3, 3, 32, 32), target=0)
    assert result.stages == ["original", "6", "2", "0"]
    assert list(model.parameters()) == params and all(p1 is p2 for p1, p2 in zip(model.parameters(), params))
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert model.training and not model[0].weight.requires_grad and model[2].weight.requires_grad
    assert num_hooks(model) == hooks


def test_model_is_untouched_when_a_method_raises():
    model = _net()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []

    def failing(m):
        def explain(x, t):
            calls.append(1)
            if len(calls) > 1:
                raise RuntimeError("boom")
            return x

        return explain

    with pytest.raises(RuntimeError, match="boom"):
        cascading_randomization(model, {"failing": failing}, torch.rand(2, 3, 32, 32), target=0)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_edge_detector_fails_and_saliency_passes():
    model = _net()
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    result = cascading_randomization(model, {"edges": edge_detector, "Saliency": saliency}, x,
                                     target=model(x).argmax(1))
    for measure in ("spearman_abs", "spearman", "ssim", "hog"):
        assert torch.allclose(result.curve("edges", measure), torch.ones(4, dtype=torch.float64))
    assert result.passed() == {"edges": False, "Saliency": True}
    assert result.summary()["Saliency"] < 0.5
    assert torch.allclose(result.curve("Saliency", "ssim")[:1], torch.ones(1, dtype=torch.float64))
    assert "| edges |" in result.markdown() and result.markdown().count("| no |") == 1


def _recording(log):
    """A method that records the parameters of the model it is built on."""
    def build(model):
        log.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return lambda x, t: x
    return build


def test_cascading_and_independent_stages_randomize_the_right_layers():
    model = _net()
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    layers = ["6", "2", "0"]
    for mode in ("cascading", "independent"):
        log = []
        cascading_randomization(model, {"rec": _recording(log)}, torch.rand(1, 3, 32, 32), 0, mode=mode)
        assert len(log) == 4 and all(torch.equal(log[0][k], trained[k]) for k in trained)
        for stage in range(1, 4):
            changed = {k.split(".")[0] for k in trained if not torch.equal(log[stage][k], trained[k])}
            expected = set(layers[:stage]) if mode == "cascading" else {layers[stage - 1]}
            assert changed == expected, (mode, stage)
        # the re-draw is N(0, 0.1^2): its spread is 0.1, not the trained weights'
        assert log[1]["6.weight"].std().item() == pytest.approx(0.1, rel=0.2)


def test_custom_layers_init_and_factory():
    model = _net()
    log = []
    seen = []
    result = cascading_randomization(lambda: model, {"rec": _recording(log)}, torch.rand(1, 3, 32, 32), 0,
                                     layers=["6", "0"], init=lambda m: (seen.append(m), m.reset_parameters()))
    assert result.stages == ["original", "6", "0"]
    assert [type(m).__name__ for m in seen] == ["Linear", "Conv2d"]
    assert all(m is not model[6] and m is not model[0] for m in seen)  # a copy was randomised
    x = torch.rand(2, 3, 32, 32)
    a = cascading_randomization(model, [Saliency], x, 0, seed=3)
    b = cascading_randomization(model, [Saliency], x, 0, seed=3)
    c = cascading_randomization(model, [Saliency], x, 0, seed=4)
    assert list(a.similarities) == ["Saliency"]
    assert a.similarities["Saliency"]["spearman"].shape == (4, 2)
    assert torch.equal(a.similarities["Saliency"]["ssim"], b.similarities["Saliency"]["ssim"])
    assert not torch.equal(a.similarities["Saliency"]["ssim"], c.similarities["Saliency"]["ssim"])


def test_same_seed_same_result_batched_equals_one_by_one():
    model = _net()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    batched = cascading_randomization(model, {"s": saliency}, x, 1, batch_size=4)
    chunked = cascading_randomization(model, {"s": saliency}, x, 1, batch_size=3)
    for measure in ("spearman_abs", "ssim", "hog"):
        assert torch.allclose(batched.similarities["s"][measure], chunked.similarities["s"][measure], atol=1e-6)


def test_kept_maps_are_the_normalized_maps_of_the_first_image_per_stage():
    import kornia

    model = _net()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(12))
    result = cascading_randomization(model, {"edges": edge_detector, "Saliency": saliency}, x, 0)
    # stage 0 is the trained model's map of image 0; the edge map ignores the model: every
    # stage shows the same normalized Sobel map, while Saliency's maps change with the weights
    kept = result.maps["Saliency"]
    assert kept.shape[:2] == (4, 1)
    torch.testing.assert_close(kept[0], normalize_abs_map(saliency(model)(x[:1], 0)),
                               rtol=1e-5, atol=1e-6)  # float32 gradients of a batch of 2 vs 1
    edges = normalize_abs_map(kornia.filters.sobel(x[:1]))
    for stage in range(4):
        torch.testing.assert_close(result.maps["edges"][stage], edges)
        if stage > 0:
            assert not torch.allclose(kept[stage], kept[0], atol=1e-3)


def test_default_layers_are_top_down():
    assert randomization_layers(_net()) == ["6", "2", "0"]
    assert list(resolve_methods({"a": saliency, "b": Saliency})) == ["a", "b"]


def test_bad_input_gets_clear_errors():
    model, x = _net(), torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match="layers"):
        cascading_randomization(model, [Saliency], x, 0, layers=["nope"])
    with pytest.raises(ValueError, match="no parameters"):
        cascading_randomization(model, [Saliency], x, 0, layers=["1"])
    with pytest.raises(TypeError, match="layers"):
        cascading_randomization(model, [Saliency], x, 0, layers="6")
    with pytest.raises(ValueError, match="mode"):
        cascading_randomization(model, [Saliency], x, 0, mode="random")
    with pytest.raises(ValueError, match="std"):
        cascading_randomization(model, [Saliency], x, 0, std=0.0)
    with pytest.raises(ValueError, match="inputs"):
        cascading_randomization(model, [Saliency], x[0], 0)
    with pytest.raises(ValueError, match="target"):
        cascading_randomization(model, [Saliency], x, [0, 1, 2])
    with pytest.raises(TypeError, match="method"):
        cascading_randomization(model, {"x": 3}, x, 0)
    with pytest.raises(ValueError, match="duplicate"):
        cascading_randomization(model, [Saliency, Saliency], x, 0)
    with pytest.raises(TypeError, match="factory"):
        cascading_randomization(lambda: 3, [Saliency], x, 0)
    with pytest.raises(ValueError, match="win_size"):
        ssim(torch.rand(1, 5, 5), torch.rand(1, 5, 5))
    with pytest.raises(ValueError, match="block"):
        hog_features(torch.rand(1, 16, 16))


def test_sanity_runner_on_registered_methods(tmp_path):
    from captum_ext.benchmark.sanity import SanityConfig, run_sanity, write_sanity_outputs
    from captum_ext.data import StampNet

    torch.manual_seed(0)
    config = SanityConfig(n_images=2, methods=["Saliency", "Random"], progress=False, only_correct=False)
    model = StampNet()
    result = run_sanity(config, model=model)
    assert result.stages[0] == "original" and result.stages[1] == "classifier"
    assert result.passed()["Random"] is False  # a map that ignores the model fails
    # the runner is cascading_randomization of Captum's Saliency on the held-out images
    from captum_ext.benchmark.runner import held_out_images

    images, labels, _ = held_out_images(model.eval(), 2, 0, "cpu", only_correct=False)
    direct = cascading_randomization(model, {"Saliency": saliency}, images, labels, seed=0)
    assert direct.stages == result.stages
    for measure, values in direct.similarities["Saliency"].items():
        torch.testing.assert_close(result.similarities["Saliency"][measure], values, equal_nan=True)
    # the files carry those numbers
    paths = write_sanity_outputs(result, str(tmp_path))
    rows = {(r[0], r[1]): r[2:] for r in (line.split(",") for line in paths["csv"].read_text().splitlines()[1:])}
    assert rows[("Saliency", "ssim")] == [f"{v:.6f}" for v in result.curve("Saliency", "ssim").tolist()]
    summary = result.summary()["Saliency"]
    assert f"| Saliency | {summary:.3f} |" in paths["markdown"].read_text()


def test_average_ranks_match_scipy_and_roc_auc_uses_them():
    from scipy.stats import rankdata

    from captum_ext.metrics.localization import roc_auc

    gen = torch.Generator().manual_seed(9)
    values = torch.randint(0, 4, (3, 25), generator=gen).double()
    expected = np.stack([rankdata(row) for row in values.numpy()])
    np.testing.assert_array_equal(average_ranks(values).numpy(), expected)
    masks = (torch.rand(3, 5, 5, generator=gen) < 0.4)
    n_pos = masks.flatten(1).sum(1).double()
    mann_whitney = ((average_ranks(values) * masks.flatten(1)).sum(1) - n_pos * (n_pos + 1) / 2) / (
        n_pos * (25 - n_pos))
    assert torch.allclose(roc_auc(values.view(3, 5, 5), masks), mann_whitney)


def test_map_similarities_nan_policy_and_three_dimensional_maps():
    gen = torch.Generator().manual_seed(10)
    a, b = torch.rand(3, 32, 32, generator=gen), torch.rand(3, 32, 32, generator=gen)
    clean = map_similarities(a[[0, 2]], b[[0, 2]])
    b[1, 4, 4] = float("nan")
    out = map_similarities(a, b)
    for measure, values in out.items():
        assert torch.isnan(values[1]), measure
        assert torch.equal(values[[0, 2]], clean[measure]), measure
    assert torch.equal(map_similarities(a, a)["spearman"], map_similarities(a[:, None], a[:, None])["spearman"])


def test_target_none_is_the_predicted_class():
    # regression (issue 13): target=None crashed
    model = _net()
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(11))
    default = cascading_randomization(model, {"s": saliency}, x, seed=1)
    explicit = cascading_randomization(model, {"s": saliency}, x, model(x).argmax(1), seed=1)
    for measure in ("spearman_abs", "ssim"):
        assert torch.equal(default.similarities["s"][measure], explicit.similarities["s"][measure])


def test_an_empty_batch_gives_empty_similarities_and_runs_no_method():
    # regression (issue 13): a batch of 0 crashed
    def never(model):
        def explain(x, t):
            raise AssertionError("no method may run on an empty batch")
        return explain

    result = cascading_randomization(_net(), {"never": never}, torch.zeros(0, 3, 32, 32))
    assert result.stages == ["original", "6", "2", "0"]
    assert result.similarities["never"]["ssim"].shape == (4, 0)


def test_the_global_rng_is_restored_also_with_an_init_that_draws():
    model, x = _net(seed=7), torch.zeros(1, 3, 32, 32)
    torch.manual_seed(99)
    before = torch.get_rng_state()
    cascading_randomization(model, [Saliency], x, 0, init=lambda m: m.reset_parameters())
    assert torch.equal(torch.get_rng_state(), before)


def test_british_names_are_deprecated_aliases():
    model, x = _net(), torch.rand(1, 3, 32, 32)
    with pytest.warns(DeprecationWarning, match="cascading_randomization"):
        old = cascading_randomisation(model, [Saliency], x, 0, seed=2)
    new = cascading_randomization(model, [Saliency], x, 0, seed=2)
    assert torch.equal(old.similarities["Saliency"]["ssim"], new.similarities["Saliency"]["ssim"])
    with pytest.warns(DeprecationWarning):
        assert randomisation_layers(model) == randomization_layers(model)
    with pytest.warns(DeprecationWarning):
        assert torch.equal(normalise_abs_map(x), normalize_abs_map(x))
    with pytest.warns(DeprecationWarning, match="localization"):
        import importlib
        import sys

        sys.modules.pop("captum_ext.metrics.localisation", None)
        legacy = importlib.import_module("captum_ext.metrics.localisation")
    from captum_ext.metrics.localization import roc_auc

    assert legacy.roc_auc is roc_auc
