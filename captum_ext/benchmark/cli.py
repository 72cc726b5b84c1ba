"""``captum-ext`` command line: ``captum-ext benchmark`` runs the stamp benchmark,
``captum-ext sanity`` the cascading randomisation check of the registered methods.

Every argument and the output folder are checked before any model is loaded or any image is
built; a user error prints one line ``captum-ext: error: ...`` on stderr and exits with code 2
(never a traceback).
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, NoReturn, Optional, Tuple, cast

from captum_ext._checks import check_int_at_least, check_number, check_positive
from captum_ext.benchmark.registry import available_methods, available_metrics, select
from captum_ext.data.classifier import ARCHITECTURES, check_device

PROG = "captum-ext"


class UsageError(Exception):
    """A user error on the command line: printed as one ``captum-ext: error: ...`` line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors raise :class:`UsageError` (one line, no usage dump)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The ``captum-ext`` argument parser (sub-commands ``benchmark`` and ``sanity``)."""
    parser = _Parser(prog=PROG, description="captum-ext command line")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    bench = commands.add_parser("benchmark", help="run the stamp benchmark (trains the classifier once)")
    bench.add_argument("--n-images", type=int, default=32, help="held-out stamped images (default 32)")
    bench.add_argument("--methods", nargs="+", default=None, help="method names (default: the default set)")
    bench.add_argument("--metrics", nargs="+", default=None, help="metric names (default: the default set)")
    _add_model_arguments(bench)
    bench.add_argument("--out", default="benchmark_out", help="output folder (default benchmark_out)")
    bench.add_argument("--seed", type=int, default=0, help="seed of the held-out images (default 0)")
    bench.add_argument("--batch-size", type=int, default=16, help="images per attribution call")
    bench.add_argument("--signed", action="store_true", help="score signed maps instead of |map|")
    bench.add_argument("--no-progress", action="store_true", help="no progress bars")
    bench.add_argument("--list", action="store_true", help="list the registered methods and metrics, then exit")
    bench.add_argument(
        "--inpainter", default=None,
        help="what replaces removed pixels in the deletion / insertion columns: a number or an inpainter "
             "name (harmonic, linear, blur, noise, constant, ...); default harmonic",
    )
    bench.add_argument("--filler", default=None, help=argparse.SUPPRESS)  # deprecated name of --inpainter
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
    _add_model_arguments(sanity)
    sanity.add_argument("--out", default="benchmark_out", help="output folder (default benchmark_out)")
    sanity.add_argument("--seed", type=int, default=0, help="seed of the images and the re-draw (default 0)")
    sanity.add_argument("--batch-size", type=int, default=16, help="images per attribution call")
    sanity.add_argument("--no-progress", action="store_true", help="no progress bars")
    from captum_ext.evaluate import cli as evaluate_cli
    from captum_ext.evaluate.distributed import add_engine_arguments

    add_engine_arguments(evaluate_cli.add_parser(commands))
    for name, (add, _) in EXTRA_COMMANDS.items():
        add(commands.add_parser(name, help=f"see `{PROG} {name} --help`"))
    return parser


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=list(ARCHITECTURES), default="stampnet",
                        help="the classifier: stampnet (default) or a torchvision resnet18, both trained "
                             "once on the stamp data and cached")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--retrain", action="store_true", help="retrain the classifier, ignoring the cache")


#: Further sub-commands: name -> (add its arguments to a parser, run it from parsed args -> exit code).
#: ``captum-ext evaluate`` registers itself here.
EXTRA_COMMANDS: Dict[str, Tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


# ------------------------------------------------------------------------------------------
# validation (before any model is loaded or image built)
# ------------------------------------------------------------------------------------------


def _user(check: Callable[[], object]) -> object:
    """Run a ``_checks`` validator; its ValueError / TypeError becomes a :class:`UsageError`."""
    try:
        return check()
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None


def check_out_dir(path: str, name: str = "--out") -> Path:
    """Create the output folder if needed and prove it is writable (a file is written and removed).

    Raises:
        UsageError: naming ``name`` and the path when the folder cannot be created or written.
    """
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".captum-ext-write-test-"):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UsageError(f"{name}: cannot write to the folder {str(out)!r} ({reason})") from None
    return out


#: Bytes a benchmark or sanity run holds per held-out image: the 64x64 image and mask, one
#: method's maps and the metrics' working copies (the images are built in chunks, but the run
#: keeps every image and one method's maps at a time).
BYTES_PER_IMAGE = 4 * 3 * 64 * 64 * 4


def _physical_memory() -> Optional[int]:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):  # pragma: no cover - not POSIX
        return None


def check_memory(n_images: int, name: str = "--n-images") -> None:
    """Refuse a run that would need more than half of this machine's memory (before building it).

    Raises:
        UsageError: naming ``name`` and the memory needed.
    """
    total = _physical_memory()
    need = n_images * BYTES_PER_IMAGE
    if total is not None and need > total // 2:
        raise UsageError(
            f"{name} {n_images} needs about {need / 2**30:.1f} GiB of memory for the images and maps (this "
            f"machine has {total / 2**30:.1f} GiB); use fewer images, or several runs with different --seed"
        )


def _check_common(args: argparse.Namespace) -> None:
    _user(lambda: check_int_at_least("--n-images", args.n_images, 1))
    check_memory(args.n_images)
    _user(lambda: check_int_at_least("--batch-size", args.batch_size, 1))
    _user(lambda: check_device(args.device, "--device"))
    _user(lambda: select(cast(Any, available_methods()), args.methods, "method"))
    check_out_dir(args.out)


def _parse_inpainter(text: Optional[str], option: str = "--inpainter") -> Optional[object]:
    """A number, or an inpainter name checked now (so a typo fails before any work)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        _user(lambda: check_number(option, value))
        return value
    from captum_ext.inpaint import resolve_inpainter

    try:
        resolve_inpainter(text)  # raises ValueError for an unknown name
    except (ValueError, TypeError, ImportError) as error:
        raise UsageError(f"{option}: {error}") from None
    return text


