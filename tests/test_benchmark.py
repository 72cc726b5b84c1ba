import csv
import math

import pytest
import torch

from captum_ext.benchmark.cli import main
from captum_ext.benchmark.registry import MethodSpec, available_methods, available_metrics, register_method
from captum_ext.benchmark.runner import BenchmarkConfig, run_benchmark, write_outputs
from captum_ext.data import StampNet


def test_registry_has_the_captum_methods_and_metrics():
    methods = available_methods()
    for name in ["Saliency", "InputXGradient", "IntegratedGradients", "DeepLift", "GradientShap", "Occlusion", "Random"]:
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
    for row in result.rows:
        assert 0 <= row["stamp_distance"] <= 4 or math.isnan(row["stamp_distance"])
        assert row["seconds_per_image"] > 0
    paths = write_outputs(result, str(tmp_path))
    rows = list(csv.DictReader(open(paths["csv"])))
    assert [r["method"] for r in rows] == names
    assert paths["png"].stat().st_size > 1000
    assert "| Saliency |" in paths["markdown"].read_text()


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
