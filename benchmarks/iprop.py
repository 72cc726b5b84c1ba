"""IProp propagation speed: ours vs scipy spsolve, stencil vs CSR, VI vs CG, memory.

Run: ``PYTHONPATH=. python benchmarks/iprop.py`` (16 images of 224x224; ``--quick``: 4 of 112x112).
``--ablation`` instead runs the gamma / sigma_c / radius ablation on the stamp benchmark.

Guide images: photos shipped with scikit-image (and their mirror images), resized. Reward: an
edge-like stand-in for a 3-channel attribution map, ``|image - blur(image)|`` plus a little
seeded noise (the solvers' cost does not depend on the model that made the map).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from captum_ext.attr.iprop import propagate
from captum_ext.propagate import CSROperator, StencilOperator, solve_mrp

GAMMA, TOL = 0.9, 1e-4
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina",
          "colorwheel", "cat")


def load_images(count: int, size: int) -> torch.Tensor:
    """``count`` skimage.data photos (and mirrored copies), (count, 3, size, size) in [0, 1]."""
    from skimage import data

    photos = []
    for name in PHOTOS:
        try:
            array = getattr(data, name)()
        except Exception:  # a photo missing from this scikit-image version
            continue
        if array.ndim == 3 and array.shape[2] >= 3:
            photos.append(torch.from_numpy(np.ascontiguousarray(array[..., :3])).float() / 255.0)
    images = []
    for i in range(count):
        photo = photos[i % len(photos)].permute(2, 0, 1).unsqueeze(0)
        side = min(photo.shape[2:])
        photo = F.interpolate(photo[..., :side, :side], size=(size, size), mode="area")
        images.append(photo.flip(-1) if (i // len(photos)) % 2 else photo)
    return torch.cat(images)


def make_reward(images: torch.Tensor) -> torch.Tensor:
    blur = F.avg_pool2d(images, 5, 1, 2, count_include_pad=False)
    gen = torch.Generator().manual_seed(0)
    return (images - blur).abs() + 0.01 * torch.rand(images.shape, generator=gen)


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of ``repeats`` calls (the machine is shared: the minimum is the signal)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def build(images: torch.Tensor, operator: str):
    stencil = StencilOperator.from_guide(images)
    return stencil if operator == "stencil" else CSROperator.from_stencil(stencil)


def scipy_reference(op: StencilOperator, reward: torch.Tensor, n_ref: int) -> Tuple[float, float]:
    """Seconds per image of ``spsolve((I - gamma P), R)`` (all 3 channels as one multi-RHS solve),
    matrix assembly excluded; and the max relative difference to our CG solution."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    ours, _ = solve_mrp(op, reward, GAMMA, "cg", TOL)
    batch, channels, height, width = reward.shape
    seconds, worst = 0.0, 0.0
    for i in range(n_ref):
        single = CSROperator.from_stencil(StencilOperator(op.weights[i : i + 1])).matrix
        n = height * width
        weights = sp.csr_matrix(
            (single.values().double().numpy(), single.col_indices().numpy(),
             single.crow_indices().numpy()), shape=(n, n))
        degree = np.asarray(weights.sum(axis=1)).ravel()
        system = (sp.identity(n, format="csc") - GAMMA * sp.diags(1.0 / degree) @ weights).tocsc()
        rhs = reward[i].permute(1, 2, 0).reshape(n, channels).double().numpy()
        start = time.perf_counter()
        solution = spsolve(system, rhs)
        seconds += time.perf_counter() - start
        theirs = torch.from_numpy(solution).float().view(height, width, channels).permute(2, 0, 1)
        scale = reward[i].abs().max()
        worst = max(worst, float((theirs - ours[i]).abs().max() / scale))
    return seconds / n_ref, worst


def per_iteration(op, reward: torch.Tensor, solver: str, repeats: int) -> float:
    """Seconds per iteration: (time of 30 + k iterations - time of k) / 30, tol = 0."""
    def run(steps: int) -> float:
        return best_time(
            lambda: solve_mrp(op, reward, GAMMA, solver, tol=0.0, max_iter=steps, warn=False),
            repeats)

    return max(run(40) - run(10), 0.0) / 30


