"""Argument handling and tables of ``benchmarks/defaults.py`` (no model is run)."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "defaults.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("defaults_script", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["defaults_script"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("defaults_script", None)


def test_defaults(script):
    args = script.parse_args([])
    assert args.model == "stampnet"
    assert args.images is None
    assert args.options == list(script.OPTIONS)
    assert args.metrics == list(script.DEFAULT_METRICS)


def test_model_images_options(script):
    args = script.parse_args(["--model", "resnet18", "--images", "24", "--options", "sparsity", "mp"])
    assert (args.model, args.images, args.options) == ("resnet18", 24, ["sparsity", "mp"])
    assert script.images_for(script.OPTIONS["mp"], args.images) == 24


def test_images_default_per_option(script):
    assert script.images_for(script.OPTIONS["sparsity"], None) == 32
    assert script.images_for(script.OPTIONS["mp"], None) == 16


def test_quick_sets_four_images(script):
    assert script.parse_args(["--quick", "--images", "40"]).images == 4


@pytest.mark.parametrize("argv, message", [
    (["--model", "vgg16"], "invalid choice"),
    (["--images", "1"], "--images must be >= 2"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--resamples", "0"], "--resamples must be >= 1"),
    (["--perturbation-steps", "1"], "--perturbation-steps must be >= 2"),
    (["--options", "sparsity", "gamma"], "unknown option(s) ['gamma']"),
    (["--metrics", "stamp_distance", "accuracy"], "unknown metric(s) ['accuracy']"),
])
def test_bad_arguments_exit_2(script, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        script.parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_every_option_has_its_default_among_its_values(script):
    for option in script.OPTIONS.values():
        assert option.default in option.values, option.name


def test_table_paired_difference_against_the_default(script):
    option = script.Option("x", "toy", "a", {"a": lambda ctx: None, "b": lambda ctx: None})
    ref = torch.arange(8, dtype=torch.float64)
    values = {"a": {"m": ref}, "b": {"m": ref + 1.0}}
    text = script.table(option, values, {"a": 0.5, "b": 0.25}, ["m"], {"m": True}, 99)
    lines = text.splitlines()
    assert lines[0] == "| value | m ↓ | Δm vs default [95%], p | s/image |"
    assert lines[2] == "| **a** (default) | 3.500 [" + lines[2].split("[")[1].split("]")[0] + "] |  | 0.500 |"
    # eight differences of exactly +1: interval [+1, +1]; exact two-sided Wilcoxon p = 2 / 2**8
    assert "+1.000 [+1.000, +1.000], p 0.008" in lines[3]
    assert lines[3].startswith("| b | 4.500 [")