def _list() -> None:
    print("methods (* = run by default):")
    for spec in available_methods().values():
        print(f"  {'*' if spec.default else ' '} {spec.name:32s} [{spec.group}] {spec.description}")
    print("metrics (* = computed by default):")
    for metric in available_metrics().values():
        print(f"  {'*' if metric.default else ' '} {metric.name}")


# ------------------------------------------------------------------------------------------
# sub-commands
# ------------------------------------------------------------------------------------------


def _sanity(args: argparse.Namespace) -> int:
    from captum_ext.benchmark.sanity import SanityConfig, run_sanity, write_sanity_outputs

    _check_common(args)
    _user(lambda: check_positive("--std", args.std))
    _user(lambda: check_number("--threshold", args.threshold, low=0.0, high=1.0, low_open=True))
    config = SanityConfig(
        n_images=args.n_images, methods=args.methods, mode=args.mode, std=args.std, layers=args.layers,
        threshold=args.threshold, device=args.device, seed=args.seed, batch_size=args.batch_size,
        progress=not args.no_progress, retrain=args.retrain, arch=args.model,
    )
    result = _user(lambda: run_sanity(config))
    paths = write_sanity_outputs(result, args.out, args.threshold)  # type: ignore[arg-type]
    print(result.markdown(args.threshold))  # type: ignore[attr-defined]
    print(f"\nwrote {paths['csv']}, {paths['markdown']}, {paths['png']} and {paths['maps']}")
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    from captum_ext.benchmark.runner import BenchmarkConfig, run_benchmark, write_outputs
    from captum_ext.data.classifier import load_stamp_classifier

    if args.list:
        _list()
        return 0
    _check_common(args)
    _user(lambda: select(cast(Any, available_metrics()), args.metrics, "metric"))
    if args.filler is not None:
        if args.inpainter is not None:
            raise UsageError("--filler is the deprecated name of --inpainter; give --inpainter only")
    inpainter = _parse_inpainter(args.inpainter if args.filler is None else args.filler,
                                 "--inpainter" if args.filler is None else "--filler")
    if args.filler is not None:
        print("captum-ext: warning: --filler is deprecated; use --inpainter", file=sys.stderr)
    config = BenchmarkConfig(
        n_images=args.n_images, methods=args.methods, metrics=args.metrics, device=args.device,
        out_dir=args.out, seed=args.seed, batch_size=args.batch_size, abs=not args.signed,
        progress=not args.no_progress, retrain=args.retrain,
        options={} if inpainter is None else {"inpainter": inpainter},
    )
    model = load_stamp_classifier(arch=args.model, retrain=args.retrain, progress=not args.no_progress,
                                  device=args.device)
    result = _user(lambda: run_benchmark(config, model=model))
    paths = write_outputs(result, args.out)  # type: ignore[arg-type]
    print(result.markdown())  # type: ignore[attr-defined]
    if any(spec.name in ("deletion", "insertion", "insertion_minus_deletion", "morf", "lerf")
           for spec in result.metric_specs):  # type: ignore[attr-defined]
        from captum_ext.benchmark.methods.metrics_perturbation import default_inpainter

        print(f"\ninpainter of removed pixels: {inpainter if inpainter is not None else default_inpainter()!r}")
    print(f"\nwrote {paths['csv']}, {paths['markdown']} and {paths['png']}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    """``captum-ext evaluate``: one process, or a torchrun rank / Ray driver (docs/distributed.md)."""
    from captum_ext.evaluate import cli as evaluate_cli
    from captum_ext.evaluate import distributed

    if not args.list and distributed.wants_distributed(args):
        return distributed.run_command(args)
    if args.address is not None or args.workers is not None:
        raise UsageError("--address and --workers apply to --engine ray only")
    args.device = distributed.resolve_device(args.device)
    return evaluate_cli.run_command(args)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``captum-ext`` console script.

    Returns:
        int: the exit code: 0 on success, 2 for a user error (after one ``captum-ext: error:``
        line on stderr).
    """
    try:
        args = build_parser().parse_args(argv)
        if args.command == "sanity":
            return _sanity(args)
        if args.command == "benchmark":
            return _benchmark(args)
        if args.command == "evaluate":
            return _evaluate(args)
        return EXTRA_COMMANDS[args.command][1](args)
    except UsageError as error:
        message = " ".join(str(error).split())  # one line
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    except SystemExit as done:  # --help / --version
        return done.code if isinstance(done.code, int) else 0
    except OSError as error:  # the output folder vanished or filled up mid-run
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