def stream_add(floats: int, repeats: int) -> float:
    """The memory-bound reference: ``c = a + b`` over ``floats`` floats in all (a, b, c)."""
    a = torch.rand(floats // 3)
    b, c = torch.rand_like(a), torch.empty_like(a)
    torch.add(a, b, out=c)
    return best_time(lambda: torch.add(a, b, out=c), repeats * 5)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def memory_probe(count: int, size: int, operator: str, solver: str) -> Dict[str, float]:
    """Peak resident memory added by one propagation (graph + solve), in a fresh process:
    the resident set is sampled every millisecond by a thread during the call."""
    import threading

    images = load_images(count, size)
    reward = make_reward(images)
    propagate(reward[:1, :, :8, :8], images[:1, :, :8, :8])  # warm up kernels and allocator
    before, peak, done = _rss_bytes(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    propagate(reward, images, gamma=GAMMA, tol=TOL, solver=solver, operator=operator)
    done.set()
    sampler.join()
    op = build(images, operator)
    return {"peak_mib": (peak[0] - before) / 2**20, "operator_mib": op.nbytes / 2**20,
            "inputs_mib": (images.nbytes + reward.nbytes) / 2**20}


def probe_in_subprocess(count: int, size: int, operator: str, solver: str) -> Dict[str, float]:
    command = [sys.executable, __file__, "--probe", operator, solver, "--count", str(count),
               "--size", str(size), "--threads", str(torch.get_num_threads())]
    # a fixed mmap threshold: every large tensor is its own mapping, returned when freed, so the
    # resident set follows the live tensors (glibc's dynamic threshold would hide reuse)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="65536")
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def speed(count: int, size: int, n_ref: int, repeats: int) -> None:
    torch.manual_seed(0)
    images = load_images(count, size)
    reward = make_reward(images)
    batch, channels, height, width = reward.shape
    print(f"# IProp propagation: {batch} images of {height}x{width}, {channels} channels, "
          f"gamma {GAMMA}, tol {TOL}, radius 1 (K=9), sigma_c 0.1; torch threads "
          f"{torch.get_num_threads()}, device cpu")
    print("# times are the best of repeated runs; the machine may be shared\n")

    rows: List[Tuple[str, float, int, float]] = []
    for operator in ("stencil", "csr"):
        for solver in ("cg", "value_iteration"):
            out: Dict[str, object] = {}

            def full() -> None:
                out["result"] = propagate(reward, images, gamma=GAMMA, tol=TOL, solver=solver,
                                          operator=operator, return_info=True)

            seconds = best_time(full, repeats)
            info = out["result"][1]
            rows.append((f"{operator} + {solver}", seconds, info.iterations,
                         float(info.error_bound.max())))
    stencil = build(images, "stencil")
    ref_seconds, ref_diff = scipy_reference(stencil, reward, n_ref)
    ours = rows[0][1]
    print("| configuration (graph build + solve) | seconds, all images | iterations | "
          "error bound / max|R| |")
    print("|---|---|---|---|")
    for name, seconds, iterations, bound in rows:
        print(f"| {name} | {seconds:.3f} | {iterations} | {bound:.1e} |")
    print(f"| scipy spsolve, per image x {batch} (measured on {n_ref} image(s), scaled) | "
          f"{ref_seconds * batch:.3f} | direct | max diff to ours {ref_diff:.1e} |")
    print(f"\nstencil + CG vs per-image spsolve: {ref_seconds * batch / ours:.1f}x faster "
          f"(target >= 10x)")
    print(f"stencil vs CSR (CG): CSR takes {rows[2][1] / ours:.2f}x the time of the stencil")
    print(f"CG vs value iteration (stencil): VI takes {rows[1][1] / ours:.2f}x the time of CG\n")

    pixels = batch * height * width
    vi_floats = (9 + 1) * pixels + 3 * channels * pixels  # weights, degree; read V, R; write V
    cg_floats = (9 + 1) * pixels + 12 * channels * pixels  # weights, degree; ~12 vector passes
    reference_vi = stream_add(vi_floats, repeats)
    reference_cg = stream_add(cg_floats, repeats)
    print("| per iteration | seconds | floats touched (minimum) | memory-bound reference "
          "c = a + b on as many floats | ratio |")
    print("|---|---|---|---|---|")
    for name, op in (("stencil", stencil), ("csr", build(images, "csr"))):
        for solver, floats, reference in (("value_iteration", vi_floats, reference_vi),
                                          ("cg", cg_floats, reference_cg)):
            seconds = per_iteration(op, reward, solver, repeats)
            print(f"| {name} + {solver} | {seconds * 1e3:.2f} ms | {floats / 1e6:.1f} M | "
                  f"{reference * 1e3:.2f} ms | {seconds / reference:.1f}x |")
    print("\n(target: stencil + value_iteration within 4x of the reference)\n")

    print("| peak memory (fresh process, RSS) | added by propagate | operator tensors | "
          "images + reward |")
    print("|---|---|---|---|")
    for operator, solver in (("stencil", "cg"), ("stencil", "value_iteration"), ("csr", "cg")):
        probe = probe_in_subprocess(count, size, operator, solver)
        print(f"| {operator} + {solver} | {probe['peak_mib']:.0f} MiB | "
              f"{probe['operator_mib']:.0f} MiB | {probe['inputs_mib']:.0f} MiB |")


def ablation(n_images: int, stage: int = 1) -> None:
    """gamma / sigma_c / radius of IProp(Saliency) and IProp(IG) on the stamp benchmark.

    Stage 1 varies one option at a time around gamma 0.9, sigma_c 0.1, radius 1; stage 2
    revisits sigma_c and radius at gamma 0.99 (stage 1's best gamma) and tries gamma 0.999.
    """
    from captum_ext.benchmark.methods import captum_builtin, iprop
    from captum_ext.benchmark.registry import MethodSpec, register_method
    from captum_ext.benchmark.runner import BenchmarkConfig, run_benchmark

    if stage == 1:
        grid = [dict(gamma=0.9)]
        grid += [dict(gamma=g) for g in (0.5, 0.8, 0.95, 0.99)]
        grid += [dict(gamma=0.9, sigma_c=s) for s in (0.03, 0.3, float("inf"))]
        grid += [dict(gamma=0.9, radius=r) for r in (2, 3)]
    else:
        grid = [dict(gamma=0.99), dict(gamma=0.999)]
        grid += [dict(gamma=0.99, sigma_c=s) for s in (0.05, 0.3)]
        grid += [dict(gamma=0.99, radius=2)]
    names = []
    for base in ("Saliency", "IntegratedGradients"):
        names.append(base)
        for options in grid:
            label = ", ".join(f"{k}={v}" for k, v in options.items())
            name = f"IProp({base}) [{label}]"
            builder = iprop.BUILDERS[base]
            register_method(MethodSpec(
                name, lambda model, b=builder, o=options: b(model, **o), default=False,
                group="iprop-ablation"))
            names.append(name)
    assert captum_builtin  # the base rows are registered by importing it
    result = run_benchmark(BenchmarkConfig(n_images=n_images, methods=names, progress=False,
                                           out_dir="benchmark_out/iprop_ablation"))
    print(f"# IProp ablation (stage {stage}) on the stamp benchmark, {n_images} images; options "
          f"not named: sigma_c 0.1, radius 1, sigma_s 1.0, rgb, CG, tol 1e-4")
    print(result.markdown())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 images of 112x112")
    parser.add_argument("--ablation", action="store_true", help="stamp-benchmark ablation")
    parser.add_argument("--n-images", type=int, default=32, help="images for --ablation")
    parser.add_argument("--stage", type=int, default=1, choices=(1, 2), help="ablation grid")
    parser.add_argument("--n-ref", type=int, default=2, help="images solved by scipy")
    parser.add_argument("--repeats", type=int, default=2, help="timing repeats (best kept)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--probe", nargs=2, metavar=("OPERATOR", "SOLVER"), help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=16, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=224, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.probe:
        print(json.dumps(memory_probe(args.count, args.size, *args.probe)))
    elif args.ablation:
        ablation(args.n_images, args.stage)
    elif args.quick:
        speed(count=4, size=112, n_ref=1, repeats=1)
    else:
        speed(count=16, size=224, n_ref=args.n_ref, repeats=args.repeats)


if __name__ == "__main__":
    main()
