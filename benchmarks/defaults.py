"""Re-run the benchmark choices of captum-ext's "chosen here" defaults on one stamp classifier.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/defaults.py --model resnet18 --images 32``
(``--model stampnet|resnet18``; ``--options sparsity iprop ...`` for a subset; ``--quick`` for a
4-image smoke run). Every value of an option is run on the same held-out, correctly classified
stamped images of the built-in stamp benchmark (``captum_ext.benchmark.runner.held_out_images``,
seed 0), its maps scored with the benchmark's registered metrics (``|map|``, as the benchmark
does by default), and one table is printed per option: the value, each metric's mean with its
95% percentile-bootstrap interval, and, for every value other than the current default, the
mean paired difference to the default (same images) with its interval and the two-sided
Wilcoxon signed-rank p-value (:mod:`captum_ext.metrics.statistics`).

The options (``OPTIONS``), each "chosen here" default that a benchmark chose (docs/defaults.md):

- ``sparsity``: ``PathwayGradient`` sparsity, 0.95 (default) against the authors' 0.85 and
  0.9 / 0.98 (docs/pruning.md).
- ``iprop-saliency`` / ``iprop-ig``: IProp's ``gamma`` (0.99), ``sigma_c`` (0.1) and ``radius``
  (1), one at a time around the defaults, over Captum ``Saliency`` (``abs=True``) and
  ``IntegratedGradients`` (32 steps, black baseline), the two registered IProp rows
  (docs/iprop.md). The base map is computed once and propagated with
  :func:`captum_ext.attr.propagate` over the min-max-scaled images, which is what
  ``IProp(base).attribute`` does.
- ``neflag-sampling``: NeFLAG ``sampling`` x ``aggregation`` (default descent / vector);
  ``neflag-n-eps``: ``n`` (20) and ``eps`` (0.1) at the default sampling (docs/neflag.md).
- ``mp``: Meaningful Perturbation's fill (``"blur"``, the original method) and, with the
  harmonic fill, its straight-through proxy ``st_proxy`` (``"mean"``), 150 steps as in the
  benchmark's MP rows (docs/inpainting.md).
- ``occlusion-inpainter``: the default fill of the ``Inpainting*`` classes (``"harmonic"``)
  against Captum's black baseline and the other cheap inpainters, on the benchmark's Occlusion
  setting (8 x 8 window, stride 4).
- ``feature-ablation-inpainter``: the same fills on ``InpaintingFeatureAblation`` over the SLIC
  superpixels of the benchmark's Lime rows (50 segments, compactness 30, sigma 1): holes of
  whole superpixels (about 80 pixels each at 64 x 64) instead of 8 x 8 windows;
  ``lime-inpainter``: the same on ``InpaintingLime`` as the benchmark's ``Lime(inpaint)`` row
  (200 samples, each removing a random subset of the superpixels: large holes);
  ``kernel-shap-inpainter`` (200 samples) and ``shapley-inpainter`` (4 permutations) the same
  on ``InpaintingKernelShap`` and ``InpaintingShapleyValueSampling``.

Metrics (``--metrics``, any registered benchmark metric): by default the ground-truth
``stamp_distance`` (lower is better) and ``relevance_mass``, and the faithfulness columns
``deletion`` and ``insertion_minus_deletion`` (16 steps, harmonic fill of removed pixels;
``--perturbation-steps 64`` for curves fine enough to tell maps that find the 144-pixel stamp
apart: at 16 steps the first step already removes 256 pixels). Results: ``docs/defaults.md``.
"""

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

#: Architectures of the built-in stamp benchmark (``captum_ext.data.classifier.ARCHITECTURES``).
MODELS = ("stampnet", "resnet18")
DEFAULT_METRICS = ("stamp_distance", "relevance_mass", "deletion", "insertion_minus_deletion")
#: Meaningful Perturbation steps, as the benchmark's MP rows (the method's default is 300).
MP_STEPS = 150
#: Permutations of ``ShapleyValueSampling`` over the 50 superpixels (51 forwards each).
SHAPLEY_PERMUTATIONS = 4


