"""Inpainting benchmark: fill cost and accuracy, and the overhead of inpainting Occlusion.

    PYTHONPATH=. python benchmarks/inpainting.py [--quick]

1. Fill time per 224 x 224 RGB image at batch 64 (harmonic, pull-push), for occlusion-window
   holes (32 x 32, random positions) and Lime-style holes (half of 50 SLIC superpixels off).
2. Accuracy of the default harmonic fill against an exact sparse solve of the same equation.
3. Inpainting Occlusion (harmonic) vs Captum Occlusion (constant baseline): ResNet-18 with
   seeded random weights, 224 x 224, window 32, stride 16, both timed in this process
   (alternating, best of the repeats), target ratio <= 2.
"""

import argparse
import time
from typing import Callable, Dict, List

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl
import torch
import torchvision
from captum.attr import Occlusion
from skimage import data, transform
from skimage.segmentation import slic

from captum_ext.attr import InpaintingOcclusion
from captum_ext.inpaint import HarmonicInpainter, PullPushInpainter


def photo(size: int = 224) -> torch.Tensor:
    img = transform.resize(data.astronaut(), (size, size), anti_aliasing=True)
    return torch.tensor(img, dtype=torch.float32).permute(2, 0, 1)


def window_holes(batch: int, size: int, window: int = 32, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    holes = torch.zeros(batch, 1, size, size, dtype=torch.bool)
    for i in range(batch):
        y, x = torch.randint(0, size - window + 1, (2,), generator=gen).tolist()
        holes[i, :, y:y + window, x:x + window] = True
    return holes


def superpixel_holes(image: torch.Tensor, batch: int, seed: int = 0) -> torch.Tensor:
    seg = slic(image.permute(1, 2, 0).numpy().astype(np.float64), n_segments=50,
               compactness=30, sigma=3, start_label=0)
    seg = torch.from_numpy(seg)
    gen = torch.Generator().manual_seed(seed)
    off = torch.rand(batch, int(seg.max()) + 1, generator=gen) < 0.5
    return off[:, seg].unsqueeze(1)


def timed(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def exact_laplace(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Exact solve of the 4-neighbour Laplace equation in the hole (Neumann at the border)."""
    height, width = hole.shape
    ys, xs = np.nonzero(hole)
    index = -np.ones((height, width), dtype=int)
    index[ys, xs] = np.arange(len(ys))
    rows, cols, vals = [np.arange(len(ys))], [np.arange(len(ys))], []
    degree = np.zeros(len(ys))
    rhs = np.zeros((len(ys), image.shape[0]))
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        degree += inside
        k = np.nonzero(inside)[0]
        nb_hole = hole[ny[k], nx[k]]
        rows.append(k[nb_hole])
        cols.append(index[ny[k[nb_hole]], nx[k[nb_hole]]])
        known = k[~nb_hole]
        rhs[known] += image[:, ny[known], nx[known]].T
    vals = np.concatenate([degree] + [-np.ones(len(r)) for r in rows[1:]])
    matrix = sp.csc_matrix((vals, (np.concatenate(rows), np.concatenate(cols))),
                           shape=(len(ys), len(ys)))
    out = image.copy()
    out[:, ys, xs] = spl.spsolve(matrix, rhs).reshape(len(ys), -1).T
    return out


def fill_timing(batch: int, repeats: int) -> List[Dict[str, object]]:
    image = photo()
    images = image.expand(batch, -1, -1, -1).contiguous()
    holes = {"32x32 window": window_holes(batch, 224),
             "50% superpixels": superpixel_holes(image, batch)}
    rows = []
    for name, inpainter in (("harmonic", HarmonicInpainter()), ("pull-push", PullPushInpainter())):
        for hole_name, hole in holes.items():
            seconds = timed(lambda fill=inpainter, h=hole: fill(images, h), repeats)
            rows.append(dict(inpainter=name, holes=hole_name, ms=1000 * seconds / batch))
    return rows


def fill_accuracy() -> List[Dict[str, object]]:
    image = photo().double()
    rows = []
    holes = {"32x32 window": window_holes(1, 224, seed=5),
             "50% superpixels": superpixel_holes(image.float(), 1, seed=5)}
    for hole_name, hole in holes.items():
        exact = torch.from_numpy(exact_laplace(image.numpy(), hole[0, 0].numpy()))
        for name, inpainter in (("harmonic (default)", HarmonicInpainter()),
                                ("harmonic, 16 sweeps", HarmonicInpainter(sweeps=16)),
                                ("pull-push", PullPushInpainter())):
            out = inpainter(image[None], hole)[0]
            diff = (out - exact)[:, hole[0, 0]]
            rows.append(dict(holes=hole_name, inpainter=name,
                             rmse=float(diff.pow(2).mean().sqrt()), max=float(diff.abs().max())))
    return rows


def occlusion_overhead(n_images: int, stride: int, repeats: int, ppe: int) -> Dict[str, float]:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = ((photo()[None] - mean) / std).repeat(n_images, 1, 1, 1)
    args = dict(sliding_window_shapes=(3, 32, 32), strides=(3, stride, stride), target=0,
                perturbations_per_eval=ppe)
    plain, inpainting = Occlusion(model), InpaintingOcclusion(model, inpainter="harmonic")
    results: Dict[str, List[float]] = {"captum": [], "inpainting": []}
    maps = {}
    with torch.no_grad():
        for _ in range(repeats):  # alternate, so both see the same machine load
            for name, method in (("captum", plain), ("inpainting", inpainting)):
                start = time.perf_counter()
                maps[name] = method.attribute(x, baselines=0.0, **args)
                results[name].append(time.perf_counter() - start)
    captum_s, inpaint_s = min(results["captum"]), min(results["inpainting"])
    windows = ((224 - 32) // stride + 1) ** 2
    corr = float(torch.corrcoef(torch.stack([maps["captum"].flatten(),
                                             maps["inpainting"].flatten()]))[0, 1])
    return dict(windows=windows, captum_s=captum_s / n_images, inpaint_s=inpaint_s / n_images,
                ratio=inpaint_s / captum_s, corr=corr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller run (about a minute)")
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    batch, repeats = (16, 1) if args.quick else (64, 2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")

    print(f"1. fill time, 224x224 RGB, batch {batch} (best of {repeats})")
    print(f"{'inpainter':<12}{'holes':<18}{'ms / image':>12}")
    for row in fill_timing(batch, repeats):
        print(f"{row['inpainter']:<12}{row['holes']:<18}{row['ms']:>12.2f}")

    if not args.quick:
        print("\n2. accuracy against an exact sparse Laplace solve (astronaut, values in [0, 1])")
        print(f"{'holes':<18}{'inpainter':<22}{'RMSE':>8}{'max':>8}")
        for row in fill_accuracy():
            print(f"{row['holes']:<18}{row['inpainter']:<22}{row['rmse']:>8.4f}{row['max']:>8.4f}")

    n_images, stride, occ_repeats = (1, 32, 1) if args.quick else (1, 16, 2)
    res = occlusion_overhead(n_images, stride, occ_repeats, ppe=32)
    print(f"\n3. Occlusion on ResNet-18 (random weights), 224x224, window 32, stride {stride} "
          f"({res['windows']} windows), perturbations_per_eval 32")
    print(f"{'method':<34}{'s / image':>10}")
    print(f"{'Captum Occlusion (baseline 0)':<34}{res['captum_s']:>10.2f}")
    print(f"{'InpaintingOcclusion (harmonic)':<34}{res['inpaint_s']:>10.2f}")
    verdict = "meets" if res["ratio"] <= 2 else "misses"
    print(f"ratio {res['ratio']:.2f} ({verdict} the target <= 2); "
          f"correlation of the two maps {res['corr']:.2f}")


if __name__ == "__main__":
    main()
