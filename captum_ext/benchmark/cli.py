"""``captum-ext`` command line: ``captum-ext benchmark`` runs the stamp benchmark."""

import argparse
import sys
from typing import List, Optional

from captum_ext.benchmark.registry import available_methods, available_metrics
from captum_ext.benchmark.runner import BenchmarkConfig, run_benchmark, write_outputs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="captum-ext", description="captum-ext command line")
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser("benchmark", help="run the stamp benchmark (trains the classifier once)")
    bench.add_argument("--n-images", type=int, default=64, help="held-out stamped images (default 64)")
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
    return parser


def _list() -> None:
    print("methods (* = run by default):")
    for spec in available_methods().values():
        print(f"  {'*' if spec.default else ' '} {spec.name:32s} [{spec.group}] {spec.description}")
    print("metrics (* = computed by default):")
    for spec in available_metrics().values():
        print(f"  {'*' if spec.default else ' '} {spec.name}")


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``captum-ext`` console script."""
    args = build_parser().parse_args(argv)
    if args.list:
        _list()
        return 0
    if args.n_images < 1:
        print("error: --n-images must be >= 1", file=sys.stderr)
        return 2
    config = BenchmarkConfig(
        n_images=args.n_images, methods=args.methods, metrics=args.metrics, device=args.device,
        out_dir=args.out, seed=args.seed, batch_size=args.batch_size, abs=not args.signed,
        progress=not args.no_progress, retrain=args.retrain,
    )
    try:
        result = run_benchmark(config)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    paths = write_outputs(result, args.out)
    print(result.markdown())
    print(f"\nwrote {paths['csv']}, {paths['markdown']} and {paths['png']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