@dataclass
class Context:
    """What every candidate gets: the model, the images, the batching, a cache of base maps."""

    model: nn.Module
    images: Tensor
    labels: Tensor
    batch_size: int
    cache: Dict[str, Tensor] = field(default_factory=dict)

    def batched(self, explain: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
        """Maps of every image, ``batch_size`` images per call."""
        out = []
        for lo in range(0, self.images.shape[0], self.batch_size):
            hi = lo + self.batch_size
            out.append(explain(self.images[lo:hi], self.labels[lo:hi]).detach())
        return torch.cat(out)


@dataclass
class Option:
    """One default under test: its values (label -> how to make the maps) and which is default."""

    name: str
    description: str
    default: str
    values: Dict[str, Callable[[Context], Tensor]]
    #: Image count used when ``--images`` is not given for this option (cost-bound options).
    max_images: Optional[int] = None


# ---------------------------------------------------------------------------------------------
# candidates


def _pathway(sparsity: float, ctx: Context) -> Tensor:
    from captum_ext.attr import PathwayGradient

    method = PathwayGradient(ctx.model, sparsity=sparsity)
    return ctx.batched(lambda x, t: method.attribute(x, target=t))


def _base(name: str, ctx: Context) -> Tensor:
    """The base map of an IProp row (computed once per run), as the registered rows do."""
    if name not in ctx.cache:
        from captum.attr import IntegratedGradients, Saliency

        from captum_ext.benchmark.methods.captum_builtin import IG_STEPS, INTERNAL_BATCH_SIZE

        if name == "Saliency":
            sal = Saliency(ctx.model)
            ctx.cache[name] = ctx.batched(lambda x, t: sal.attribute(x, target=t, abs=True))
        else:
            ig = IntegratedGradients(ctx.model)
            ctx.cache[name] = ctx.batched(lambda x, t: ig.attribute(
                x, target=t, baselines=0.0, n_steps=IG_STEPS, internal_batch_size=INTERNAL_BATCH_SIZE))
    return ctx.cache[name]


def _iprop(base: str, settings: Dict[str, float], ctx: Context) -> Tensor:
    from captum_ext.attr import propagate
    from captum_ext.propagate import min_max_scale

    maps = _base(base, ctx)
    if not settings:  # the base method itself (no propagation), for reference
        return maps
    kwargs = {k: (int(v) if k == "radius" else v) for k, v in settings.items()}
    return propagate(maps, guide=min_max_scale(ctx.images), **kwargs)  # type: ignore[arg-type]


def _neflag(settings: Dict[str, object], ctx: Context) -> Tensor:
    from captum_ext.attr import NeFLAG
    from captum_ext.benchmark.methods.neflag import INTERNAL_BATCH_SIZE, SEED

    method = NeFLAG(ctx.model)
    return ctx.batched(lambda x, t: method.attribute(
        x, target=t, generator=SEED, internal_batch_size=INTERNAL_BATCH_SIZE, **settings))


def _mp(inpainter: str, st_proxy: Optional[str], ctx: Context) -> Tensor:
    from captum_ext.attr import MeaningfulPerturbation

    method = MeaningfulPerturbation(ctx.model, inpainter=inpainter)
    extra = {} if st_proxy is None else {"st_proxy": st_proxy}
    return ctx.batched(lambda x, t: method.attribute(x, target=t, n_iter=MP_STEPS, seed=0, **extra))


def _occlusion(inpainter: object, ctx: Context) -> Tensor:
    from captum_ext.attr import InpaintingOcclusion
    from captum_ext.benchmark.methods.captum_builtin import OCCLUSION_STRIDE, OCCLUSION_WINDOW

    method = InpaintingOcclusion(ctx.model, inpainter=inpainter)
    return ctx.batched(lambda x, t: method.attribute(
        x, target=t, sliding_window_shapes=OCCLUSION_WINDOW, strides=OCCLUSION_STRIDE,
        baselines=0.0, perturbations_per_eval=64))


def _superpixels(images: Tensor) -> Tensor:
    """The SLIC feature masks of the benchmark's Lime rows (50 segments, compactness 30, sigma 1)."""
    from captum_ext.attr.feature_masks import slic_feature_mask
    from captum_ext.benchmark.methods.inpainting import LIME_COMPACTNESS, LIME_SEGMENTS, LIME_SIGMA

    return slic_feature_mask(images, LIME_SEGMENTS, LIME_COMPACTNESS, LIME_SIGMA)


def _feature_ablation(inpainter: object, ctx: Context) -> Tensor:
    from captum_ext.attr import InpaintingFeatureAblation

    method = InpaintingFeatureAblation(ctx.model, inpainter=inpainter)
    return ctx.batched(lambda x, t: method.attribute(
        x, target=t, feature_mask=_superpixels(x), baselines=0.0, perturbations_per_eval=64))


def _lime(inpainter: object, ctx: Context) -> Tensor:
    from captum_ext._compat import SkLearnRidge
    from captum_ext.attr import InpaintingLime
    from captum_ext.attr.inpainting import binary_cosine_similarity
    from captum_ext.benchmark.methods.inpainting import LIME_SAMPLES

    method = InpaintingLime(ctx.model, SkLearnRidge(alpha=1.0), binary_cosine_similarity(0.25),
                            inpainter=inpainter)
    return ctx.batched(lambda x, t: method.attribute(
        x, target=t, feature_mask=_superpixels(x),
        baselines=0.0, n_samples=LIME_SAMPLES, perturbations_per_eval=50))


def _kernel_shap(inpainter: object, ctx: Context) -> Tensor:
    from captum_ext.attr import InpaintingKernelShap
    from captum_ext.benchmark.methods.inpainting import LIME_SAMPLES

    method = InpaintingKernelShap(ctx.model, inpainter=inpainter)
    return ctx.batched(lambda x, t: method.attribute(
        x, target=t, feature_mask=_superpixels(x),
        baselines=0.0, n_samples=LIME_SAMPLES, perturbations_per_eval=50))


def _shapley(inpainter: object, ctx: Context) -> Tensor:
    from captum_ext.attr import InpaintingShapleyValueSampling

    method = InpaintingShapleyValueSampling(ctx.model, inpainter=inpainter)
    return ctx.batched(lambda x, t: method.attribute(
        x, target=t, feature_mask=_superpixels(x),
        baselines=0.0, n_samples=SHAPLEY_PERMUTATIONS, perturbations_per_eval=64))


def _fill_option(name: str, description: str, make: Callable[[object, Context], Tensor],
                 max_images: Optional[int] = None) -> Option:
    """The ``Inpainting*`` fills on one method: the reference ``"harmonic"`` (every class's
    default before these runs), Captum's black baseline and the cheap inpainters."""
    fills = (("harmonic", "harmonic"), ("black (Captum)", 0.0), ("pull_push", "pull_push"),
             ("blur", "blur"), ("mean", "mean"))
    return Option(name, description, "harmonic",
                  {label: partial(make, fill) for label, fill in fills}, max_images=max_images)


def _iprop_option(base: str, short: str) -> Option:
    values: Dict[str, Callable[[Context], Tensor]] = {f"{base} (no IProp)": partial(_iprop, base, {})}
    grid: List[Tuple[str, Dict[str, float]]] = [
        ("gamma=0.99, sigma_c=0.1, radius=1", {}),
        ("gamma=0.9", {"gamma": 0.9}),
        ("gamma=0.95", {"gamma": 0.95}),
        ("gamma=0.999", {"gamma": 0.999}),
        ("sigma_c=0.05", {"sigma_c": 0.05}),
        ("sigma_c=0.3", {"sigma_c": 0.3}),
        ("radius=2", {"radius": 2}),
    ]
    defaults = {"gamma": 0.99, "sigma_c": 0.1, "radius": 1}
    for label, change in grid:
        values[label] = partial(_iprop, base, {**defaults, **change})
    return Option(f"iprop-{short}", f"IProp({base}): gamma, sigma_c, radius, one at a time",
                  "gamma=0.99, sigma_c=0.1, radius=1", values)


def _neflag_values(grid: Sequence[Tuple[str, Dict[str, object]]]) -> Dict[str, Callable[[Context], Tensor]]:
    return {label: partial(_neflag, settings) for label, settings in grid}


OPTIONS: Dict[str, Option] = {
    "sparsity": Option(
        "sparsity", "PathwayGradient sparsity (0.85 = authors' code, preset 'paper')", "0.95",
        {f"{s}": partial(_pathway, s) for s in (0.0, 0.85, 0.9, 0.95, 0.98)}),
    "iprop-saliency": _iprop_option("Saliency", "saliency"),
    "iprop-ig": _iprop_option("IntegratedGradients", "ig"),
    "neflag-sampling": Option(
        "neflag-sampling", "NeFLAG sampling / aggregation (n=20, eps=0.1)", "descent, vector",
        _neflag_values([
            ("descent, vector", dict(n=20, eps=0.1, sampling="descent", aggregation="vector")),
            ("descent, decomposition", dict(n=20, eps=0.1, sampling="descent", aggregation="decomposition")),
            ("antithetic, decomposition", dict(n=20, eps=0.1, sampling="antithetic", aggregation="decomposition")),
            ("antithetic, vector", dict(n=20, eps=0.1, sampling="antithetic", aggregation="vector")),
            ("flip, decomposition", dict(n=20, eps=0.1, sampling="flip", aggregation="decomposition")),
        ])),
    "neflag-n-eps": Option(
        "neflag-n-eps", "NeFLAG n and eps (descent, vector)", "n=20, eps=0.1",
        _neflag_values([
            ("n=20, eps=0.1", dict(n=20, eps=0.1)),
            ("n=10, eps=0.1", dict(n=10, eps=0.1)),
            ("n=40, eps=0.1", dict(n=40, eps=0.1)),
            ("n=20, eps=0.01", dict(n=20, eps=0.01)),
            ("n=20, eps=1.0", dict(n=20, eps=1.0)),
        ])),
    "mp": Option(
        "mp", f"Meaningful Perturbation fill and st_proxy ({MP_STEPS} steps)", "harmonic, st_proxy=mean",
        {
            "blur": partial(_mp, "blur", None),
            "harmonic, st_proxy=mean": partial(_mp, "harmonic", "mean"),
            "harmonic, st_proxy=blur": partial(_mp, "harmonic", "blur"),
            "harmonic, st_proxy=inpaint": partial(_mp, "harmonic", "inpaint"),
        }, max_images=16),
    "occlusion-inpainter": _fill_option(
        "occlusion-inpainter", "Inpainting* default fill, on Occlusion 8x8 stride 4", _occlusion),
    "feature-ablation-inpainter": _fill_option(
        "feature-ablation-inpainter", "Inpainting* default fill, on FeatureAblation over SLIC superpixels",
        _feature_ablation),
    "lime-inpainter": _fill_option(
        "lime-inpainter", "Inpainting* default fill, on Lime (SLIC superpixels, 200 samples)", _lime),
    "kernel-shap-inpainter": _fill_option(
        "kernel-shap-inpainter", "Inpainting* default fill, on KernelShap (SLIC superpixels, 200 samples)",
        _kernel_shap),
    "shapley-inpainter": _fill_option(
        "shapley-inpainter",
        f"Inpainting* default fill, on ShapleyValueSampling (SLIC superpixels, {SHAPLEY_PERMUTATIONS} permutations)",
        _shapley),
}
#: ``mp``: the reference row is the chosen-here ``st_proxy="mean"`` (harmonic fill); the
#: ``blur`` row is the original method's fill (the class's default ``inpainter``).


# ---------------------------------------------------------------------------------------------
# arguments


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse and validate the command line (before any model is loaded)."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/defaults.py",
        description="Re-run the benchmark choices of captum-ext's defaults on one stamp classifier.")
    parser.add_argument("--model", choices=MODELS, default="stampnet",
                        help="stamp classifier: stampnet (default) or resnet18")
    parser.add_argument("--images", type=int, default=None,
                        help="held-out images per option (default 32; 16 for mp)")
    parser.add_argument("--options", nargs="+", default=None, metavar="OPTION",
                        help=f"options to rerun (default all): {', '.join(OPTIONS)}")
    parser.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS), metavar="METRIC",
                        help=f"registered benchmark metrics (default: {' '.join(DEFAULT_METRICS)})")
    parser.add_argument("--batch-size", type=int, default=16, help="images per attribution call")
    parser.add_argument("--perturbation-steps", type=int, default=16,
                        help="steps of the deletion / insertion curves (the benchmark's 16: 256 "
                             "pixels per step on 64 x 64, more than a 12 x 12 stamp)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out images")
    parser.add_argument("--resamples", type=int, default=9999, help="bootstrap resamples")
    parser.add_argument("--json", default=None, help="write the per-image values here")
    parser.add_argument("--quick", action="store_true", help="4 images, to check that it runs")
    args = parser.parse_args(argv)
    if args.images is not None and args.images < 2:
        parser.error(f"--images must be >= 2 (a paired test needs pairs), got {args.images}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.perturbation_steps < 2:
        parser.error(f"--perturbation-steps must be >= 2, got {args.perturbation_steps}")
    if args.resamples < 1:
        parser.error(f"--resamples must be >= 1, got {args.resamples}")
    unknown = [o for o in (args.options or []) if o not in OPTIONS]
    if unknown:
        parser.error(f"unknown option(s) {unknown}; choose from {list(OPTIONS)}")
    from captum_ext.benchmark.registry import available_metrics

    known = available_metrics()
    bad = [m for m in args.metrics if m not in known]
    if bad:
        parser.error(f"unknown metric(s) {bad}; choose from {sorted(known)}")
    if args.options is None:
        args.options = list(OPTIONS)
    if args.quick:
        args.images = 4
    return args


def images_for(option: Option, requested: Optional[int]) -> int:
    """Images of one option: ``--images`` if given, else 32 (or the option's ``max_images``)."""
    if requested is not None:
        return requested
    return option.max_images or 32


# ---------------------------------------------------------------------------------------------
# statistics and tables


def _fmt(x: float) -> str:
    return "nan" if math.isnan(x) else f"{x:.3f}"


def _p(p: float) -> str:
    return "nan" if math.isnan(p) else (f"{p:.1e}" if p < 1e-3 else f"{p:.3f}")


def table(option: Option, values: Dict[str, Dict[str, Tensor]], seconds: Dict[str, float],
          metrics: Sequence[str], lower_is_better: Dict[str, bool], resamples: int) -> str:
    """One Markdown table: value, metric means [95% interval], paired difference vs the default."""
    from captum_ext.metrics.statistics import bootstrap_interval, paired_comparison

    arrows = {m: ("↓" if lower_is_better[m] else "↑") for m in metrics}
    header = (["value"] + [f"{m} {arrows[m]}" for m in metrics]
              + [f"Δ{m} vs default [95%], p" for m in metrics] + ["s/image"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ref = values[option.default]
    for label, per_metric in values.items():
        cells = [f"**{label}** (default)" if label == option.default else label]
        for m in metrics:
            b = bootstrap_interval(per_metric[m], n_resamples=resamples)
            cells.append(f"{_fmt(b.mean)} [{_fmt(b.low)}, {_fmt(b.high)}]")
        for m in metrics:
            if label == option.default:
                cells.append("")
                continue
            c = paired_comparison(per_metric[m], ref[m], n_resamples=resamples)
            cells.append(f"{c.mean_difference:+.3f} [{c.low:+.3f}, {c.high:+.3f}], p {_p(c.p_value)}")
        cells.append(f"{seconds[label]:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# run


def run_option(option: Option, model: nn.Module, n_images: int, args: argparse.Namespace,
               ) -> Tuple[Dict[str, Dict[str, Tensor]], Dict[str, float], int]:
    """Per-image metric values and seconds per image of every value of one option."""
    from captum_ext.benchmark.registry import MetricContext, available_metrics
    from captum_ext.benchmark.runner import held_out_images

    images, labels, masks = held_out_images(model, n_images, args.seed, "cpu")
    ctx = Context(model, images, labels, args.batch_size)
    specs = available_metrics()
    values: Dict[str, Dict[str, Tensor]] = {}
    seconds: Dict[str, float] = {}
    for label, make in option.values.items():
        torch.manual_seed(0)
        start = time.perf_counter()
        maps = make(ctx)
        seconds[label] = (time.perf_counter() - start) / images.shape[0]
        context = MetricContext(model, images, labels, maps, masks,
                                {"abs": True, "perturbation_steps": args.perturbation_steps})
        values[label] = {m: specs[m].fn(context).detach().cpu().double() for m in args.metrics}
        print(f"  {option.name}: {label} done ({seconds[label]:.3f} s/image)", file=sys.stderr, flush=True)
    return values, seconds, int(images.shape[0])


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from captum_ext.benchmark.registry import available_metrics
    from captum_ext.data.classifier import load_stamp_classifier

    lower = {m: available_metrics()[m].lower_is_better for m in args.metrics}
    model = load_stamp_classifier(arch=args.model, progress=False)
    model.eval()
    load = os.getloadavg()[0]
    print(f"# defaults on the stamp benchmark, model {args.model}, seed {args.seed}, "
          f"{args.perturbation_steps} deletion / insertion steps, load average {load:.2f} at start\n")
    dump: Dict[str, object] = {"model": args.model, "seed": args.seed, "options": {}}
    for name in args.options:
        option = OPTIONS[name]
        start = time.perf_counter()
        values, seconds, count = run_option(option, model, images_for(option, args.images), args)
        wall = time.perf_counter() - start
        print(f"## {name}: {option.description}; {count} images, {wall:.0f} s wall, "
              f"load average {os.getloadavg()[0]:.2f}\n")
        print(table(option, values, seconds, args.metrics, lower, args.resamples) + "\n", flush=True)
        dump["options"][name] = {  # type: ignore[index]
            "images": count, "wall_s": wall, "default": option.default,
            "values": {k: {m: v.tolist() for m, v in per.items()} for k, per in values.items()},
            "seconds_per_image": seconds}
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(dump, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
