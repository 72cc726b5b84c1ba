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
    hog_features,
    map_similarities,
    normalise_abs_map,
    pearson,
    randomisation_layers,
    resolve_methods,
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
    ours = normalise_abs_map(a)
    for i in range(2):
        image = np.abs(a[i].numpy()).sum(0)
        vmax, vmin = np.percentile(image, 99), image.min()
        np.testing.assert_allclose(ours[i].numpy(), np.clip((image - vmin) / (vmax - vmin), 0, 1), atol=1e-12)
    assert torch.equal(normalise_abs_map(torch.ones(1, 1, 3, 3)), torch.zeros(1, 3, 3, dtype=torch.float64))


def test_map_similarities_of_identical_and_unrelated_maps():
    gen = torch.Generator().manual_seed(5)
    a, b = torch.rand(4, 3, 32, 32, generator=gen), torch.rand(4, 3, 32, 32, generator=gen)
    same = map_similarities(a, a)
    for measure in ("spearman_abs", "spearman", "ssim", "hog"):
        assert torch.allclose(same[measure], torch.ones(4, dtype=torch.float64))
    other = map_similarities(a, b)
    assert bool((other["spearman_abs"].abs() < 0.2).all()) and bool((other["ssim"] < 0.2).all())
    assert torch.isnan(map_similarities(a[:, :, :16, :16], b[:, :, :16, :16])["hog"]).all()  # too small for HOG


# ----------------------------------------------------------------------------- randomisation


def test_randomisation_leaves_the_model_bit_identical():
    model = _net().train()
    model[0].weight.requires_grad_(False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    params = list(model.parameters())
    hooks = num_hooks(model)
    result = cascading_randomisation(model, {"Saliency": saliency}, torch.rand(3, 3, 32, 32), target=0)
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
        cascading_randomisation(model, {"failing": failing}, torch.rand(2, 3, 32, 32), target=0)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_edge_detector_fails_and_saliency_passes():
    model = _net()
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    result = cascading_randomisation(model, {"edges": edge_detector, "Saliency": saliency}, x,
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


def test_cascading_and_independent_stages_randomise_the_right_layers():
    model = _net()
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    layers = ["6", "2", "0"]
    for mode in ("cascading", "independent"):
        log = []
        cascading_randomisation(model, {"rec": _recording(log)}, torch.rand(1, 3, 32, 32), 0, mode=mode)
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
    result = cascading_randomisation(lambda: model, {"rec": _recording(log)}, torch.rand(1, 3, 32, 32), 0,
                                     layers=["6", "0"], init=lambda m: (seen.append(m), m.reset_parameters()))
    assert result.stages == ["original", "6", "0"]
    assert [type(m).__name__ for m in seen] == ["Linear", "Conv2d"]
    assert all(m is not model[6] and m is not model[0] for m in seen)  # a copy was randomised
    x = torch.rand(2, 3, 32, 32)
    a = cascading_randomisation(model, [Saliency], x, 0, seed=3)
    b = cascading_randomisation(model, [Saliency], x, 0, seed=3)
    c = cascading_randomisation(model, [Saliency], x, 0, seed=4)
    assert list(a.similarities) == ["Saliency"]
    assert a.similarities["Saliency"]["spearman"].shape == (4, 2)
    assert torch.equal(a.similarities["Saliency"]["ssim"], b.similarities["Saliency"]["ssim"])
    assert not torch.equal(a.similarities["Saliency"]["ssim"], c.similarities["Saliency"]["ssim"])


def test_same_seed_same_result_batched_equals_one_by_one():
    model = _net()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    batched = cascading_randomisation(model, {"s": saliency}, x, 1, batch_size=4)
    chunked = cascading_randomisation(model, {"s": saliency}, x, 1, batch_size=3)
    for measure in ("spearman_abs", "ssim", "hog"):
        assert torch.allclose(batched.similarities["s"][measure], chunked.similarities["s"][measure], atol=1e-6)


def test_plots_are_written(tmp_path):
    result = cascading_randomisation(_net(), {"edges": edge_detector, "Saliency": saliency},
                                     torch.rand(2, 3, 32, 32), 0)
    result.plot(str(tmp_path / "curves.png"))
    result.plot_maps(str(tmp_path / "maps.png"))
    assert (tmp_path / "curves.png").stat().st_size > 5000
    assert (tmp_path / "maps.png").stat().st_size > 2000
    assert result.maps["Saliency"].shape == (4, 1, 32, 32)


def test_default_layers_are_top_down():
    assert randomisation_layers(_net()) == ["6", "2", "0"]
    assert list(resolve_methods({"a": saliency, "b": Saliency})) == ["a", "b"]


def test_bad_input_gets_clear_errors():
    model, x = _net(), torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match="layers"):
        cascading_randomisation(model, [Saliency], x, 0, layers=["nope"])
    with pytest.raises(ValueError, match="no parameters"):
        cascading_randomisation(model, [Saliency], x, 0, layers=["1"])
    with pytest.raises(TypeError, match="layers"):
        cascading_randomisation(model, [Saliency], x, 0, layers="6")
    with pytest.raises(ValueError, match="mode"):
        cascading_randomisation(model, [Saliency], x, 0, mode="random")
    with pytest.raises(ValueError, match="std"):
        cascading_randomisation(model, [Saliency], x, 0, std=0.0)
    with pytest.raises(ValueError, match="inputs"):
        cascading_randomisation(model, [Saliency], x[0], 0)
    with pytest.raises(ValueError, match="target"):
        cascading_randomisation(model, [Saliency], x, [0, 1, 2])
    with pytest.raises(TypeError, match="method"):
        cascading_randomisation(model, {"x": 3}, x, 0)
    with pytest.raises(ValueError, match="duplicate"):
        cascading_randomisation(model, [Saliency, Saliency], x, 0)
    with pytest.raises(TypeError, match="factory"):
        cascading_randomisation(lambda: 3, [Saliency], x, 0)
    with pytest.raises(ValueError, match="win_size"):
        ssim(torch.rand(1, 5, 5), torch.rand(1, 5, 5))
    with pytest.raises(ValueError, match="block"):
        hog_features(torch.rand(1, 16, 16))


def test_sanity_runner_on_registered_methods(tmp_path):
    from captum_ext.benchmark.sanity import SanityConfig, run_sanity, write_sanity_outputs
    from captum_ext.data import StampNet

    torch.manual_seed(0)
    config = SanityConfig(n_images=2, methods=["Saliency", "Random"], progress=False, only_correct=False)
    result = run_sanity(config, model=StampNet())
    assert result.stages[0] == "original" and result.stages[1] == "classifier"
    assert result.passed()["Random"] is False  # a map that ignores the model fails
    paths = write_sanity_outputs(result, str(tmp_path))
    assert "| Saliency |" in paths["markdown"].read_text()
    assert paths["png"].stat().st_size > 5000
