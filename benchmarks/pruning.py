"""Cost of the pathway gradient: PathwayGradient vs Captum Saliency on ResNet-18.

ResNet-18 with seeded random weights (no download), 224x224, batch 8, in one process: the
methods are timed alternately, round after round (at least 5 rounds), and the ratio reported is
the median over rounds of ``time(method) / time(Saliency)`` of the same round, beside the ratio
of the medians; the load average is printed before and after (quote figures only from a quiet
machine: load well below the number of cores). Target (issue 15.5): PathwayGradient <= 2.2x
Saliency; the floor is 2 forward + 2 backward passes against 1 + 1. Peak memory: growth during
one call above model + inputs (CUDA: allocator peak; CPU: sampled resident set size, see
``peak_memory_mib``).

Usage::

    PYTHONPATH=. python benchmarks/pruning.py            # full run (224x224, batch 8)
    PYTHONPATH=. python benchmarks/pruning.py --quick    # batch 2, 112x112, no memory probe
"""

import argparse
import ctypes
import os
import statistics
import threading
import time
import warnings
from typing import Callable, Dict, List

import torch
import torchvision
from captum.attr import IntegratedGradients, Saliency

from captum_ext.attr import PathwayGradient, PrunedAttribution
from captum_ext.attr.pathway import CriticalPathway
from captum_ext.attr.pathway_gradient import DEFAULT_SPARSITY

warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients")


def build(device: str, batch: int, size: int):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval().to(device)
    inputs = torch.randn(batch, 3, size, size, device=device)
    target = torch.arange(batch, device=device) % 1000
    return model, inputs, target


def methods(model, ig_steps: int) -> Dict[str, Callable]:
    saliency = Saliency(model)
    pathway_gradient = PathwayGradient(model, sparsity=DEFAULT_SPARSITY)
    finder = CriticalPathway(model)
    table = {
        "Saliency (Captum)": lambda x, t: saliency.attribute(x, target=t, abs=False),
        f"PathwayGradient({DEFAULT_SPARSITY})": lambda x, t: pathway_gradient.attribute(
            x, target=t),
        "  pathway only": lambda x, t: finder.compute(
            x, target=t, sparsity=DEFAULT_SPARSITY, keep_scores=False).masks,
    }
    if ig_steps:
        ig = IntegratedGradients(model)
        pruned_ig = PrunedAttribution(IntegratedGradients, model, sparsity=DEFAULT_SPARSITY)
        table[f"IG (Captum, {ig_steps} steps)"] = lambda x, t: ig.attribute(
            x, target=t, n_steps=ig_steps, internal_batch_size=2 * x.shape[0])
        table[f"pruned IG ({ig_steps} steps)"] = lambda x, t: pruned_ig.attribute(
            x, target=t, n_steps=ig_steps, internal_batch_size=2 * x.shape[0])
    return table


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def time_all(table: Dict[str, Callable], inputs, target, args) -> Dict[str, List[float]]:
    times: Dict[str, List[float]] = {name: [] for name in table}
    for fn in table.values():  # warm-up
        fn(inputs, target)
    for _ in range(args.repeats):
        for name, fn in table.items():
            sync(args.device)
            start = time.perf_counter()
            fn(inputs, target)
            sync(args.device)
            times[name].append(time.perf_counter() - start)
    return times


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_memory_mib(fn: Callable[[], object], device: str) -> float:
    """Peak memory growth of one call of ``fn``, in MiB.

    CUDA: ``max_memory_allocated`` above what was allocated before. CPU (Linux): the peak
    resident set size, sampled every 0.5 ms by a thread, above the size before the call
    (after ``malloc_trim`` so that memory freed earlier is not counted as available).
    """
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    base = _rss_bytes()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        stop.set()
        sampler.join()
    return (max(peak[0], _rss_bytes()) - base) / 2**20


