"""Same numbers everywhere: one process, two torchrun ranks (gloo, started by torch.distributed.run)
and a local Ray instance write identical per-image rows and the same summary; a rank that dies
mid-run, then ``--resume``, ends with the rows of an uninterrupted run, nothing computed twice."""

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from captum_ext.benchmark.cli import main
from captum_ext.evaluate.config import EvalConfig
from captum_ext.evaluate.distributed import (
    FAIL_AFTER_ENV,
    RankInfo,
    backend_for,
    evaluate_distributed,
    rank_info,
    resolve_device,
    shard_indices,
)
from captum_ext.evaluate.runner import read_rows

ROOT = Path(__file__).resolve().parents[1]
TIMING = ("seconds", "metric_seconds")
N_IMAGES = 10
METHODS = ["Saliency", "Random"]  # Random draws from the per-image seed: a wrong seed changes the rows


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean((2, 3)))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("dist")
    rng = np.random.default_rng(0)
    for i in range(N_IMAGES):
        cls = f"class{i % 2}"
        (root / "images" / cls).mkdir(parents=True, exist_ok=True)
        (root / "masks" / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / "images" / cls / f"{i}.png")
        mask = np.zeros((16, 16), np.uint8)
        mask[3:9, 4:12] = 255
        Image.fromarray(mask).save(root / "masks" / cls / f"{i}.png")
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(_Tiny().eval()), str(root / "tiny.ts"))
    return root


def _args(root: Path, out: Path):
    return ["evaluate", "--data", str(root / "images"), "--masks", str(root / "masks"), "--model",
            str(root / "tiny.ts"), "--methods", *METHODS, "--metrics", "deletion", "insertion", "localization",
            "--batch-size", "2", "--max-examples-per-batch", "8", "--grid-images", "2", "--n-resamples", "199",
            "--reference", "Saliency", "--out", str(out), "--no-progress"]


def _config(root: Path, out: Path, **kw) -> EvalConfig:
    """The same run as :func:`_args`, from Python."""
    options = dict(data=str(root / "images"), masks=str(root / "masks"), model=str(root / "tiny.ts"),
                   methods=METHODS, metrics=["deletion", "insertion", "localization"], batch_size=2,
                   max_examples_per_batch=8, grid_images=2, reference="Saliency", progress=False, out=str(out))
    options.update(kw)
    return EvalConfig(**options)


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _raw_rows(out: Path):
    """Every row of every file (no de-duplication), with its file name."""
    found = []
    for path in sorted((out / "rows").iterdir()):
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            rows = pq.read_table(path).to_pylist()
        else:
            with open(path, newline="") as handle:
                rows = list(csv.DictReader(handle))
        found += [(path.name, int(row["index"]), str(row["method"])) for row in rows]
    return found


def _summary(out: Path):
    with open(out / "summary.csv", newline="") as handle:
        return [row for row in csv.DictReader(handle) if not any(t in str(row.values()) for t in TIMING)]


@pytest.fixture(scope="module")
def single(workspace):
    """The one-process reference run (the ordinary command, in this process)."""
    out = workspace / "single"
    assert main(_args(workspace, out)) == 0
    rows = _strip(read_rows(out))
    assert len(rows) == N_IMAGES * len(METHODS)
    return out, rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(root: Path, out: Path, *extra: str, env=None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
               "-m", "captum_ext", *_args(root, out), *extra]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    environment.pop(FAIL_AFTER_ENV, None)
    environment.update(env or {})
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)


# ------------------------------------------------------------------------------------ unit


