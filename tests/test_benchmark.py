import csv

import pytest
import torch

from captum_ext.benchmark.cli import main
from captum_ext.benchmark.registry import MethodSpec, available_methods, available_metrics, register_method
from captum_ext.benchmark.runner import BenchmarkConfig, run_benchmark, write_outputs
from captum_ext.data import StampNet


def test_registry_has_the_captum_methods_and_metrics():
    methods = available_methods()
    for name in ["Saliency", "InputXGradient", "IntegratedGradients", "DeepLift", "GradientShap", "Occlusion",
                 "Random"]:
        assert name in methods
    assert {"stamp_distance", "pointing_game", "relevance_mass"} <= set(available_metrics())


def test_duplicate_registration_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        register_method(MethodSpec("Saliency", lambda m: None))


def test_run_and_write_outputs(tmp_path):
    torch.manual_seed(0)
    model = StampNet().eval()
    config = BenchmarkConfig(n_images=4, methods=["Saliency", "Random"], progress=False, out_dir=str(tmp_path),
                             only_correct=False)
    result = run_benchmark(config, model=model)
    names = [row["method"] for row in result.rows]
    assert names == ["Saliency", "Random"]
    # the Saliency column is the metric on Captum's |gradient| maps of the held-out images
    from captum.attr import Saliency

    from captum_ext.benchmark.runner import held_out_images
    from captum_ext.metrics.localization import stamp_distance

    images, labels, masks = held_out_images(model, 4, config.seed, "cpu", only_correct=False)
    maps = Saliency(model).attribute(images, target=labels, abs=True)
    per_image = result.per_image["Saliency"]["stamp_distance"]
    torch.testing.assert_close(per_image, stamp_distance(maps, masks, abs=True))
    for row in result.rows:  # each row's number is the mean over the images, none NaN here
        values = result.per_image[row["method"]]["stamp_distance"]
        assert row["stamp_distance_nan"] == 0
        assert row["stamp_distance"] == pytest.approx(float(values.double().mean()), rel=1e-6)
    paths = write_outputs(result, str(tmp_path))
    rows = list(csv.DictReader(open(paths["csv"])))
    assert [r["method"] for r in rows] == names
    assert [float(r["stamp_distance"]) for r in rows] == [row["stamp_distance"] for row in result.rows]
    saliency = result.rows[0]
    cell = f"| Saliency | {saliency['stamp_distance']:.3f} ± {saliency['stamp_distance_ci95']:.3f} |"
    assert cell in paths["markdown"].read_text()


def test_unknown_method_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown method"):
        run_benchmark(BenchmarkConfig(methods=["Nope"], progress=False), model=StampNet())


def test_untrained_model_gets_a_clear_error():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 64 * 64, 5))
    torch.nn.init.zeros_(model[1].weight)
    with torch.no_grad():
        model[1].bias.copy_(torch.tensor([0, 0, 0, 0, 1.0]))  # always "no stamp"
    with pytest.raises(ValueError, match="none of the held-out"):
        run_benchmark(BenchmarkConfig(n_images=4, methods=["Random"], progress=False), model=model)


def test_cli_list(capsys):
    assert main(["benchmark", "--list"]) == 0
    out = capsys.readouterr().out
    assert "IntegratedGradients" in out and "stamp_distance" in out


# ------------------------------------------------------------------------------------------
# model state (issue 13) and held-out images built in chunks
# ------------------------------------------------------------------------------------------


def _train_mode_net():
    torch.manual_seed(0)
    net = StampNet(width=4).train()
    net.features[0].weight.requires_grad_(False)
    return net


def _state(net):
    return [m.training for m in net.modules()], [p.requires_grad for p in net.parameters()]


def test_run_benchmark_leaves_the_callers_model_as_it_was():
    net = _train_mode_net()
    before = _state(net)
    rng = torch.get_rng_state()
    run_benchmark(BenchmarkConfig(n_images=2, methods=["Saliency", "Random"], metrics=["stamp_distance"],
                                  progress=False, only_correct=False), model=net)
    assert _state(net) == before and net.training
    assert torch.equal(torch.get_rng_state(), rng)


def test_run_sanity_leaves_the_callers_model_as_it_was():
    from captum_ext.benchmark.sanity import SanityConfig, run_sanity

    net = _train_mode_net()
    before = _state(net)
    run_sanity(SanityConfig(n_images=2, methods=["Saliency"], layers=["classifier"], progress=False,
                            only_correct=False), model=net)
    assert _state(net) == before and net.training


class _Explodes(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = StampNet(width=4)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 0:
            raise RuntimeError("boom")
        return self.net(x)


def test_run_benchmark_restores_the_model_when_it_raises():
    net = _Explodes().train()
    with pytest.raises(RuntimeError, match="boom"):
        run_benchmark(BenchmarkConfig(n_images=2, methods=["Saliency"], metrics=["stamp_distance"],
                                      progress=False, only_correct=False), model=net)
    assert all(m.training for m in net.modules())


def test_held_out_images_same_as_one_batch_for_small_n():
    """The chunked builder returns exactly the images the one-shot builder returned (n <= 504)."""
    from captum_ext.benchmark.runner import HELD_OUT_SEED_OFFSET, held_out_images
    from captum_ext.data import make_stamped_batch

    n, seed = 7, 3
    images, labels, masks = held_out_images(StampNet(), n, seed, "cpu", only_correct=False)
    batch = make_stamped_batch(4 * n + 32, seed=HELD_OUT_SEED_OFFSET + seed)
    keep = batch.labels < 4
    assert torch.equal(images, batch.images[keep][:n])
    assert torch.equal(labels, batch.labels[keep][:n])
    assert torch.equal(masks, batch.masks[keep][:n])


def test_held_out_images_are_built_in_chunks(monkeypatch):
    """Memory does not grow with n_images: no generated batch exceeds the chunk."""
    import captum_ext.benchmark.runner as runner

    sizes = []
    real = runner.make_stamped_batch

    def recording(n, *args, **kwargs):
        sizes.append(n)
        return real(n, *args, **kwargs)

    monkeypatch.setattr(runner, "make_stamped_batch", recording)
    images, labels, masks = runner.held_out_images(StampNet(), 300, 0, "cpu", only_correct=False, chunk=64)
    assert images.shape == (300, 3, 64, 64) and labels.shape == (300,) and masks.shape == (300, 1, 64, 64)
    assert max(sizes) <= 64 and sum(sizes) < 4 * 300 + 32  # stopped once 300 were found
    assert (labels < 4).all()
    assert len({tuple(im.flatten()[:16].tolist()) for im in images}) == 300  # chunks are not repeats