def stamp_diagnostics(n_images: int, device: str) -> None:
    """Pruning diagnostics on the stamp benchmark's held-out images, per sparsity.

    Prints the realised sparsity, the share of units with a non-zero score (the others are
    inactive ReLUs or cut off from the target: pruning them hardly changes the gradient) and the
    mean relative change of the target probability caused by pruning.
    """
    from captum_ext.benchmark.runner import held_out_images
    from captum_ext.data.classifier import load_stamp_classifier

    model = load_stamp_classifier(device=device).eval()
    images, labels, _ = held_out_images(model, n_images, seed=0, device=device)
    finder = CriticalPathway(model)
    print(f"\nStampNet, {images.shape[0]} held-out stamped images, target = stamp class")
    print(f"{'sparsity':>9}{'realised':>10}{'live units':>12}{'live pruned':>13}"
          f"{'|dp|/p':>9}{'dp/p':>9}")
    for sparsity in (0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99):
        pathway = finder.compute(images, target=labels, sparsity=sparsity)
        live = torch.cat([s.flatten(1) for s in pathway.scores], 1) > 0
        kept = pathway.flat_masks()
        live_pruned = ((live & ~kept).sum(1).float() / live.sum(1).clamp_min(1)).mean()
        change = pathway.probabilities(images)["relative_prob_change"]
        print(f"{sparsity:>9.2f}{pathway.realized_sparsity().mean():>10.3f}"
              f"{live.float().mean():>12.3f}{live_pruned:>13.3f}{change.abs().mean():>9.3f}"
              f"{change.mean():>9.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="batch 2, 112x112 (unless given), 5 repeats, no memory probe")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=None, help="default 8 (--quick: 2)")
    parser.add_argument("--size", type=int, default=None, help="default 224 (--quick: 112)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ig-steps", type=int, default=0,
                        help="also time (pruned) IntegratedGradients with this many steps")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    parser.add_argument("--stamp", type=int, default=0, metavar="N",
                        help="also print pruning diagnostics on N held-out stamp images "
                             "(trains the stamp classifier once if it is not cached)")
    args = parser.parse_args()
    if args.quick:
        args.no_memory = True
    if args.batch is None:
        args.batch = 2 if args.quick else 8
    if args.size is None:
        args.size = 112 if args.quick else 224
    if args.batch < 1 or args.size < 32:
        parser.error("--batch must be >= 1 and --size >= 32")
    if args.repeats < 5:
        parser.error("--repeats must be >= 5 (median of at least 5 alternating rounds)")
    print(f"load average before: {load_average()} on {os.cpu_count()} cores")
    print(f"ResNet-18 (random weights), {args.size}x{args.size}, batch {args.batch}, "
          f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"median of {args.repeats} alternating runs")
    model, inputs, target = build(args.device, args.batch, args.size)
    table = methods(model, args.ig_steps)
    times = time_all(table, inputs, target, args)
    load_after = load_average()
    memory = {name: peak_memory_mib(lambda fn=fn: fn(inputs, target), args.device)
              for name, fn in table.items()} if not args.no_memory else {}
    base_median = statistics.median(times["Saliency (Captum)"])
    base_min = min(times["Saliency (Captum)"])
    base = times["Saliency (Captum)"]
    print(f"\n{'method':<26}{'median s':>10}{'ratio':>8}{'paired':>8}{'min s':>8}{'ratio':>8}"
          f"{'peak MiB':>10}{'mem ratio':>10}")
    base_memory = memory.get("Saliency (Captum)")
    for name, values in times.items():
        median, fastest = statistics.median(values), min(values)
        paired = statistics.median(v / b for v, b in zip(values, base))
        mem = f"{memory[name]:>10.0f}{memory[name] / base_memory:>10.2f}" if memory else ""
        print(f"{name:<26}{median:>10.3f}{median / base_median:>8.2f}{paired:>8.2f}"
              f"{fastest:>8.3f}{fastest / base_min:>8.2f}{mem}")
    print(f"\nload average after: {load_after}")
    print("ratio = median time / median time of Captum Saliency; paired = median over the "
          "alternating rounds of time / Saliency's time in the same round; peak MiB = memory "
          "growth during one call above model + inputs")
    if args.stamp:
        stamp_diagnostics(args.stamp, args.device)


if __name__ == "__main__":
    main()
