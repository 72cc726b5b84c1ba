"""NeFLAG cost vs Captum IntegratedGradients at the same number of gradients.

NeFLAG with n=20 antithetic pairs (40 gradients per image) against ``IntegratedGradients`` with
``n_steps=40``, both with the same ``internal_batch_size``, on ResNet-18 with seeded random
weights at 224x224, batch 4. Times are interleaved in one process after a warm-up (median of
the repeats, and the per-repeat ratios). Peak memory is the peak of the CPU allocator's live
bytes during one chunk of ``internal_batch_size`` points (IG ``n_steps = ibs / B``, NeFLAG
``n = ibs / 2B``), read from ``torch.profiler``'s memory events; chunks run one after the other
and reuse that memory, so this is the peak of the full call up to the (B, ...) accumulators.
On CUDA it is ``torch.cuda.max_memory_allocated`` over the full call.

Run: ``PYTHONPATH=. python benchmarks/neflag.py`` (about 3 minutes on a quiet 2-core CPU),
``--quick`` for 112x112, batch 2, one repeat.

``--stamp`` runs the ablation instead (sampling x aggregation, eps, n, against Saliency, IG and
a random map) on the stamp benchmark: ``--n-images`` held-out images, stamp distance and the
localisation columns, with |map| and with signed maps. It trains the stamp classifier once if
it is not cached (a few minutes); ``--quick`` keeps only the sampling x aggregation rows.
"""

import argparse
import platform
import statistics
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
    """Sampling x aggregation (and eps, n) of NeFLAG on the stamp benchmark, as Markdown."""
    from captum_ext.benchmark.methods.neflag import neflag_builder
    from captum_ext.benchmark.registry import MethodSpec, available_methods, register_method
    from captum_ext.benchmark.runner import BenchmarkConfig, run_benchmark

    registered = available_methods()
    rows = ["Random", "Saliency", "IntegratedGradients"]
    for sampling in ("antithetic", "flip", "descent"):
        for aggregation in ("decomposition", "vector"):
            rows.append(_variant(registered, register_method, MethodSpec, neflag_builder,
                                 sampling=sampling, aggregation=aggregation))
    if not quick:
        for sampling in ("antithetic", "descent"):
            for eps in (1.0, 4.0):
                rows.append(_variant(registered, register_method, MethodSpec, neflag_builder,
                                     sampling=sampling, eps=eps))
            rows.append(_variant(registered, register_method, MethodSpec, neflag_builder,
                                 sampling=sampling, n=5))
        rows.append(_variant(registered, register_method, MethodSpec, neflag_builder,
                             sampling="descent", m=4, n=10))
    metrics = ["stamp_distance", "pointing_game", "relevance_mass", "roc_auc"]
    for use_abs in (True, False):
        result = run_benchmark(BenchmarkConfig(n_images=n_images, methods=rows, metrics=metrics,
                                               abs=use_abs, progress=False))
        print(f"\n### stamp benchmark, {n_images} images, {'|map|' if use_abs else 'signed map'}\n")
        print(result.markdown())


def _variant(registered, register_method, MethodSpec, neflag_builder, **options) -> str:
    """Register (once) an ablation row named after its non-default options; return its name."""
    defaults = {"aggregation": "decomposition", "eps": 0.1, "n": 20}
    label = ",".join(f"{k}={v}" if k in ("eps", "n", "m") else str(v)
                     for k, v in options.items() if defaults.get(k) != v)
    name = f"NeFLAG({label})"
    if name not in registered:
        registered[name] = register_method(MethodSpec(name=name, build=neflag_builder(**options),
                                                      default=False, group="neflag"))
    return name


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
    runs = {name: runner(name, model, inputs, target, args.internal_batch_size)
            for name in METHODS}
    ibs = args.internal_batch_size
    one_chunk = {name: runner(name, model, inputs, target, ibs, max(2, ibs // args.batch))
                 for name in METHODS}
    for fn in one_chunk.values():  # warm-up
        fn()
    if args.device == "cuda":
        memory = {name: cuda_peak_mib(runs[name]) for name in METHODS}
    else:
        memory = {name: cpu_peak_mib(one_chunk[name]) for name in METHODS}
    times: Dict[str, list] = {name: [] for name in METHODS}
    for _ in range(args.repeats):
        for name in METHODS:
            times[name].append(timed(runs[name], args.device))
    ratios = [nf / ig for nf, ig in zip(times["neflag"], times["ig"])]

    print(f"NeFLAG vs IntegratedGradients: ResNet-18 (random weights), {args.size}x{args.size}, "
          f"batch {args.batch}, internal_batch_size {args.internal_batch_size}, "
          f"{args.repeats} repeat(s), device {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print(f"{'method':<34} {'gradients/img':>13} {'median s':>9} {'peak MiB':>9}")
    for name in METHODS:
        print(f"{LABELS[name]:<34} {40:>13} {statistics.median(times[name]):>9.2f} "
              f"{memory[name]:>9.0f}")
    print(f"time ratio NeFLAG / IG: {statistics.median(ratios):.3f} (median of per-repeat "
          f"ratios {', '.join(f'{r:.3f}' for r in ratios)}); target <= 1.1")
    print(f"memory ratio NeFLAG / IG: {memory['neflag'] / memory['ig']:.3f}")


if __name__ == "__main__":
    main()
