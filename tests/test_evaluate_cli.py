"""Must show: an image folder of JPEGs with masks and a resnet18 state dict, evaluated end to end
by the ``captum-ext evaluate`` command line (a subprocess, as a user runs it)."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from scipy import stats

from captum_ext.evaluate import read_rows

N_IMAGES = 24
METHODS = ["Saliency", "InputXGradient", "IProp(Saliency)"]


def write_photo_folder(root: Path, n: int) -> None:
    """Crops of scikit-image photos with a pasted square "object" per image; its mask as PNG."""
    from skimage import data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    rng = np.random.default_rng(0)
    for i in range(n):
        photo = photos[i % len(photos)]
        y, x = rng.integers(0, photo.shape[0] - 96), rng.integers(0, photo.shape[1] - 128)
        crop = photo[y:y + 96, x:x + 128].copy()
        top, left, side = int(rng.integers(8, 56)), int(rng.integers(8, 88)), int(rng.integers(16, 32))
        crop[top:top + side, left:left + side] = rng.integers(0, 255, 3)
        mask = np.zeros(crop.shape[:2], np.uint8)
        mask[top:top + side, left:left + side] = 255
        cls = f"class{i % 2}"
        (root / "images" / cls).mkdir(parents=True, exist_ok=True)
        (root / "masks" / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(crop).save(root / "images" / cls / f"photo{i:02d}.jpg", quality=95)
        Image.fromarray(mask).save(root / "masks" / cls / f"photo{i:02d}.png")


@pytest.mark.slow
def test_cli_end_to_end_on_jpegs_masks_and_a_resnet18_state_dict(tmp_path):
    write_photo_folder(tmp_path, N_IMAGES)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=2)
    torch.save(model.state_dict(), tmp_path / "resnet18.pth")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "captum_ext", "evaluate", "--data", str(tmp_path / "images"),
               "--masks", str(tmp_path / "masks"), "--model", "torchvision:resnet18", "--num-classes", "2",
               "--weights", str(tmp_path / "resnet18.pth"), "--resize", "64", "--mean", "imagenet",
               "--methods", *METHODS, "--reference", "Saliency", "--out", str(out), "--batch-size", "8",
               "--n-resamples", "999", "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-2000:]

    # rows: one per (image, method), labels from the class folders, values in range
    rows = read_rows(out)
    assert len(rows) == N_IMAGES * len(METHODS)
    assert {r["image_id"] for r in rows} == {f"class{i % 2}/photo{i:02d}.jpg" for i in range(N_IMAGES)}
    assert all(r["label"] == int(r["image_id"][5]) == r["target"] for r in rows)
    for key in ("deletion", "insertion", "relevance_mass", "roc_auc"):
        values = np.array([r[key] for r in rows])
        assert np.all((values >= 0) & (values <= 1)), key

    # the maps kept for the grid are the model's Saliency maps on the preprocessed images
    model.eval()
    kept = torch.load(out / "maps" / "0.pt", weights_only=True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = kept["image"][None].clone().requires_grad_(True)
    model((x - mean) / std)[0, int(kept["image_id"].startswith("class1"))].backward()
    assert torch.allclose(kept["maps"]["Saliency"], x.grad[0].abs(), atol=1e-5)
    assert kept["image"].shape == (3, 64, 85) and kept["mask"].shape == (1, 64, 85)
    from captum_ext.metrics.localisation import pointing_game

    row0 = next(r for r in rows if r["index"] == 0 and r["method"] == "Saliency")
    assert row0["pointing_game"] == float(pointing_game(x.grad.abs(), kept["mask"][None], abs=True)[0])

    # summary: means and percentile-bootstrap intervals of the rows, paired Wilcoxon vs Saliency
    with open(out / "summary.csv") as handle:
        table = list(csv.DictReader(handle))
    line = next(t for t in table if t["method"] == "IProp(Saliency)" and t["metric"] == "insertion")
    mine = np.array([r["insertion"] for r in rows if r["method"] == "IProp(Saliency)"])
    ref = np.array([r["insertion"] for r in rows if r["method"] == "Saliency"])
    ci = stats.bootstrap((mine,), np.mean, n_resamples=999, method="percentile",
                         rng=np.random.default_rng(0)).confidence_interval
    assert float(line["mean"]) == pytest.approx(mine.mean(), rel=1e-12)
    assert (float(line["low"]), float(line["high"])) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert float(line["p_value"]) == pytest.approx(stats.wilcoxon(mine, ref).pvalue, rel=1e-12)
    assert "| IProp(Saliency) |" in (out / "summary.md").read_text()
    assert "Paired difference to **Saliency**" in result.stdout

    # figure and map grid: PNGs; the grid has a row per kept image, a column per method + image + mask
    with Image.open(out / "summary.png") as figure:
        assert figure.size[0] > 400 and figure.size[1] > 200
    with Image.open(out / "maps.png") as grid:
        width, height = grid.size
    assert len(list((out / "maps").glob("*.pt"))) == 4
    assert width / height == pytest.approx((len(METHODS) + 2) / 4, rel=0.15)
