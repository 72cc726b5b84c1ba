"""``captum-ext evaluate``: data, model loading, options, rows, resume, summary, CLI errors."""

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats
from torch import nn

from captum_ext.benchmark.registry import MethodSpec, available_methods, register_method
from captum_ext.evaluate import EvalConfig, build_job, completed_indices, read_rows, run_indices, summarize
from captum_ext.evaluate.cli import main as evaluate_main
from captum_ext.evaluate.columns import DEFAULT_FRACTIONS
from captum_ext.evaluate.config import merge_options, parse_option
from captum_ext.evaluate.data import ImageFolderDataset, boxes_to_mask, preprocess
from captum_ext.evaluate.models import load_model
from captum_ext.metrics import perturbation
from captum_ext.metrics.statistics import bootstrap_interval

TIMING = ("seconds", "metric_seconds")


class TinyNet(nn.Module):
    def __init__(self, classes: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, classes)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean((2, 3)))


def tiny_net(classes: int = 2) -> TinyNet:
    torch.manual_seed(0)
    return TinyNet(classes)


# A stochastic method whose calls are counted: rows must not depend on batch or shard, and a
# resumed run must not call it for images already written.
CALLS = {"n": 0}


def _noisy_saliency(model):
    def explain(x, t):
        CALLS["n"] += x.shape[0]
        x = x.clone().requires_grad_(True)
        score = model(x).gather(1, t[:, None]).sum()
        (grad,) = torch.autograd.grad(score, x)
        return grad.abs() + 0.1 * torch.rand_like(grad)  # a draw from the global RNG

    return explain


if "TestNoisySaliency" not in available_methods():
    register_method(MethodSpec("TestNoisySaliency", _noisy_saliency, "test only", default=False, group="test"))


def write_folder(root: Path, n: int = 6, size=(24, 32), mask_size=None) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        cls = f"class{i % 2}"
        (root / "images" / cls).mkdir(parents=True, exist_ok=True)
        (root / "masks" / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, size + (3,), dtype=np.uint8)).save(root / "images" / cls / f"{i}.jpg")
        mask = np.zeros(mask_size or size, np.uint8)
        mask[4:12, 6:18] = 255
        Image.fromarray(mask).save(root / "masks" / cls / f"{i}.png")
    return root


@pytest.fixture
def folder(tmp_path):
    return write_folder(tmp_path)


def config_for(folder: Path, out: Path, **kw) -> EvalConfig:
    defaults = dict(data=str(folder / "images"), masks=str(folder / "masks"), out=str(out), progress=False,
                    methods=["Saliency", "TestNoisySaliency"], metrics=["deletion", "insertion", "localization"],
                    batch_size=2, max_examples_per_batch=7, grid_images=2)
    defaults.update(kw)
    return EvalConfig(**defaults)


def strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _numbers(value):
    if isinstance(value, str) and value and not value.replace(" ", "").replace(".", "").isalpha():
        try:
            return [float(v) for v in value.split()]
        except ValueError:
            return value
    return value


def assert_rows_close(rows, expected, atol, exact_methods=()):
    """Rows equal field by field; the numbers of methods not in ``exact_methods`` within ``atol``
    (a batched forward rounds differently from a forward of one image's rows)."""
    assert [(r["index"], r["method"]) for r in rows] == [(r["index"], r["method"]) for r in expected]
    for row, want in zip(rows, expected):
        assert row.keys() == want.keys()
        if row["method"] in exact_methods:
            assert row == want
            continue
        for key, value in want.items():
            got, value = _numbers(row[key]), _numbers(value)
            if isinstance(value, (float, list)) and not isinstance(value, bool):
                assert got == pytest.approx(value, abs=atol, nan_ok=True), (row["index"], row["method"], key)
            else:
                assert got == value, (row["index"], row["method"], key)


# ------------------------------------------------------------------------------------- data


def test_image_folder_layout_labels_and_masks(folder):
    ds = ImageFolderDataset(folder / "images", masks=folder / "masks", resize=12)
    ds.validate()
    assert ds.class_names == ["class0", "class1"]
    assert ds.image_ids[:2] == ["class0/0.jpg", "class0/2.jpg"]
    image, label, mask = ds[0]
    assert image.shape == (3, 12, 16) and mask.shape == (1, 12, 16) and label == 0


