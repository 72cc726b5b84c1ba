"""``captum-ext`` command line: ``captum-ext benchmark`` runs the stamp benchmark,
``captum-ext sanity`` the cascading randomisation check of the registered methods."""

import argparse
import sys
from typing import List, Optional

from captum_ext.benchmark.registry import available_methods, available_metrics
from captum_ext.benchmark.runner import BenchmarkConfig, run_benchmark, write_outputs
from captum_ext.evaluate import cli as evaluate_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="captum-ext", description="captum-ext command line")
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser("benchmark", help="run the stamp benchmark (trains the classifier once)")
    bench.add_argument("--n-images", type=int, default=32, help="held-out stamped images (default 32)")
    bench.add_argument("--methods", nargs="+", default=None, help="method names (default: the default set)")
    bench.add_argument("--metrics", nargs="+", default=None, help="metric names (default: the default set)")
    bench.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    bench.add_argument("--out", default="benchmark_out", help="output folder (default benchmark_out)")
    bench.add_argument("--seed", type=int, default=0, help="seed of the held-out images (default 0)")
    bench.add_argument("--batch-size", type=int, default=16, help="images per attribution call")
    bench.add_argument("--signed", action="store_true", help="score signed maps instead of |map|")
    bench.add_argument("--retrain", action="store_true", help="retrain the classifier, ignoring the cache")
    bench.add_argument("--no-progress", action="store_true", help="no progress bars")
    bench.add_argument("--list", action="store_true", help="list the registered methods and metrics, then exit")
    bench.add_argument(
        "--filler", default=None,
        help="what replaces removed pixels in the deletion / insertion columns: a number or an inpainter "
             "name (harmonic, blur, noise, constant, ...); default harmonic when available, else 0",
    )
    sanity = commands.add_parser("sanity", help="cascading model-parameter randomisation of the registered methods")
    sanity.add_argument("--n-images", type=int, default=16, help="held-out stamped images (default 16)")
    sanity.add_argument("--methods", nargs="+", default=None, help="method names (default: the default set)")
    sanity.add_argument("--mode", choices=["cascading", "independent"], default="cascading",
                        help="randomise layers cumulatively from the top (default) or one at a time")
    sanity.add_argument("--std", type=float, default=0.1, help="std of the N(0, std^2) re-draw (default 0.1)")
    sanity.add_argument("--layers", nargs="+", default=None,
                        help="module names in randomisation order (default: every parameter-owning module, top first)")
    sanity.add_argument("--threshold", type=float, default=0.5,
                        help="a method passes when its mean Spearman-abs is below this (default 0.5)")
    sanity.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    sanity.add_argument("--out", default="benchmark_out", help="output folder (default benchmark_out)")
    sanity.add_argument("--seed", type=int, default=0, help="seed of the images and the re-draw (default 0)")
    sanity.add_argument("--batch-size", type=int, default=16, help="images per attribution call")
    sanity.add_argument("--retrain", action="store_true", help="retrain the classifier, ignoring the cache")
    sanity.add_argument("--no-progress", action="store_true", help="no progress bars")
    evaluate_cli.add_parser(commands)
    return parser


def _parse_filler(text: Optional[str]) -> Optional[object]:
    """A number, or an inpainter name checked now (so a typo fails before any work)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    from captum_ext.metrics.perturbation import resolve_filler

    resolve_filler(text)  # raises ValueError for an unknown name
    return text


def _list() -> None:
    print("methods (* = run by default):")
    for spec in available_methods().values():
        print(f"  {'*' if spec.default else ' '} {spec.name:32s} [{spec.group}] {spec.description}")
    print("metrics (* = computed by default):")
    for spec in available_metrics().values():
        print(f"  {'*' if spec.default else ' '} {spec.name}")


def _sanity(args: argparse.Namespace) -> int:
    from captum_ext.benchmark.sanity import SanityConfig, run_sanity, write_sanity_outputs

    if args.n_images < 1:
        print("error: --n-images must be >= 1", file=sys.stderr)
        return 2
    config = SanityConfig(
        n_images=args.n_images, methods=args.methods, mode=args.mode, std=args.std, layers=args.layers,
        threshold=args.threshold, device=args.device, seed=args.seed, batch_size=args.batch_size,
        progress=not args.no_progress, retrain=args.retrain,
    )
    try:
        result = run_sanity(config)
    except (ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    paths = write_sanity_outputs(result, args.out, args.threshold)
    print(result.markdown(args.threshold))
    print(f"\nwrote {paths['csv']}, {paths['markdown']}, {paths['png']} and {paths['maps']}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``captum-ext`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "sanity":
        return _sanity(args)
    if args.command == "evaluate":
        return evaluate_cli.run_command(args)
    if args.list:
        _list()
        return 0
    if args.n_images < 1:
        print("error: --n-images must be >= 1", file=sys.stderr)
        return 2
    try:
        filler = _parse_filler(args.filler)
    except (ValueError, TypeError, ImportError) as error:
        print(f"error: --filler: {error}", file=sys.stderr)
        return 2
    config = BenchmarkConfig(
        n_images=args.n_images, methods=args.methods, metrics=args.metrics, device=args.device,
        out_dir=args.out, seed=args.seed, batch_size=args.batch_size, abs=not args.signed,
        progress=not args.no_progress, retrain=args.retrain,
        options={} if filler is None else {"filler": filler},
    )
    try:
        result = run_benchmark(config)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    paths = write_outputs(result, args.out)
    print(result.markdown())
    if any(spec.name in ("deletion", "insertion", "insertion_minus_deletion", "morf", "lerf")
           for spec in result.metric_specs):
        from captum_ext.benchmark.methods.metrics_perturbation import default_filler

        print(f"\nfiller of removed pixels: {filler if filler is not None else default_filler()!r}")
    print(f"\nwrote {paths['csv']}, {paths['markdown']} and {paths['png']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
