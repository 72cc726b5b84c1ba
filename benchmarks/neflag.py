"""NeFLAG cost vs Captum IntegratedGradients at the same number of gradients.

NeFLAG with n=20 antithetic pairs (40 gradients per image) against ``IntegratedGradients`` with
``n_steps=40``, both with the same ``internal_batch_size``, on ResNet-18 with seeded random
weights at 224x224, batch 4. Times are interleaved in one process after a warm-up, the order
alternating per repeat (median of the repeats, and the per-repeat ratios), in wall-clock and
in process CPU seconds (steadier on a shared machine). A second pair of calls on a model that
costs almost nothing (pooling to 4x4 and a linear layer) shows what each method adds beyond
the gradients.
Peak memory is the peak of the CPU allocator's live bytes during one chunk of
``internal_batch_size`` points (IG ``n_steps = ibs / B``, NeFLAG ``n = ibs / 2B``), read from
``torch.profiler``'s memory events; chunks run one after the other and reuse that memory, so
this is the peak of the full call up to the (B, ...) accumulators.
On CUDA it is ``torch.cuda.max_memory_allocated`` over the full call.

Run: ``PYTHONPATH=. python benchmarks/neflag.py`` (about 3 minutes on a quiet 2-core CPU),
``--quick`` for 112x112, batch 2, one repeat.

``--stamp`` runs the ablation instead (sampling x aggregation and eps, against Saliency, IG and
a random map) on the stamp benchmark: ``--n-images`` held-out images, stamp distance and the
localisation columns, with |map| and with signed maps. It trains the stamp classifier once if
it is not cached (a few minutes); ``--quick`` keeps only the sampling x aggregation rows.
"""

import argparse
import platform
import statistics
import sys
import time
from typing import Callable, Dict

import torch
import torchvision
from captum.attr import IntegratedGradients
from torch.profiler import ProfilerActivity, profile

from captum_ext.attr import NeFLAG

METHODS = ("ig", "neflag")
LABELS = {"ig": "IntegratedGradients n_steps=40", "neflag": "NeFLAG n=20 antithetic"}


def build(size: int, batch: int, device: str):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval().to(device)
    inputs = torch.rand(batch, 3, size, size, device=device)
    target = torch.arange(batch, device=device)
    return model, inputs, target


def runner(name: str, model, inputs, target, ibs: int, gradients: int = 40
           ) -> Callable[[], torch.Tensor]:
    """One attribution call spending ``gradients`` gradients per image."""
    if name == "ig":
        ig = IntegratedGradients(model)
        return lambda: ig.attribute(inputs, target=target, n_steps=gradients,
                                    internal_batch_size=ibs)
    nf = NeFLAG(model)
    return lambda: nf.attribute(inputs, target=target, n=gradients // 2, sampling="antithetic",
                                internal_batch_size=ibs, generator=0)


