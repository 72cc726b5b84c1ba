"""Cost of the ``evaluate`` faithfulness columns against the model forward passes they need.

Issue 11 asks: the deletion + insertion + ROAD columns for 64 images at 224 x 224 on ResNet-18
cost at most 1.5x the model forward passes they need, measured in the same run; and the images
per second of a whole ``evaluate`` run.

What is measured (seeded random ResNet-18 weights, nothing downloaded; crops of the
scikit-image photos):

1. ``columns``: for each image, the chosen columns (default deletion, insertion and ROAD)
   exactly as the runner calls them for a method that is explained one image at a time (one
   image per call, its perturbed copies batched), Saliency maps computed beforehand. Every
   forward the columns make is recorded (batch size, dtype, memory format).
2. ``forwards``: the same forwards alone, replayed right after each column call (so a change
   of machine load hits both alike): the recorded batch sizes through the model on random
   images of the same dtype and memory format, under ``torch.no_grad`` (as the columns run).
3. ``ratio`` = columns / forwards (the issue's bound: <= 1.5), in total and per column.
4. ``run``: a whole ``build_job`` + ``run_indices`` + ``summarize`` on the same images
   (``--methods``, default Saliency; the same columns; ``batch_methods=True``) -> images per
   second; with ``--per-image-too`` also one image per call (the runner's default).

One column call and its warm-up run before the timing (first-call costs: imports, caches).

Usage::

    python benchmarks/evaluate.py            # 64 images, 224 x 224
    python benchmarks/evaluate.py --quick    # 4 images, 64 x 64: checks that it runs
    python benchmarks/evaluate.py --device cuda --json out.json
    python benchmarks/evaluate.py --images 4 --metrics deletion insertion   # two columns only
"""

import argparse
import json
import os
import tempfile
import time
from typing import Any, Dict, List, Tuple

import numpy as np
import torch
import torchvision
from torch import Tensor, nn


