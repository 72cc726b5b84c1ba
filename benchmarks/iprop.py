"""IProp propagation speed: ours vs scipy spsolve, stencil vs CSR, VI vs CG, memory.

Run: ``PYTHONPATH=. python benchmarks/iprop.py`` (16 images of 224x224, gamma 0.99 and 0.9;
``--quick``: 2 images of 48x48, to check that it runs). Every time is the median of at least 5
alternating repeats (each round runs every configuration once, in turn) and is printed with the
load average; measure on a quiet machine (nothing else running) for figures worth quoting.
``--ablation`` instead runs the gamma / sigma_c / radius ablation on the stamp benchmark.

Guide images: photos shipped with scikit-image (and their mirror images), resized. Reward: an
edge-like stand-in for a 3-channel attribution map, ``|image - blur(image)|`` plus a little
seeded noise (the solvers' cost does not depend on the model that made the map).
"""

import argparse
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from captum_ext.attr.iprop import propagate
from captum_ext.propagate import CSROperator, StencilOperator, solve_mrp

TOL = 1e-4
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


def load_average() -> str:
    """The 1-minute load average, printed beside every figure (a loaded machine skews them)."""
    return f"{os.getloadavg()[0]:.2f}"


def alternating(functions: Dict[str, Callable[[], object]], repeats: int) -> Dict[str, float]:
    """Median wall time of each function over ``repeats`` rounds; each round runs every function
    once, in turn, so a change of machine load hits all of them alike."""
    for function in functions.values():  # warm-up: kernels, allocator, caches
        function()
    times: Dict[str, List[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def build(images: torch.Tensor, operator: str):
    stencil = StencilOperator.from_guide(images)
    return stencil if operator == "stencil" else CSROperator.from_stencil(stencil)


def scipy_system(op: StencilOperator, index: int, gamma: float):
    """``I - gamma P`` of image ``index`` as a scipy CSC matrix (assembly is not timed)."""
    import scipy.sparse as sp

    single = CSROperator.from_stencil(StencilOperator(op.weights[index : index + 1])).matrix
    n = single.shape[0]
    weights = sp.csr_matrix(
        (single.values().double().numpy(), single.col_indices().numpy(),
         single.crow_indices().numpy()), shape=(n, n))
    degree = np.asarray(weights.sum(axis=1)).ravel()
    return (sp.identity(n, format="csc") - gamma * sp.diags(1.0 / degree) @ weights).tocsc()


def scipy_solve(system, reward: torch.Tensor, index: int) -> torch.Tensor:
    """``spsolve`` of one image, all channels as one multi-right-hand-side solve."""
    from scipy.sparse.linalg import spsolve

    channels, height, width = reward.shape[1:]
    rhs = reward[index].permute(1, 2, 0).reshape(height * width, channels).double().numpy()
    solution = spsolve(system, rhs)
    return torch.from_numpy(solution).float().view(height, width, channels).permute(2, 0, 1)


def stream_add(floats: int) -> Callable[[], object]:
    """The memory-bound reference: ``c = a + b`` over ``floats`` floats in all (a, b, c)."""
    a = torch.rand(floats // 3)
    b, c = torch.rand_like(a), torch.empty_like(a)
    return lambda: torch.add(a, b, out=c)


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
    propagate(reward, images, gamma=0.99, tol=TOL, solver=solver, operator=operator)
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


def _propagate_call(infos: Dict[str, Any], name: str, reward: torch.Tensor, images: torch.Tensor,
                    gamma: float, options: Dict[str, str]) -> Callable[[], object]:
    """``propagate`` with ``options``, graph build included; keeps its diagnostics in ``infos``."""
    def call() -> None:
        infos[name] = propagate(reward, images, gamma=gamma, tol=TOL, return_diagnostics=True,
                                **options)[1]
    return call


def speed(count: int, size: int, repeats: int, gammas: Tuple[float, ...]) -> None:
    torch.manual_seed(0)
    images = load_images(count, size)
    reward = make_reward(images)
    batch, channels, height, width = reward.shape
    print(f"# IProp propagation: {batch} images of {height}x{width}, {channels} channels, tol "
          f"{TOL}, radius 1 (K=9), sigma_c 0.1; torch threads {torch.get_num_threads()}, cpu")
    print(f"# every figure: median of {repeats} alternating repeats; `load` is the 1-minute load "
          "average when it was taken (figures from a loaded machine are not comparable)\n")
    stencil = build(images, "stencil")

    for gamma in gammas:
        print(f"## gamma {gamma}\n")
        configs = {
            "stencil + CG (Jacobi, default)": dict(solver="cg", preconditioner="jacobi"),
            "stencil + CG (multigrid V-cycle)": dict(solver="cg", preconditioner="multigrid"),
            "stencil + value iteration": dict(solver="value_iteration"),
            "CSR + CG (Jacobi)": dict(solver="cg", operator="csr"),
        }
        infos: Dict[str, Any] = {}
        system = scipy_system(stencil, 0, gamma)
        functions = {name: _propagate_call(infos, name, reward, images, gamma, options)
                     for name, options in configs.items()}
        functions["scipy"] = functools.partial(scipy_solve, system, reward, 0)
        medians = alternating(functions, repeats)
        load = load_average()
        ours, _ = solve_mrp(StencilOperator(stencil.weights[:1]), reward[:1], gamma, "cg", TOL)
        theirs = scipy_solve(system, reward, 0)
        difference = float((theirs - ours[0]).abs().max() / reward[0].abs().max())
        scipy_all = medians["scipy"] * batch
        print("| configuration (graph build + solve) | seconds, all images | iterations | "
              "speed-up over per-image spsolve (its time / ours) | load |")
        print("|---|---|---|---|---|")
        for name in configs:
            info = infos[name]
            print(f"| {name} | {medians[name]:.3f} | {info.iterations} | "
                  f"{scipy_all / medians[name]:.1f}x | {load} |")
        print(f"| scipy spsolve of the same system, per image (image 0 timed, x {batch}; "
              f"assembly not timed) | {scipy_all:.3f} | direct | 1x | {load} |")
        print(f"\nmax |spsolve - ours| / max|R| on image 0: {difference:.1e}; target at gamma "
              "0.99: stencil + CG >= 10x faster than spsolve\n")

    pixels = batch * height * width
    vi_floats = (9 + 1) * pixels + 3 * channels * pixels  # weights, degree; read V, R; write V
    cg_floats = (9 + 1) * pixels + 12 * channels * pixels  # weights, degree; ~12 vector passes
    print("| per iteration (gamma 0.99) | time | floats touched (minimum) | c = a + b on as "
          "many floats | ratio | load |")
    print("|---|---|---|---|---|---|")
    for name, op in (("stencil", stencil), ("csr", build(images, "csr"))):
        for solver, floats in (("value_iteration", vi_floats), ("cg", cg_floats)):
            def steps(n: int, o=op, sv=solver) -> Callable[[], object]:
                return lambda: solve_mrp(o, reward, 0.99, sv, tol=0.0, max_iter=n, warn=False)

            medians = alternating({"long": steps(40), "short": steps(10),
                                   "reference": stream_add(floats)}, repeats)
            per_step = max(medians["long"] - medians["short"], 0.0) / 30
            print(f"| {name} + {solver} | {per_step * 1e3:.2f} ms | {floats / 1e6:.1f} M | "
                  f"{medians['reference'] * 1e3:.2f} ms | {per_step / medians['reference']:.1f}x "
                  f"| {load_average()} |")
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
    parser.add_argument("--quick", action="store_true",
                        help="a quick check that the script runs: 2 images of 48x48, 5 repeats")
    parser.add_argument("--ablation", action="store_true", help="stamp-benchmark ablation")
    parser.add_argument("--n-images", type=int, default=32, help="images for --ablation")
    parser.add_argument("--stage", type=int, default=1, choices=(1, 2), help="ablation grid")
    parser.add_argument("--repeats", type=int, default=5,
                        help="alternating timing repeats, median kept (at least 5)")
    parser.add_argument("--gammas", type=float, nargs="+", default=[0.99, 0.9],
                        help="gammas of the spsolve comparison")
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
        speed(count=2, size=48, repeats=max(5, args.repeats), gammas=tuple(args.gammas))
    else:
        if args.repeats < 5:
            parser.error("--repeats must be at least 5")
        speed(count=16, size=224, repeats=args.repeats, gammas=tuple(args.gammas))


if __name__ == "__main__":
    main()