def test_flat_folder_with_labels_csv(tmp_path):
    write_folder(tmp_path, n=2)
    (tmp_path / "labels.csv").write_text("file,label\nclass0/0.jpg,5\nclass1/1.jpg,7\n")
    ds = ImageFolderDataset(tmp_path / "images", labels=tmp_path / "labels.csv")
    assert [ds[i][1] for i in range(2)] == [5, 7]
    (tmp_path / "labels.csv").write_text("class0/0.jpg,5\n")
    with pytest.raises(ValueError, match="--labels: no label for image class1/1.jpg"):
        ImageFolderDataset(tmp_path / "images", labels=tmp_path / "labels.csv")


def test_masks_and_boxes_follow_resize_and_crop_exactly():
    # A box on even coordinates, halved by the resize and shifted by the crop offset: the mask
    # must cover exactly the transformed box, and the (symmetrically blurred) bright region of
    # the image must have the same centroid.
    image = torch.zeros(3, 40, 60)
    image[:, 8:20, 20:36] = 1.0
    mask = boxes_to_mask([(20, 8, 36, 20)], 40, 60)
    assert torch.equal(mask[0].bool(), image[0].bool())
    x, m = preprocess(image, mask, resize=20, crop=16)  # 20 x 30, then crop offset (2, 7)
    assert x.shape == (3, 16, 16) and m.shape == (1, 16, 16)
    expected = torch.zeros(16, 16)
    expected[8 // 2 - 2:20 // 2 - 2, 20 // 2 - 7:36 // 2 - 7] = 1.0
    assert torch.equal(m[0], expected)
    grid = torch.stack(torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij"))
    centroid = lambda w: (grid * w).sum((1, 2)) / w.sum()  # noqa: E731
    assert torch.allclose(centroid(x[0]), centroid(m[0]), atol=1e-4)


def test_bad_data_errors_name_the_file(tmp_path):
    write_folder(tmp_path, n=2, mask_size=(10, 10))
    ds = ImageFolderDataset(tmp_path / "images", masks=tmp_path / "masks")
    with pytest.raises(ValueError, match=r"--masks: mask .*0.png is 10x10 but image class0/0.jpg is 32x24"):
        ds.validate()
    (tmp_path / "images" / "class0" / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"--data: cannot read image .*bad.jpg"):
        ImageFolderDataset(tmp_path / "images").validate()
    with pytest.raises(ValueError, match="--data: no such folder"):
        ImageFolderDataset(tmp_path / "nope")


# ------------------------------------------------------------------------------------ models


def test_model_loading_state_dict_torchscript_pickle(tmp_path):
    net = load_model("torchvision:resnet18", kwargs={"num_classes": 3})
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    again = load_model("torchvision:resnet18", tmp_path / "r18.pth", kwargs={"num_classes": 3})
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(net(x), again(x))
    with pytest.raises(ValueError, match="--weights: no such file.*nothing is downloaded"):
        load_model("torchvision:resnet18", tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="--weights: .*does not fit"):
        load_model("torchvision:resnet18", tmp_path / "r18.pth")  # 1000 classes
    with pytest.raises(ValueError, match="torchvision has no classification model"):
        load_model("torchvision:nonet")
    small = tiny_net()
    torch.jit.save(torch.jit.script(small), tmp_path / "tiny.ts")
    scripted = load_model(str(tmp_path / "tiny.ts"))
    assert torch.allclose(scripted(x), small(x))
    torch.save(small, tmp_path / "whole.pt")
    with pytest.raises(ValueError, match="pickled Python object.*arbitrary code.*--trust-pickle"):
        load_model(str(tmp_path / "whole.pt"))
    assert torch.equal(load_model(str(tmp_path / "whole.pt"), trust_pickle=True)(x), small(x))
    factory = load_model("torchvision.models:resnet18", kwargs={"num_classes": 2})
    assert factory(x).shape == (1, 2)


# ----------------------------------------------------------------------------------- options


def test_option_parsing_and_merging(tmp_path):
    assert parse_option("IProp.gamma=0.9") == ("IProp", "gamma", 0.9)
    assert parse_option("IProp.solver=cg")[2] == "cg"
    with pytest.raises(ValueError, match="--option"):
        parse_option("gamma=0.9")
    merged = merge_options({"IProp": {"gamma": 0.5, "radius": 2}}, ["IProp.gamma=0.9"])
    assert merged == {"IProp": {"gamma": 0.9, "radius": 2}}


def test_options_reach_the_method_and_bad_options_fail_early(folder, tmp_path):
    seen = {}

    def build(model, scale=1.0):
        seen["scale"] = scale
        return lambda x, t: scale * torch.ones_like(x)

    if "TestScaled" not in available_methods():
        register_method(MethodSpec("TestScaled", build, "test only", default=False, group="test"))
    build_job(config_for(folder, tmp_path / "o", methods=["TestScaled"], options={"TestScaled": {"scale": 3.0}}),
              model=tiny_net())
    assert seen["scale"] == 3.0
    with pytest.raises(ValueError, match="--option: method TestScaled does not accept"):
        build_job(config_for(folder, tmp_path / "o", methods=["TestScaled"], options={"TestScaled": {"bad": 1}}),
                  model=tiny_net())
    with pytest.raises(ValueError, match="matches none of the methods"):
        build_job(config_for(folder, tmp_path / "o", options={"IProp": {"gamma": 0.9}}), model=tiny_net())
    with pytest.raises(ValueError, match="--methods: unknown method"):
        build_job(config_for(folder, tmp_path / "o", methods=["Nope"]), model=tiny_net())
    with pytest.raises(ValueError, match="--metrics: unknown"):
        build_job(config_for(folder, tmp_path / "o", metrics=["nope"]), model=tiny_net())


# -------------------------------------------------------------------------------------- rows


def test_rows_do_not_depend_on_batch_size_order_or_sharding(folder, tmp_path):
    """Bit-identical by default (one image per call); with ``batch_methods`` the batched method
    (Saliency) within float rounding and the one-image-per-call method (TestNoisySaliency)
    bit-identical."""
    metrics = ["deletion", "insertion", "localization", "morf", "lerf"]
    job = build_job(config_for(folder, tmp_path / "a", metrics=metrics), model=tiny_net())
    assert job.batched == set()
    run_indices(job, job.indices, tmp_path / "a")
    reference = strip(read_rows(tmp_path / "a"))
    assert len(reference) == 6 * 2 and all(0 <= r["morf"] and 0 <= r["lerf"] for r in reference)
    for per_image in (True, False):
        out = tmp_path / f"b{per_image}"
        job_b = build_job(config_for(folder, out, batch_size=4, metrics=metrics, batch_methods=not per_image),
                          model=tiny_net())
        run_indices(job_b, [5, 3, 1], out, rank=1)
        run_indices(job_b, [4, 0, 2], out, rank=0)
        if per_image:
            assert strip(read_rows(out)) == reference
        else:
            assert job_b.batched == {"Saliency"}
            assert_rows_close(strip(read_rows(out)), reference, atol=1e-6, exact_methods={"TestNoisySaliency"})
        assert sorted(p.stem for p in (out / "rows").iterdir()) == ["0-00000", "1-00000"]


def test_batch_methods_flag_reaches_the_config():
    from captum_ext.evaluate.cli import build_parser, config_from_args

    parser = build_parser()
    assert config_from_args(parser.parse_args(["--batch-methods"])).batch_methods is True
    assert config_from_args(parser.parse_args([])).batch_methods is False


class RowByRowNet(TinyNet):
    """TinyNet evaluated one image at a time: its output for an image never depends on the batch
    (so rows of a batched method must equal one-image-per-call rows exactly)."""

    def forward(self, x):
        return torch.cat([super(RowByRowNet, self).forward(row[None]) for row in x])


def _row_by_row_net() -> RowByRowNet:
    torch.manual_seed(0)
    return RowByRowNet()


@pytest.mark.parametrize("method", ["Saliency", "IntegratedGradients"])
def test_batched_method_rows_equal_one_image_per_call_rows(folder, tmp_path, method):
    """A batch-invariant method explained and scored a batch at a time gives the rows of one
    image per call: exactly with a model whose per-image output does not depend on the batch
    (every column, ROAD included; the localization metrics' ``stamp_distance`` rounds its batched
    float64 reductions differently: 1e-12), and within float rounding with a batched convolution."""
    metrics = ["deletion", "insertion", "road", "localization", "morf", "lerf"]
    for net, atol in ((_row_by_row_net, 0.0), (tiny_net, 1e-6)):
        rows = {}
        for per_image in (True, False):
            out = tmp_path / f"{net.__name__}-{per_image}"
            job = build_job(config_for(folder, out, methods=[method], metrics=metrics, batch_size=4,
                                       batch_methods=not per_image), model=net())
            assert job.batched == (set() if per_image else {method})
            run_indices(job, job.indices, out)
            rows[per_image] = strip(read_rows(out))
        if atol == 0.0:
            for row, want in zip(rows[False], rows[True]):
                assert row.pop("stamp_distance") == pytest.approx(want.pop("stamp_distance"), rel=1e-12, abs=0)
                assert row == want
        else:
            assert_rows_close(rows[False], rows[True], atol=atol)


def test_rows_hold_the_metric_values(folder, tmp_path):
    model = tiny_net()
    job = build_job(config_for(folder, tmp_path, methods=["Saliency"]), model=model)
    run_indices(job, [3], tmp_path)
    (row,) = read_rows(tmp_path)
    image, label, mask = job.dataset[3]
    from captum.attr import Saliency

    attr = Saliency(model).attribute(image[None], target=label, abs=True)
    kwargs = dict(fractions=DEFAULT_FRACTIONS, max_examples_per_batch=7, abs=True)
    curve = perturbation.deletion_curve(model, image[None], attr, label, **kwargs)
    assert row["deletion"] == pytest.approx(float(curve.auc[0]), abs=1e-12)
    assert [float(v) for v in row["deletion_curve"].split()] == pytest.approx(curve.scores[0].tolist(), abs=1e-12)
    assert row["image_id"] == "class1/1.jpg" and row["label"] == row["target"] == 1
    from captum_ext.metrics.localisation import pointing_game

    assert row["pointing_game"] == float(pointing_game(attr, mask[None], abs=True)[0])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_killed_run_resumes_to_the_same_rows_without_recomputing(folder, tmp_path, monkeypatch, fmt):
    from captum_ext.evaluate import runner

    if fmt == "parquet" and not runner._pyarrow_available():
        pytest.skip("pyarrow is not installed")
    monkeypatch.setattr(runner, "_pyarrow_available", lambda: fmt == "parquet")
    job = build_job(config_for(folder, tmp_path / "full"), model=tiny_net())
    run_indices(job, job.indices, tmp_path / "full")
    uninterrupted = strip(read_rows(tmp_path / "full"))

    class Killed(Exception):
        pass

    def kill_after_two(batches):
        if batches == 2:
            raise Killed

    job = build_job(config_for(folder, tmp_path / "run"), model=tiny_net())
    with pytest.raises(Killed):
        run_indices(job, job.indices, tmp_path / "run", after_batch=kill_after_two)
    assert completed_indices(tmp_path / "run", job.method_names) == {0, 1, 2, 3}
    CALLS["n"] = 0
    run_indices(job, job.indices, tmp_path / "run", resume=True)
    assert CALLS["n"] == 2  # images 4 and 5 only
    assert strip(read_rows(tmp_path / "run")) == uninterrupted
    assert {p.suffix for p in (tmp_path / "run" / "rows").iterdir()} == {f".{fmt}"}


def test_model_state_restored_when_a_method_raises(folder, tmp_path):
    model = tiny_net()
    model.train()

    def build(m):
        def explain(x, t):
            raise RuntimeError("boom")
        return explain

    if "TestBoom" not in available_methods():
        register_method(MethodSpec("TestBoom", build, "test only", default=False, group="test"))
    job = build_job(config_for(folder, tmp_path, methods=["TestBoom"]), model=model)
    state = torch.get_rng_state()
    with pytest.raises(RuntimeError, match="boom"):
        run_indices(job, job.indices, tmp_path)
    assert model.training and torch.equal(torch.get_rng_state(), state)


# ----------------------------------------------------------------------------------- summary


def test_summary_statistics_equal_scipy_on_the_rows(folder, tmp_path):
    job = build_job(config_for(folder, tmp_path, reference="Saliency"), model=tiny_net())
    run_indices(job, job.indices, tmp_path)
    summary = summarize(tmp_path, n_resamples=500, seed=3)
    rows = read_rows(tmp_path)
    sal = np.array([r["insertion"] for r in rows if r["method"] == "Saliency"])
    noisy = np.array([r["insertion"] for r in rows if r["method"] == "TestNoisySaliency"])
    line = next(t for t in summary.table if t["method"] == "TestNoisySaliency" and t["metric"] == "insertion")
    ci = stats.bootstrap((noisy,), np.mean, n_resamples=500, method="percentile",
                         rng=np.random.default_rng(3)).confidence_interval
    assert (line["mean"], line["low"], line["high"]) == pytest.approx((noisy.mean(), ci.low, ci.high), rel=1e-12)
    assert line["p_value"] == pytest.approx(stats.wilcoxon(noisy, sal).pvalue, rel=1e-12)
    assert line["difference"] == pytest.approx((noisy - sal).mean())
    assert bootstrap_interval(noisy - sal, n_resamples=500, seed=3).low == line["difference_low"]
    with open(summary.paths["csv"]) as handle:
        assert len(list(csv.DictReader(handle))) == 2 * len(summary.metrics)
    md = summary.paths["markdown"].read_text()
    assert "| TestNoisySaliency |" in md and "Paired difference to **Saliency**" in md
    for key in ("figure", "maps"):
        with Image.open(summary.paths[key]) as picture:
            assert picture.size[0] > 200
    with pytest.raises(ValueError, match="--reference"):
        summarize(tmp_path, reference="Nope", figures=False)
    import json

    x = json.loads((tmp_path / "run.json").read_text())["curves"]["deletion_curve"]
    assert len(x) == len(rows[0]["deletion_curve"].split()) and x[0] == 0.0 and x[-1] == 1.0


# --------------------------------------------------------------------------------------- CLI


def _cli(folder, tmp_path, *extra, model=None):
    if model is None:
        model = tmp_path / "tiny.ts"
        torch.jit.save(torch.jit.script(tiny_net()), model)
    return evaluate_main(["--data", str(folder / "images"), "--model", str(model), "--out", str(tmp_path / "out"),
                          "--no-progress", "--methods", "Saliency", "--metrics", "deletion", "--n-resamples", "200",
                          *extra])


@pytest.mark.parametrize("extra,message", [
    (["--methods", "Nope"], "--methods: unknown method"),
    (["--option", "Saliency.x=1"], "--option: method Saliency does not accept"),
    (["--masks", "/no/such/dir"], "--masks: no such folder"),
    (["--config", "/no/such.toml"], "--config: no such file"),
    (["--weights", "/no/such.pth"], "--weights: no such file"),
    (["--reference", "IntegratedGradients"], "--reference"),
])
def test_cli_errors_are_one_line_and_exit_2(folder, tmp_path, capsys, extra, message):
    assert _cli(folder, tmp_path, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("captum-ext: error: ") and message in err and "\n" not in err
    assert not (tmp_path / "out" / "rows").exists() or not any((tmp_path / "out" / "rows").iterdir())


def test_cli_refuses_to_mix_runs_and_resumes(folder, tmp_path, capsys):
    assert _cli(folder, tmp_path) == 0
    assert _cli(folder, tmp_path) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert _cli(folder, tmp_path, "--resume") == 0


def test_cli_resume_refuses_other_settings_or_an_older_values_version(folder, tmp_path, capsys):
    import json

    assert _cli(folder, tmp_path, "--max-images", "2") == 0
    capsys.readouterr()
    assert _cli(folder, tmp_path, "--resume", "--seed", "3") == 2  # the rows would mix two seeds
    err = capsys.readouterr().err
    assert "--resume: settings differ" in err and "seed 0 -> 3" in err
    assert _cli(folder, tmp_path, "--resume", "--metrics", "insertion") == 2
    assert "metrics ['deletion'] -> ['insertion']" in capsys.readouterr().err
    # settings that change no value may differ: more images, another batch size
    assert _cli(folder, tmp_path, "--resume", "--batch-size", "3") == 0
    rows = read_rows(tmp_path / "out")
    assert sorted(int(r["index"]) for r in rows) == list(range(len({int(r["index"]) for r in rows})))
    assert len(rows) > 2
    # a run written before VALUES_VERSION existed (version 1) is not resumed with newer values
    manifest_path = tmp_path / "out" / "run.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["values_version"]
    manifest_path.write_text(json.dumps(manifest))
    assert _cli(folder, tmp_path, "--resume") == 2
    assert "values version 1, now" in capsys.readouterr().err


def test_cli_toml_config(folder, tmp_path):
    (tmp_path / "eval.toml").write_text("[TestScaled]\nscale = 2.5\n")
    if "TestScaled" not in available_methods():
        register_method(MethodSpec("TestScaled", lambda m, scale=1.0: (lambda x, t: scale * torch.ones_like(x)),
                                   "test only", default=False, group="test"))
    assert _cli(folder, tmp_path, "--methods", "TestScaled", "--config", str(tmp_path / "eval.toml"),
                "--option", "TestScaled.scale=4") == 0
    maps = torch.load(tmp_path / "out" / "maps" / "0.pt", weights_only=True)["maps"]
    assert float(maps["TestScaled"].max()) == 4.0  # --option wins over the file


# ------------------------------------------------------------------- ROAD column, Python data


@pytest.mark.parametrize("per_image", [False, True])
def test_road_column_calls_road_with_the_images_seeds(monkeypatch, tmp_path, per_image):
    """The ROAD column (registered only when captum_ext.metrics.road imports) calls ``road`` once
    per order for the images of a call, each image's noise keyed by its own seed
    (``seed=0, image_indices=seeds``), and reports (LeRF - MoRF) / 2 (``road_combined``)."""
    import sys
    import types
    from dataclasses import dataclass

    from captum_ext._utils import derive_seed

    calls = []

    @dataclass
    class RoadResult:
        scores: torch.Tensor
        mean: torch.Tensor

    def road(forward_func, inputs, attributions, target, percentages=(0.1, 0.5), order="morf",
             inpainter="linear", noise=0.01, seed=0, max_examples_per_batch=None, image_indices=None):
        calls.append((order, seed, tuple(image_indices), max_examples_per_batch))
        value = torch.full((inputs.shape[0],), 0.25 if order == "morf" else 0.75)
        return RoadResult(value[:, None].repeat(1, 2), value)

    fake = types.ModuleType("captum_ext.metrics.road")
    fake.road = road
    monkeypatch.setitem(sys.modules, "captum_ext.metrics.road", fake)
    images = torch.rand(3, 3, 8, 8)
    dataset = [(images[i], i % 2, (images[i, :1] > 0.5).float()) for i in range(3)]
    config = EvalConfig(out=str(tmp_path), methods=["Saliency"], metrics=None, progress=False, seed=7,
                        max_examples_per_batch=5, target="predicted", batch_methods=not per_image)
    job = build_job(config, dataset=dataset, model=tiny_net())
    assert [c.name for c in job.columns] == ["deletion", "insertion", "road", "localization"]
    run_indices(job, job.indices, tmp_path)
    rows = read_rows(tmp_path)
    seeds = [derive_seed(7, i) for i in range(3)]
    if per_image:
        expected = [(o, 0, (seeds[i],), 5) for i in range(3) for o in ("morf", "lerf")]
    else:  # Saliency takes the batch at once: one call per order
        expected = [(o, 0, tuple(seeds), 5) for o in ("morf", "lerf")]
    assert sorted(calls) == sorted(expected)
    assert all(r["road_morf"] == 0.25 and r["road_lerf"] == 0.75 and r["road"] == 0.25 for r in rows)
    with torch.no_grad():
        predicted = tiny_net()(images).argmax(1).tolist()
    assert [r["target"] for r in rows] == predicted and [r["label"] for r in rows] == [0, 1, 0]
    assert [r["image_id"] for r in rows] == ["0", "1", "2"]


def test_stamp_preset_scores_the_benchmark_images(tmp_path):
    """``--preset stamp``: the benchmark's held-out images, masks and cached classifier."""
    from captum_ext.benchmark.runner import held_out_images
    from captum_ext.data.classifier import load_stamp_classifier

    assert evaluate_main(["--preset", "stamp", "--max-images", "3", "--methods", "Saliency", "--metrics",
                          "localization", "--out", str(tmp_path), "--no-progress", "--n-resamples", "100"]) == 0
    rows = read_rows(tmp_path)
    model = load_stamp_classifier(progress=False)
    images, labels, masks = held_out_images(model, 3, 0, "cpu")
    assert [r["label"] for r in rows] == labels.tolist()
    from captum.attr import Saliency

    from captum_ext.metrics.localisation import stamp_distance

    expected = stamp_distance(Saliency(model).attribute(images, target=labels, abs=True), masks, abs=True)
    assert [r["stamp_distance"] for r in rows] == pytest.approx(expected.tolist(), abs=1e-6)


def test_captum_infidelity_and_sensitivity_columns(tmp_path):
    """Opt-in columns equal Captum's own functions called with the image's seed."""
    from captum.attr import Saliency
    from captum.metrics import infidelity, sensitivity_max

    from captum_ext._utils import derive_seed

    images = torch.rand(2, 3, 8, 8)
    model = tiny_net()
    config = EvalConfig(out=str(tmp_path), methods=["Saliency"], metrics=["infidelity", "sensitivity_max"],
                        progress=False, seed=5)
    job = build_job(config, dataset=[(images[i], i) for i in range(2)], model=model)
    run_indices(job, job.indices, tmp_path)
    rows = read_rows(tmp_path)
    saliency = Saliency(model)
    for i, row in enumerate(rows):
        x = images[i:i + 1]
        attr = saliency.attribute(x, target=i, abs=True)
        def perturb(t):
            noise = 0.003 * torch.randn_like(t)
            return noise, t - noise

        torch.manual_seed(derive_seed(5, i))
        expected = infidelity(model, perturb, x, attr, target=torch.tensor([i]), n_perturb_samples=10,
                              max_examples_per_batch=256)
        assert row["infidelity"] == pytest.approx(float(expected), rel=1e-5)
        assert math.isfinite(row["sensitivity_max"]) and row["sensitivity_max"] >= 0
        torch.manual_seed(derive_seed(5, i))
        sens = sensitivity_max(lambda t, target: saliency.attribute(t, target=target, abs=True), x,
                               perturb_radius=0.02, n_perturb_samples=10, max_examples_per_batch=256,
                               target=torch.tensor([i]))
        assert row["sensitivity_max"] == pytest.approx(float(sens), rel=1e-5)


def test_boxes_csv_gives_the_masks_of_the_same_rectangles(folder):
    """``--boxes`` (several rows per image) and ``--masks`` PNGs of the same rectangles agree."""
    ids = ImageFolderDataset(folder / "images").image_ids
    lines = ["file,x0,y0,x1,y1"] + [f"{i},6,4,18,12" for i in ids] + [f"{ids[0]},20,16,24,20"]
    (folder / "boxes.csv").write_text("\n".join(lines) + "\n")
    by_boxes = ImageFolderDataset(folder / "images", boxes=folder / "boxes.csv", resize=12, crop=10)
    by_masks = ImageFolderDataset(folder / "images", masks=folder / "masks", resize=12, crop=10)
    by_boxes.validate()
    first = by_boxes[0][2]
    assert first.sum() > by_masks[0][2].sum()  # the second box of the first image
    for i in range(1, len(ids)):
        assert torch.equal(by_boxes[i][2], by_masks[i][2])
    (folder / "bad.csv").write_text("nope.jpg,0,0,2,2\n")
    with pytest.raises(ValueError, match="--boxes: boxes for unknown image"):
        ImageFolderDataset(folder / "images", boxes=folder / "bad.csv").validate()


def test_road_column_equals_the_road_metric(tmp_path):
    """With the real ROAD metric, each row equals direct ``road`` calls on the image alone, its
    noise keyed by its seed (the column calls ``road`` once per order for the whole batch)."""
    from captum.attr import Saliency

    from captum_ext._utils import derive_seed
    from captum_ext.metrics.road import road, road_combined

    torch.manual_seed(0)
    images = torch.rand(2, 3, 8, 8)
    dataset = [(images[i], i % 2) for i in range(2)]
    config = EvalConfig(out=str(tmp_path), methods=["Saliency"], metrics=["road"], progress=False, seed=3,
                        max_examples_per_batch=16, target="label")
    model = tiny_net()
    job = build_job(config, dataset=dataset, model=model)
    run_indices(job, job.indices, tmp_path)
    rows = sorted(read_rows(tmp_path), key=lambda r: int(r["image_id"]))
    for i, row in enumerate(rows):
        x = images[i:i + 1]
        maps = Saliency(model).attribute(x, target=i % 2)
        keys = [derive_seed(3, i)]  # the image's seed keys its noise: road(seed=0, image_indices=...)
        morf = road(model, x, maps, target=i % 2, order="morf", seed=0, image_indices=keys)
        lerf = road(model, x, maps, target=i % 2, order="lerf", seed=0, image_indices=keys)
        assert row["road_morf"] == pytest.approx(morf.mean.item(), abs=1e-9)
        assert row["road_lerf"] == pytest.approx(lerf.mean.item(), abs=1e-9)
        assert row["road"] == pytest.approx(road_combined(morf, lerf).item(), abs=1e-9)
