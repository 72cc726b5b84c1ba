"""The CLI's user-error policy: every argument and the output folder are checked before a model is
loaded or an image is built; one ``captum-ext: error: ...`` line naming the argument, exit code 2."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import captum_ext.benchmark.runner as runner
import captum_ext.benchmark.sanity as sanity
import captum_ext.data.classifier as classifier
from captum_ext.benchmark.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_work(monkeypatch, tmp_path):
    """An empty weight cache, and any training, loading or image building is a test failure."""
    monkeypatch.setenv("CAPTUM_EXT_CACHE", str(tmp_path / "cache"))

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.setattr(classifier, "train_stamp_classifier", forbidden)
    monkeypatch.setattr(classifier, "load_stamp_classifier", forbidden)
    monkeypatch.setattr(sanity, "load_stamp_classifier", forbidden)
    monkeypatch.setattr(runner, "make_stamped_batch", forbidden)
    return tmp_path


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("captum-ext: error: "), err
    assert "Traceback" not in err
    return lines[0]


BAD_ARGUMENTS = [
    (["--device", "bogus"], "--device"),
    (["--device", "cuda:7"], "--device"),
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "-3"], "--batch-size"),
    (["--n-images", "0"], "--n-images"),
    (["--n-images", "many"], "--n-images"),
    (["--seed", "1.5"], "--seed"),
    (["--model", "vgg"], "--model"),
    (["--methods", "Nope"], "Nope"),
    (["--n-images", str(10**12)], "--n-images"),  # would be killed for memory: refused up front
]


@pytest.mark.parametrize("command", ["benchmark", "sanity"])
@pytest.mark.parametrize("extra, named", BAD_ARGUMENTS)
def test_bad_argument_is_one_line_naming_it(no_work, capsys, command, extra, named):
    code = main([command, "--out", str(no_work / "out"), "--no-progress", *extra])
    assert code == 2
    assert named in _error_line(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", ["benchmark", "sanity"])
def test_cuda_on_a_cpu_machine_fails_before_training(no_work, capsys, command):
    assert main([command, "--device", "cuda", "--out", str(no_work / "out")]) == 2
    line = _error_line(capsys)
    assert "--device" in line and "CUDA is not available" in line
    assert not (no_work / "cache").exists()


@pytest.mark.parametrize("extra, named", [
    (["--metrics", "nope_metric"], "nope_metric"),
    (["--inpainter", "no_such_inpainter"], "--inpainter"),
    (["--inpainter", "nan"], "--inpainter"),
    (["--filler", "no_such_inpainter"], "--filler"),  # the deprecated name is still checked
    (["--filler", "nan"], "--filler"),
    (["--filler", "0", "--inpainter", "0"], "--inpainter"),
])
def test_bad_benchmark_argument(no_work, capsys, extra, named):
    assert main(["benchmark", "--out", str(no_work / "out"), *extra]) == 2
    assert named in _error_line(capsys)


@pytest.mark.parametrize("extra, named", [
    (["--std", "0"], "--std"),
    (["--std", "nan"], "--std"),
    (["--threshold", "1.5"], "--threshold"),
    (["--threshold", "nan"], "--threshold"),
    (["--mode", "sideways"], "--mode"),
])
def test_bad_sanity_argument(no_work, capsys, extra, named):
    assert main(["sanity", "--out", str(no_work / "out"), *extra]) == 2
    assert named in _error_line(capsys)


@pytest.mark.parametrize("command", ["benchmark", "sanity"])
def test_unwritable_out_fails_before_any_work(no_work, capsys, command):
    blocker = no_work / "a_file"
    blocker.write_text("not a folder")
    assert main([command, "--out", str(blocker / "sub")]) == 2
    line = _error_line(capsys)
    assert "--out" in line and str(blocker / "sub") in line


def test_out_that_is_a_file_fails(no_work, capsys):
    blocker = no_work / "a_file"
    blocker.write_text("x")
    assert main(["benchmark", "--out", str(blocker)]) == 2
    assert "--out" in _error_line(capsys)


def test_valid_out_is_created_and_left_clean(no_work, capsys, monkeypatch):
    """A good command passes validation (reaches the model loader) and leaves no probe file."""
    calls = []

    def loader(**kwargs):
        calls.append(kwargs)
        raise KeyboardInterrupt  # stop right after validation

    monkeypatch.setattr(classifier, "load_stamp_classifier", loader)
    out = no_work / "new" / "out"
    with pytest.raises(KeyboardInterrupt):
        main(["benchmark", "--out", str(out), "--model", "resnet18", "--no-progress"])
    assert calls and calls[0]["arch"] == "resnet18" and calls[0]["progress"] is False
    assert out.is_dir() and list(out.iterdir()) == []


def test_sanity_unknown_layer_fails_before_images(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(sanity, "load_stamp_classifier", lambda **kwargs: classifier.StampNet().eval())
    monkeypatch.setattr(runner, "make_stamped_batch", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    assert main(["sanity", "--layers", "no.such.layer", "--out", str(tmp_path)]) == 2
    assert "no.such.layer" in _error_line(capsys)


def test_help_exits_zero(capsys):
    assert main(["benchmark", "--help"]) == 0
    assert "--model" in capsys.readouterr().out


def test_module_entry_point_prints_no_traceback(tmp_path):
    env = {**os.environ, "CAPTUM_EXT_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "captum_ext", "benchmark", "--device", "bogus", "--out", str(tmp_path / "o")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "captum-ext: error: `--device` must be a torch device such as 'cpu' or 'cuda', got 'bogus'"
    ]
    assert not (tmp_path / "cache").exists()


# ------------------------------------------------------------------------------------------
# load_stamp_classifier and held_out_images
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["stampnet", "resnet18"])
def test_unknown_recipe_key_is_an_error_not_a_retrain(monkeypatch, tmp_path, arch):
    monkeypatch.setenv("CAPTUM_EXT_CACHE", str(tmp_path))

    def trains(*args, **kwargs):
        raise RuntimeError("training started")

    monkeypatch.setattr(classifier, "train_stamp_classifier", trains)
    with pytest.raises(ValueError, match="stepz"):
        classifier.load_stamp_classifier(recipe={"stepz": 10}, arch=arch, progress=False)
    with pytest.raises(ValueError, match="`device`"):
        classifier.load_stamp_classifier(device="bogus", arch=arch, progress=False)
    with pytest.raises(RuntimeError, match="training started"):  # a known key does train (empty cache)
        classifier.load_stamp_classifier(recipe={"steps": 1}, arch=arch, progress=False)


def test_unknown_arch_is_an_error():
    with pytest.raises(ValueError, match="arch"):
        classifier.classifier_path(arch="vgg")


def test_stampnet_cache_name_is_unchanged():
    """The StampNet cache key must stay the one of the published recipe (no retraining)."""
    assert classifier.classifier_path().name == "stampnet-b31aa267dcb5.pt"
    assert classifier.classifier_path(arch="resnet18").name == "resnet18-6733bf18b624.pt"


def test_sanity_model_flag_selects_the_architecture(monkeypatch, tmp_path):
    calls = []

    def loader(**kwargs):
        calls.append(kwargs)
        raise KeyboardInterrupt  # stop right after validation

    monkeypatch.setattr(sanity, "load_stamp_classifier", loader)
    with pytest.raises(KeyboardInterrupt):
        main(["sanity", "--model", "resnet18", "--out", str(tmp_path), "--no-progress"])
    assert calls and calls[0]["arch"] == "resnet18"