def test_shards_cover_every_index_once_without_padding():
    for n in range(0, 12):
        for world in range(1, 5):
            shards = [shard_indices(list(range(100, 100 + n)), r, world) for r in range(world)]
            flat = sorted(i for s in shards for i in s)
            assert flat == list(range(100, 100 + n))
            assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_rank_info_and_bad_arguments():
    assert rank_info({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}) == RankInfo(1, 2, 1)
    with pytest.raises(ValueError, match="torchrun"):
        rank_info({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="rank"):
        shard_indices([1, 2], 2, 2)
    with pytest.raises(ValueError, match="world_size"):
        shard_indices([1, 2], 0, 0)
    assert resolve_device("cpu", 1) == "cpu"
    gpus = torch.cuda.device_count()
    assert resolve_device("auto", 1) == (f"cuda:{1 % gpus}" if gpus else "cpu")
    assert resolve_device("cuda:0", 5) == "cuda:0"
    assert backend_for("cpu", {"LOCAL_WORLD_SIZE": "2"}) == "gloo"
    if gpus:
        assert backend_for("cuda:0", {"LOCAL_WORLD_SIZE": str(gpus + 1)}) == "gloo"
        assert backend_for("cuda:0", {"LOCAL_WORLD_SIZE": "1"}) == "nccl"


def test_one_rank_api_equals_the_cli(workspace, single):
    out, rows = single
    config = _config(workspace, workspace / "api", batch_size=3, device="auto")
    summary = evaluate_distributed(config, n_resamples=199, info=RankInfo())
    assert _strip(read_rows(workspace / "api")) == rows
    assert _summary(workspace / "api") == _summary(out)
    # rank 0 returns the Summary it wrote
    assert summary.methods == METHODS and summary.paths["csv"] == workspace / "api" / "summary.csv"


def test_cli_engine_errors_are_one_line(workspace, capsys):
    code = main(_args(workspace, workspace / "x") + ["--address", "ray://nowhere:1"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("captum-ext: error: ") and "--address" in err[0]


# ----------------------------------------------------------------------------- torchrun


def test_two_torchrun_ranks_equal_one_process(workspace, single):
    out, rows = single
    done = _torchrun(workspace, workspace / "two")
    assert done.returncode == 0, done.stderr[-3000:]
    assert _strip(read_rows(workspace / "two")) == rows
    assert _summary(workspace / "two") == _summary(out)
    writers = {p.name.split("-")[0] for p in (workspace / "two" / "rows").iterdir()}
    assert writers == {"0", "1"}  # both ranks wrote their share
    tables = (workspace / "two" / "summary.md").read_text().count("| method")
    assert tables >= 1 and done.stdout.count("| method") == tables  # rank 0 printed the summary once


def test_killed_rank_then_resume_equals_uninterrupted(workspace, single):
    out, rows = single
    run = workspace / "killed"
    killed = _torchrun(workspace, run, env={FAIL_AFTER_ENV: "1:1"})
    assert killed.returncode != 0 and "stopped after 1 batches" in killed.stderr
    before = {p.name: p.read_bytes() for p in (run / "rows").iterdir()}
    written_before = _raw_rows(run)
    assert 0 < len(written_before) < len(rows)  # rank 1 wrote exactly one batch of 2 images
    assert sum(1 for name, _, _ in written_before if name.startswith("1-")) == 2 * len(METHODS)

    resumed = _torchrun(workspace, run, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _strip(read_rows(run)) == rows
    assert _summary(run) == _summary(out)
    for name, content in before.items():  # the written batches are untouched ...
        assert (run / "rows" / name).read_bytes() == content
    keys = [(i, m) for _, i, m in _raw_rows(run)]
    assert len(keys) == len(set(keys)) == len(rows)  # ... and nothing was computed twice


def test_rows_of_an_earlier_run_need_resume(workspace, single, capsys):
    out, _ = single
    assert main(_args(workspace, out) + ["--engine", "torchrun"]) == 2
    assert "--resume" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- Ray


def test_local_ray_equals_one_process(workspace, single):
    pytest.importorskip("ray", reason="ray is not installed (pip install 'captum-ext[ray]'); .ci/run installs it")
    from captum_ext.evaluate.ray_engine import evaluate_ray

    out, rows = single
    config = _config(workspace, workspace / "ray")
    summary = evaluate_ray(config, num_workers=2, n_resamples=199, init_kwargs={"num_cpus": 2})
    assert _strip(read_rows(workspace / "ray")) == rows
    assert _summary(workspace / "ray") == _summary(out)
    assert summary.methods == METHODS and summary.paths["csv"] == workspace / "ray" / "summary.csv"


def test_ray_engine_without_ray_is_a_clear_error(workspace, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    assert main(_args(workspace, workspace / "no_ray") + ["--engine", "ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["captum-ext: error: --engine ray needs Ray Data: pip install 'captum-ext[ray]'"]


def test_preset_through_the_distributed_path_equals_the_plain_command(tmp_path):
    common = ["evaluate", "--preset", "stamp", "--max-images", "3", "--methods", *METHODS, "--metrics",
              "localization", "--batch-size", "2", "--n-resamples", "99", "--grid-images", "0", "--no-progress"]
    assert main(common + ["--out", str(tmp_path / "plain")]) == 0
    assert main(common + ["--out", str(tmp_path / "rank"), "--engine", "torchrun"]) == 0
    plain = _strip(read_rows(tmp_path / "plain"))
    assert len(plain) == 3 * len(METHODS)
    assert _strip(read_rows(tmp_path / "rank")) == plain
