"""Cost of the ``evaluate`` faithfulness columns against the model forward passes they need.

Issue 11 asks: the deletion + insertion + ROAD columns for 64 images at 224 x 224 on ResNet-18
cost at most 1.5x the model forward passes they need, measured in the same run; and the images
per second of a whole ``evaluate`` run.

What is measured (seeded random ResNet-18 weights, nothing downloaded; crops of the
scikit-image photos):

1. ``columns``: for each image, the deletion, insertion and ROAD columns exactly as the runner
   calls them (one image at a time, its perturbed copies batched), Saliency maps computed
   beforehand. Every forward the columns make is recorded (its batch size).
2. ``forwards``: the same forwards alone: the recorded batch sizes replayed through the model on
   random images, under ``torch.no_grad``.
3. ``ratio`` = columns / forwards (the issue's bound: <= 1.5).
4. ``run``: a whole ``build_job`` + ``run_indices`` + ``summarize`` on the same images
   (``--methods``, default Saliency; the same columns) -> images per second.

Usage::

    python benchmarks/evaluate.py            # 64 images, 224 x 224
    python benchmarks/evaluate.py --quick    # 4 images, 64 x 64: checks that it runs
    python benchmarks/evaluate.py --device cuda --json out.json
"""

import argparse
import json
import tempfile
import time
from typing import Any, Dict, List

import numpy as np
import torch
import torchvision
from torch import Tensor, nn


class CountingModel(nn.Module):
    """The model, recording the batch size of every forward while ``record`` is on."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.batches: List[int] = []
        self.record = False

    def forward(self, x: Tensor) -> Tensor:
        if self.record:
            self.batches.append(int(x.shape[0]))
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
    model.batches.clear()
    model.record = True
    _sync(device)
    start = time.perf_counter()
    for i in range(images.shape[0]):
        seed = derive_seed(0, i)
        context = ColumnContext(model, images[i:i + 1], labels[i:i + 1], maps[i], None,
                                lambda x, t: x, [seed], options)
        for column in columns:
            torch.manual_seed(seed)
            column.fn(context)
    _sync(device)
    columns_s = time.perf_counter() - start
    model.record = False
    batches = list(model.batches)
    size = images.shape[-1]
    with torch.no_grad():
        replay = [torch.rand(b, 3, size, size, device=device) for b in sorted(set(batches))]
        by_size = {t.shape[0]: t for t in replay}
        model.model(by_size[batches[0]])  # warm-up
        _sync(device)
        start = time.perf_counter()
        for b in batches:
            model.model(by_size[b])
        _sync(device)
        forwards_s = time.perf_counter() - start
    return {"columns": [c.name for c in columns], "forward_calls": len(batches), "forward_rows": sum(batches),
            "columns_s": columns_s, "forwards_s": forwards_s, "ratio": columns_s / forwards_s}


def measure_run(model: nn.Module, images: Tensor, labels: Tensor, methods: List[str], metrics: List[str],
                max_examples_per_batch: int, device: str) -> Dict[str, Any]:
    from captum_ext.evaluate import EvalConfig, build_job, run_indices, summarize

    dataset = [(images[i].cpu(), int(labels[i])) for i in range(images.shape[0])]
    with tempfile.TemporaryDirectory() as out:
        config = EvalConfig(out=out, methods=methods, metrics=metrics, batch_size=16, device=device,
                            max_examples_per_batch=max_examples_per_batch, progress=False, grid_images=4)
        start = time.perf_counter()
        job = build_job(config, dataset=dataset, model=model)
        run_indices(job, job.indices, out)
        summarize(out, n_resamples=999)
        seconds = time.perf_counter() - start
    return {"methods": methods, "run_s": seconds, "images_per_s": images.shape[0] / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 images of 64 x 64")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--methods", nargs="+", default=["Saliency"])
    parser.add_argument("--max-examples-per-batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.images, args.size = 4, 64
    if args.threads:
        torch.set_num_threads(args.threads)
    from captum_ext.evaluate.columns import road_available

    metrics = ["deletion", "insertion"] + (["road"] if road_available() else [])
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
    result.update(measure_run(net, images, labels, args.methods, metrics, args.max_examples_per_batch, args.device))
    print(f"{args.images} images {args.size}x{args.size}, ResNet-18, {device}, {result['threads']} threads")
    print(f"columns {', '.join(result['columns'])}: {result['columns_s']:.2f} s; "
          f"their {result['forward_calls']} forwards ({result['forward_rows']} rows) alone: "
          f"{result['forwards_s']:.2f} s; ratio {result['ratio']:.2f} (bound 1.5)")
    print(f"whole evaluate run ({', '.join(args.methods)}): {result['run_s']:.2f} s, "
          f"{result['images_per_s']:.2f} images/s")
    if not result["road"]:
        print("note: captum_ext.metrics.road is not available; the ROAD column is not included")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
