"""``captum-ext evaluate``: the command line of :mod:`captum_ext.evaluate`.

Examples::

    captum-ext evaluate --data images/ --masks masks/ --model torchvision:resnet18 \\
        --weights resnet18.pth --resize 224 --mean imagenet \\
        --methods Saliency IntegratedGradients "IProp(Saliency)" --reference Saliency --out out/
    captum-ext evaluate ... --resume          # after an interruption: nothing written is recomputed

Every user error (a bad path, an unreadable image, a mask of the wrong size, an unknown method,
metric or option) prints one line ``captum-ext: error: ...`` and exits with code 2 before the
first image is explained.
"""

import argparse
import sys
from typing import Any, List, Optional

from captum_ext.evaluate.config import DEFAULT_METHODS, EvalConfig, load_options_file, merge_options

__all__ = ["add_parser", "build_parser", "config_from_args", "main", "run_command"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _inpainter(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``evaluate`` options to ``parser``."""
    data = parser.add_argument_group("data")
    data.add_argument("--preset", choices=["stamp", "stamp-resnet18"],
                      help="built-in data and model instead of --data/--model: stamp = the stamp benchmark's "
                           "held-out images, masks and classifier (--max-images, default 32); "
                           "stamp-resnet18 = the same with the ResNet-18 stamp classifier")
    data.add_argument("--data", help="image folder: ImageFolder layout (a sub-folder per class) or flat with --labels")
    data.add_argument("--labels", help="CSV file,label for a flat folder")
    truth = data.add_mutually_exclusive_group()
    truth.add_argument("--masks", help="folder of PNG masks with the images' relative names (non-zero = object)")
    truth.add_argument("--boxes", help="CSV file,x0,y0,x1,y1 (pixels of the original image; several rows per image)")
    data.add_argument("--resize", type=_positive_int, help="resize the shorter side to this many pixels")
    data.add_argument("--crop", type=_positive_int, help="centre crop of this side")
    data.add_argument("--mean", help="normalisation mean: comma-separated numbers or a preset (imagenet)")
    data.add_argument("--std", help="normalisation std: comma-separated numbers (default: the preset's)")
    data.add_argument("--max-images", type=_positive_int, help="evaluate only the first N images")
    model = parser.add_argument_group("model")
    model.add_argument("--model", help="torchvision:NAME, package.module:factory or a TorchScript file")
    model.add_argument("--weights", help="state dict file (loaded with weights_only=True); nothing is downloaded")
    model.add_argument("--num-classes", type=_positive_int, help="num_classes of the model builder")
    model.add_argument("--trust-pickle", action="store_true",
                       help="allow --model to be a whole pickled model (unpickling runs code from the file)")
    run = parser.add_argument_group("methods and metrics")
    run.add_argument("--methods", nargs="+", help=f"registered method names (default: {' '.join(DEFAULT_METHODS)})")
    run.add_argument("--metrics", nargs="+",
                     help="metric columns (default: deletion insertion road, localization with ground truth; "
                          "opt-in: morf lerf infidelity sensitivity_max)")
    run.add_argument("--config", help="TOML file of per-method options ([IProp] gamma = 0.9)")
    run.add_argument("--option", action="append", default=[], metavar="METHOD.KEY=VALUE",
                     help="a per-method option, e.g. IProp.gamma=0.9 (repeatable; wins over --config)")
    run.add_argument("--target", choices=["label", "predicted"], default="label",
                     help="class explained and scored (default: the label)")
    run.add_argument("--inpainter", type=_inpainter, default=None,
                     help="fill of removed pixels in deletion / insertion: a number or an inpainter name")
    run.add_argument("--signed", action="store_true", help="rank pixels by the signed map instead of |map|")
    run.add_argument("--reference", help="method the others are compared to (paired difference, Wilcoxon p)")
    run.add_argument("--list", action="store_true", help="list methods and metrics, then exit")
    exe = parser.add_argument_group("execution")
    exe.add_argument("--out", default="evaluate_out", help="output folder (default evaluate_out)")
    exe.add_argument("--resume", action="store_true", help="continue a run in --out; nothing written is recomputed")
    exe.add_argument("--batch-size", type=_positive_int, default=16, help="images per written batch (default 16)")
    exe.add_argument("--batch-methods", action="store_true",
                     help="explain and score a batch of images in one call for the methods that allow it (Saliency, "
                          "IntegratedGradients, ...): faster on a GPU, and on a CPU only with a small "
                          "--max-examples-per-batch (e.g. 32); their values then depend on the batching by float "
                          "rounding (default: one image per call, rows bit-identical whatever the batching)")
    exe.add_argument("--max-examples-per-batch", type=_positive_int, default=256,
                     help="perturbed images per forward in the metrics (default 256; on a CPU with "
                          "--batch-methods 32 is faster, docs/evaluation.md)")
    exe.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    exe.add_argument("--seed", type=int, default=0, help="seed of every per-image draw (default 0)")
    exe.add_argument("--grid-images", type=int, default=4, help="images in the map grid (default 4)")
    exe.add_argument("--n-resamples", type=_positive_int, default=9999, help="bootstrap resamples (default 9999)")
    exe.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``evaluate`` on the sub-parsers of ``captum-ext``."""
    parser = commands.add_parser("evaluate", help="evaluate methods on any classifier and image folder")
    return add_arguments(parser)


def build_parser() -> argparse.ArgumentParser:
    return add_arguments(argparse.ArgumentParser(prog="captum-ext evaluate"))


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    """An :class:`EvalConfig` from parsed arguments (reads ``--config``; may raise ValueError)."""
    file_options = load_options_file(args.config) if args.config else None
    return EvalConfig(
        data=args.data or "", model=args.model or "", out=args.out, labels=args.labels, masks=args.masks,
        boxes=args.boxes, resize=args.resize, crop=args.crop, mean=args.mean, std=args.std, weights=args.weights,
        trust_pickle=args.trust_pickle, num_classes=args.num_classes, methods=args.methods, metrics=args.metrics,
        options=merge_options(file_options, args.option), target=args.target, batch_size=args.batch_size,
        max_examples_per_batch=args.max_examples_per_batch, inpainter=args.inpainter, abs=not args.signed,
        device=args.device, seed=args.seed, max_images=args.max_images, grid_images=args.grid_images,
        reference=args.reference, resume=args.resume, progress=not args.no_progress, batch_methods=args.batch_methods,
    )


def _list() -> None:
    from captum_ext.benchmark.registry import available_methods
    from captum_ext.evaluate.columns import available_columns

    print("methods (* = run by default):")
    for spec in available_methods().values():
        print(f"  {'*' if spec.name in DEFAULT_METHODS else ' '} {spec.name:32s} [{spec.group}] {spec.description}")
    print("metrics (* = computed by default):")
    for column in available_columns().values():
        mark = "*" if column.default else " "
        note = " (needs masks)" if column.needs_masks else ""
        print(f"  {mark} {column.name:18s} -> {', '.join(column.values)}{note}")


def _error(message: str) -> int:
    print(f"captum-ext: error: {message}", file=sys.stderr)
    return 2


def run_command(args: argparse.Namespace) -> int:
    """Run ``evaluate`` from parsed arguments; the return value is the exit code."""
    from captum_ext.evaluate.runner import build_job, check_out_dir, run_indices
    from captum_ext.evaluate.summary import summarize

    if args.list:
        _list()
        return 0
    try:
        config = config_from_args(args)
        dataset = model = None
        if args.preset is not None:
            if config.data or config.model:
                return _error("--preset replaces --data and --model; give one or the other")
            check_out_dir(config.out, config.resume, config)
            from captum_ext.evaluate.presets import load_preset

            dataset, model = load_preset(args.preset, config)
        elif not config.data:
            return _error("--data is required (or --preset stamp)")
        elif not config.model:
            return _error("--model is required")
        check_out_dir(config.out, config.resume, config)
        job = build_job(config, dataset=dataset, model=model)
    except (ValueError, TypeError) as error:
        return _error(str(error).splitlines()[0] if str(error) else type(error).__name__)
    try:
        run_indices(job, job.indices, config.out, resume=config.resume, rank=0)
    except KeyboardInterrupt:
        print(f"\ninterrupted: rows written so far are in {config.out}/rows; rerun with --resume", file=sys.stderr)
        return 130
    except ValueError as error:  # e.g. an image whose header reads but whose data does not
        return _error(f"{str(error).splitlines()[0]} (rows written so far are kept; fix it and rerun with --resume)")
    summary = summarize(config.out, reference=config.reference, n_resamples=args.n_resamples, seed=config.seed)
    print(summary.markdown())
    print("wrote " + ", ".join(str(p) for p in summary.paths.values()))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """``captum-ext evaluate ...`` as a function (argv without the sub-command)."""
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
