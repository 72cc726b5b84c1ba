"""Scaling of ``captum-ext evaluate``: images per second on 1 process vs N torchrun ranks (and Ray).

Run (from the repository root, on a quiet machine)::

    PYTHONPATH=. python benchmarks/distributed.py                 # 64 images of 64x64, 1 vs 2 processes
    PYTHONPATH=. python benchmarks/distributed.py --quick         # 8 images of 32x32: checks it works
    PYTHONPATH=. python benchmarks/distributed.py --nproc 1 2 4 --ray --device auto

It writes a folder of photos from ``skimage.data`` (random crops, so no download) and a
TorchScript ``resnet18`` (random weights, ``num_classes=2``), then times the whole command (process
start, model load, evaluation, summary) with ``--nproc`` processes via ``torch.distributed.run``,
each process limited to ``--threads`` intra-op threads (default: cores / processes, so 1 and 2
processes use the same cores). Prints one JSON line per run and a Markdown table.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def write_folder(root: Path, n: int, size: int) -> None:
    from PIL import Image

    from captum_ext.data.photos import PHOTO_NAMES, _load_uint8

    rng = np.random.default_rng(0)
    photos = [_load_uint8(name) for name in PHOTO_NAMES]
    for i in range(n):
        photo = photos[i % len(photos)]
        top = int(rng.integers(0, photo.shape[0] - size + 1))
        left = int(rng.integers(0, photo.shape[1] - size + 1))
        crop = photo[top:top + size, left:left + size]
        folder = root / "images" / f"class{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(crop)).save(folder / f"{i:05d}.png")


def write_model(path: Path) -> None:
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=2).eval()
    torch.jit.save(torch.jit.script(model), str(path))


def run(work: Path, nproc: int, args: argparse.Namespace, engine: str) -> Dict[str, object]:
    out = work / f"out-{engine}-{nproc}"
    shutil.rmtree(out, ignore_errors=True)
    command = ["evaluate", "--data", str(work / "images"), "--model", str(work / "model.ts"),
               "--methods", *args.methods, "--metrics", *args.metrics, "--batch-size", str(args.batch_size),
               "--device", args.device, "--n-resamples", "99", "--grid-images", "0", "--out", str(out),
               "--no-progress"]
    threads = args.threads or max(1, (os.cpu_count() or 1) // nproc)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    if engine == "ray":
        full = [sys.executable, "-m", "captum_ext", *command, "--engine", "ray", "--workers", str(nproc)]
    elif nproc == 1:
        full = [sys.executable, "-m", "captum_ext", *command]
    else:
        full = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
                "-m", "captum_ext", *command]
    start = time.perf_counter()
    done = subprocess.run(full, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{engine} x{nproc} failed:\n{done.stderr[-3000:]}")
    return {"engine": engine, "processes": nproc, "threads_per_process": threads, "images": args.n_images,
            "size": args.size, "seconds": round(seconds, 2), "images_per_second": round(args.n_images / seconds, 3)}


def main(argv: List[str] = None) -> None:  # type: ignore[assignment]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-images", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads per process")
    parser.add_argument("--methods", nargs="+", default=["Saliency", "IntegratedGradients"])
    parser.add_argument("--metrics", nargs="+", default=["deletion", "insertion"])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="cpu", help="cpu, or auto: cuda:LOCAL_RANK on a GPU machine")
    parser.add_argument("--ray", action="store_true", help="also time --engine ray with the same worker counts")
    parser.add_argument("--quick", action="store_true", help="8 images of 32x32 (checks the script works)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_images, args.size = 8, 32
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_folder(work, args.n_images, args.size)
        write_model(work / "model.ts")
        results = [run(work, n, args, "torchrun" if n > 1 else "local") for n in args.nproc]
        if args.ray:
            results += [run(work, n, args, "ray") for n in args.nproc]
    for result in results:
        print(json.dumps(result))
    base = results[0]["images_per_second"]
    print("\n| engine | processes | threads each | images/s | speed-up |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['engine']} | {r['processes']} | {r['threads_per_process']} | {r['images_per_second']} | "
              f"{float(r['images_per_second']) / float(base):.2f}x |")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