def timed(fn: Callable[[], torch.Tensor], device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def cpu_peak_mib(fn: Callable[[], torch.Tensor]) -> float:
    """Peak live bytes of the CPU allocator during ``fn()``, from the profiler's events."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    deltas = sorted(
        (e.time_range.start, e.cpu_memory_usage if e.name == "[memory]" else
         e.self_cpu_memory_usage)
        for e in prof.events()
    )
    live = peak = 0
    for _, delta in deltas:
        live += delta
        peak = max(peak, live)
    return peak / 2**20


def cuda_peak_mib(fn: Callable[[], torch.Tensor]) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def stamp_ablation(n_images: int, quick: bool) -> None:
    """Sampling x aggregation (and eps) of NeFLAG on the stamp benchmark, as Markdown.

    Maps are computed once per method and scored with |map| and with the signed map.
    """
    from captum_ext.benchmark.methods.neflag import neflag_builder
    from captum_ext.benchmark.registry import available_methods
    from captum_ext.benchmark.runner import held_out_images
    from captum_ext.data.classifier import load_stamp_classifier
    from captum_ext.metrics import localisation as loc

    registered = available_methods()
    builders = {name: registered[name].build for name in ("Random", "Saliency",
                                                           "IntegratedGradients")}
    for sampling in ("antithetic", "flip", "descent"):
        for aggregation in ("decomposition", "vector"):
            name = f"NeFLAG({sampling}{'' if aggregation == 'decomposition' else ',vector'})"
            builders[name] = neflag_builder(sampling, aggregation)
    if not quick:
        for sampling in ("antithetic", "descent"):
            builders[f"NeFLAG({sampling},eps=1)"] = neflag_builder(sampling, eps=1.0)

    model = load_stamp_classifier(progress=False).eval()
    images, labels, masks = held_out_images(model, n_images, seed=0, device="cpu")
    metrics = {"stamp_distance": loc.stamp_distance, "pointing_game": loc.pointing_game,
               "relevance_mass": loc.relevance_mass_accuracy, "roc_auc": loc.roc_auc}
    lines = {True: [], False: []}
    for name, build in builders.items():
        explain = build(model)
        start = time.perf_counter()
        maps = torch.cat([explain(images[i:i + 16], labels[i:i + 16]).detach()
                          for i in range(0, images.shape[0], 16)])
        seconds = (time.perf_counter() - start) / images.shape[0]
        for use_abs in (True, False):
            cells = []
            for fn in metrics.values():
                mean, half, _ = loc.mean_and_interval(fn(maps, masks, abs=use_abs))
                cells.append(f"{mean:.3f} ± {half:.3f}")
            lines[use_abs].append(f"| {name} | " + " | ".join(cells) + f" | {seconds:.3f} |")
        print(f"  {name}: done", file=sys.stderr, flush=True)
    header = ("| method | stamp distance ↓ | pointing game ↑ | relevance mass ↑ | ROC AUC ↑ "
              "| s/image |")
    for use_abs in (True, False):
        print(f"\n### stamp benchmark, {images.shape[0]} held-out images, "
              f"{'|map|' if use_abs else 'signed map'} (mean ± 95% half-width)\n")
        print(header)
        print("|---|---|---|---|---|---|")
        print("\n".join(lines[use_abs]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="112x112, batch 2, one repeat")
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 2)")
    parser.add_argument("--internal-batch-size", type=int, default=40,
                        help="points per pass, for both methods; a multiple of 2*batch")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--stamp", action="store_true", help="run the stamp-benchmark ablation")
    parser.add_argument("--n-images", type=int, default=48, help="images for --stamp")
    args = parser.parse_args()
    if args.stamp:
        stamp_ablation(args.n_images, args.quick)
        return
    args.size = args.size or (112 if args.quick else 224)
    args.batch = args.batch or (2 if args.quick else 4)
    args.repeats = args.repeats or (1 if args.quick else 2)

    model, inputs, target = build(args.size, args.batch, args.device)
    ibs = args.internal_batch_size
    runs = {name: runner(name, model, inputs, target, ibs) for name in METHODS}
    one_chunk = {name: runner(name, model, inputs, target, ibs, max(2, ibs // args.batch))
                 for name in METHODS}
    for fn in one_chunk.values():  # warm-up
        fn()
    if args.device == "cuda":
        memory = {name: cuda_peak_mib(runs[name]) for name in METHODS}
    else:
        memory = {name: cpu_peak_mib(one_chunk[name]) for name in METHODS}
    wall, cpu = interleaved(runs, args.repeats, args.device)

    # the same two calls on a model that costs almost nothing: what each method adds
    cheap = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(),
                                torch.nn.Linear(48, 1000)).eval().to(args.device)
    cheap_runs = {name: runner(name, cheap, inputs, target, ibs) for name in METHODS}
    for fn in cheap_runs.values():
        fn()
    cheap_wall, _ = interleaved(cheap_runs, 3, args.device)

    print(f"NeFLAG vs IntegratedGradients: ResNet-18 (random weights), {args.size}x{args.size}, "
          f"batch {args.batch}, internal_batch_size {ibs}, {args.repeats} repeat(s), "
          f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}")
    print(f"{'method':<32} {'grads/img':>9} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9} "
          f"{'cheap-model s':>13}")
    for name in METHODS:
        print(f"{LABELS[name]:<32} {40:>9} {statistics.median(wall[name]):>8.2f} "
              f"{statistics.median(cpu[name]):>8.2f} {memory[name]:>9.0f} "
              f"{statistics.median(cheap_wall[name]):>13.3f}")
    for label, table in (("wall", wall), ("cpu", cpu)):
        ratios = [nf / ig for nf, ig in zip(table["neflag"], table["ig"])]
        print(f"{label} time ratio NeFLAG / IG: {statistics.median(ratios):.3f} (per repeat: "
              f"{', '.join(f'{r:.3f}' for r in ratios)}); target <= 1.1")
    print(f"memory ratio NeFLAG / IG: {memory['neflag'] / memory['ig']:.3f}")
    extra = statistics.median(cheap_wall["neflag"]) - statistics.median(cheap_wall["ig"])
    print(f"NeFLAG's own overhead beyond IG's (cheap model): {extra:+.3f} s per call, "
          f"{extra / statistics.median(wall['ig']):+.1%} of the IG call on ResNet-18")


def interleaved(runs: Dict[str, Callable[[], torch.Tensor]], repeats: int, device: str):
    """Wall and process-CPU seconds per method, alternating the order every repeat."""
    wall: Dict[str, list] = {name: [] for name in runs}
    cpu: Dict[str, list] = {name: [] for name in runs}
    for r in range(repeats):
        for name in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            start_cpu = time.process_time()
            wall[name].append(timed(runs[name], device))
            cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu

if __name__ == "__main__":
    main()