class CountingModel(nn.Module):
    """The model, recording the batch size of every forward while ``record`` is on."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.batches: List[Tuple[int, torch.dtype, bool]] = []
        self.record = False

    def forward(self, x: Tensor) -> Tensor:
        if self.record:
            channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
            self.batches.append((int(x.shape[0]), x.dtype, channels_last))
        return self.model(x)


def photo_images(n: int, size: int, seed: int = 0) -> Tensor:
    from skimage import data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        photo = torch.from_numpy(photos[i % len(photos)]).permute(2, 0, 1).float() / 255
        scale = size / min(photo.shape[1:]) * float(rng.uniform(1.0, 1.6))
        photo = torch.nn.functional.interpolate(photo[None], scale_factor=scale, mode="bilinear",
                                                antialias=True, align_corners=False)[0]
        y = int(rng.integers(0, photo.shape[1] - size + 1))
        x = int(rng.integers(0, photo.shape[2] - size + 1))
        out.append(photo[:, y:y + size, x:x + size].clamp(0, 1))
    return torch.stack(out)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _replay(model: nn.Module, batches: List[Tuple[int, torch.dtype, bool]], cache: Dict[Any, Tensor],
            size: int, device: torch.device) -> Tuple[float, float]:
    """Wall and process-CPU seconds of the recorded forwards alone (random images, same batch
    size, dtype, format)."""
    with torch.no_grad():
        for key in batches:
            if key not in cache:
                batch, dtype, channels_last = key
                x = torch.rand(batch, 3, size, size, device=device, dtype=dtype)
                cache[key] = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        _sync(device)
        start, cpu = time.perf_counter(), time.process_time()
        for key in batches:
            model(cache[key])
        _sync(device)
    return time.perf_counter() - start, time.process_time() - cpu


def measure_columns(model: CountingModel, images: Tensor, labels: Tensor, names: List[str],
                    max_examples_per_batch: int, device: torch.device) -> Dict[str, Any]:
    from captum.attr import Saliency

    from captum_ext._utils import derive_seed
    from captum_ext.evaluate.columns import ColumnContext, select_columns

    columns = select_columns(names, has_masks=False)
    saliency = Saliency(model)
    maps = [saliency.attribute(images[i:i + 1], target=int(labels[i]), abs=True).detach()
            for i in range(images.shape[0])]
    options = {"inpainter": None, "max_examples_per_batch": max_examples_per_batch, "abs": True}
    size = images.shape[-1]
    cache: Dict[Any, Tensor] = {}

    def context(i: int) -> ColumnContext:
        return ColumnContext(model, images[i:i + 1], labels[i:i + 1], maps[i], None, lambda x, t: x,
                             [derive_seed(0, i)], options)

    for column in columns:  # warm-up: first-call costs of the columns and of each batch size
        model.batches.clear()
        model.record = True
        column.fn(context(0))
        model.record = False
        _replay(model.model, model.batches, cache, size, device)
    seconds = {c.name: 0.0 for c in columns}
    forward_seconds = {c.name: 0.0 for c in columns}
    cpu_seconds = {c.name: 0.0 for c in columns}
    forward_cpu_seconds = {c.name: 0.0 for c in columns}
    calls = rows = 0
    formats = set()
    for i in range(images.shape[0]):
        seed = derive_seed(0, i)
        for column in columns:
            model.batches.clear()
            model.record = True
            torch.manual_seed(seed)
            _sync(device)
            start, cpu = time.perf_counter(), time.process_time()
            column.fn(context(i))
            _sync(device)
            seconds[column.name] += time.perf_counter() - start
            cpu_seconds[column.name] += time.process_time() - cpu
            model.record = False
            batches = list(model.batches)
            wall, cpu = _replay(model.model, batches, cache, size, device)
            forward_seconds[column.name] += wall
            forward_cpu_seconds[column.name] += cpu
            calls += len(batches)
            rows += sum(b[0] for b in batches)
            formats.update(("channels_last" if b[2] else "contiguous", str(b[1])) for b in batches)
    columns_s, forwards_s = sum(seconds.values()), sum(forward_seconds.values())
    return {"columns": [c.name for c in columns], "forward_calls": calls, "forward_rows": rows,
            "forward_formats": sorted(formats), "columns_s": columns_s, "forwards_s": forwards_s,
            "ratio": columns_s / forwards_s,
            "per_column": {name: {"columns_s": seconds[name], "forwards_s": forward_seconds[name],
                                  "ratio": seconds[name] / forward_seconds[name],
                                  "cpu_ratio": cpu_seconds[name] / forward_cpu_seconds[name]} for name in seconds}}


def measure_run(model: nn.Module, images: Tensor, labels: Tensor, methods: List[str], metrics: List[str],
                max_examples_per_batch: int, device: str, per_image: bool = False) -> Dict[str, Any]:
    from captum_ext.evaluate import EvalConfig, build_job, run_indices, summarize

    dataset = [(images[i].cpu(), int(labels[i])) for i in range(images.shape[0])]
    with tempfile.TemporaryDirectory() as out:
        extra = {} if per_image else {"batch_methods": True}  # (older captum_ext versions lack the option)
        config = EvalConfig(out=out, methods=methods, metrics=metrics, batch_size=16, device=device,
                            max_examples_per_batch=max_examples_per_batch, progress=False, grid_images=4, **extra)
        start = time.perf_counter()
        job = build_job(config, dataset=dataset, model=model)
        run_indices(job, job.indices, out)
        summarize(out, n_resamples=999)
        seconds = time.perf_counter() - start
    return {"methods": methods, "per_image": per_image, "batched": sorted(getattr(job, "batched", ())),
            "run_s": seconds, "images_per_s": images.shape[0] / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 images of 64 x 64")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--methods", nargs="+", default=["Saliency"])
    parser.add_argument("--metrics", nargs="+", default=None,
                        help="columns to time (default: deletion insertion road)")
    parser.add_argument("--no-run", action="store_true", help="skip the whole evaluate run")
    parser.add_argument("--per-image-too", action="store_true",
                        help="also time the whole run without --batch-methods (every image in a call of its own)")
    parser.add_argument("--max-examples-per-batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.images, args.size = 4, 64
    if args.threads:
        torch.set_num_threads(args.threads)
    from captum_ext.evaluate.columns import road_available

    metrics = args.metrics or ["deletion", "insertion"] + (["road"] if road_available() else [])
    device = torch.device(args.device)
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=1000).eval().to(device)
    model = CountingModel(net).eval()
    images = photo_images(args.images, args.size).to(device)
    with torch.no_grad():
        labels = net(images).argmax(1)
    result: Dict[str, Any] = {"images": args.images, "size": args.size, "device": str(device),
                              "threads": torch.get_num_threads(), "road": road_available()}
    result.update(measure_columns(model, images, labels, metrics, args.max_examples_per_batch, device))
    if not args.no_run:
        result.update(measure_run(net, images, labels, args.methods, metrics, args.max_examples_per_batch,
                                  args.device))
        if args.per_image_too:
            result["per_image_run"] = measure_run(net, images, labels, args.methods, metrics,
                                                  args.max_examples_per_batch, args.device, per_image=True)
    result["load_average"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    print(f"{args.images} images {args.size}x{args.size}, ResNet-18, {device}, {result['threads']} threads, "
          f"load average {result['load_average']}")
    print(f"columns {', '.join(result['columns'])}: {result['columns_s']:.2f} s; "
          f"their {result['forward_calls']} forwards ({result['forward_rows']} rows, "
          f"{', '.join(' '.join(f) for f in result['forward_formats'])}) alone: "
          f"{result['forwards_s']:.2f} s; ratio {result['ratio']:.2f} (bound 1.5)")
    for name, figures in result["per_column"].items():
        print(f"  {name}: {figures['columns_s']:.2f} s against {figures['forwards_s']:.2f} s of forwards, "
              f"ratio {figures['ratio']:.3f} (process CPU time: {figures['cpu_ratio']:.3f})")
    if not args.no_run:
        print(f"whole evaluate run ({', '.join(args.methods)}; batched: {', '.join(result['batched']) or 'none'}): "
              f"{result['run_s']:.2f} s, {result['images_per_s']:.2f} images/s")
        if "per_image_run" in result:
            run = result["per_image_run"]
            print(f"the same, one image per call (the default): {run['run_s']:.2f} s, "
                  f"{run['images_per_s']:.2f} images/s")
    if not result["road"]:
        print("note: captum_ext.metrics.road is not available; the ROAD column is not included")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
