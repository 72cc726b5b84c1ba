"""``captum-ext evaluate`` on many processes, GPUs and machines with torchrun (``torch.distributed``).

Launch the ordinary command under torchrun; nothing else changes::

    torchrun --nproc_per_node 4 -m captum_ext evaluate --data DIR --model torchvision:resnet50 \\
        --weights r50.pth --device auto --out out/

Each rank (``RANK`` of ``WORLD_SIZE``, from torchrun's environment):

1. builds the same :class:`~captum_ext.evaluate.runner.EvalJob` (every rank validates; a user
   error on any rank stops every rank before any image is explained, rank 0 prints it);
2. takes its static share of the images still to do: ``todo[rank::world_size]`` (no padding
   duplicates, unlike ``DistributedSampler``; every image exactly once);
3. runs on ``cuda:LOCAL_RANK`` when ``--device`` is ``auto`` or ``cuda`` and CUDA is present
   (backend ``nccl``; ranks share GPUs round-robin, over ``gloo``, when a node runs more ranks
   than it has GPUs), else on the CPU (backend ``gloo``);
4. writes its own rows (``rows/<rank>-<n>.csv``, one file per batch, atomically);
5. waits at a barrier; rank 0 then writes the summary.

Rows depend only on (seed, image index, method) (see :mod:`captum_ext.evaluate.runner`), so a
run on one process, on N ranks or on Ray (:mod:`captum_ext.evaluate.ray_engine`) writes the same
rows and the same summary. A rank that dies loses only its unwritten batch; torchrun then stops
the other ranks, and the same command with ``--resume`` completes the run (the images still to
do are split again among the new ranks, so the world size may change between runs).
"""

import argparse
import os
import sys
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Callable, List, Mapping, Optional, Sequence

import torch
from torch.utils.data import Dataset

from captum_ext._checks import check_int_at_least
from captum_ext.evaluate.config import EvalConfig

__all__ = [
    "RankInfo",
    "backend_for",
    "evaluate_distributed",
    "rank_info",
    "resolve_device",
    "run_command",
    "shard_indices",
]

#: Seconds a rank waits at a barrier for the slowest rank (gloo's default, 30 minutes, is too
#: short for a data-set run with uneven shards). Override with ``CAPTUM_EXT_DIST_TIMEOUT``.
DEFAULT_TIMEOUT_S = 7 * 24 * 3600

#: Test hook: ``"RANK:K"`` makes rank RANK raise after writing K batches (a rank that dies).
FAIL_AFTER_ENV = "CAPTUM_EXT_FAIL_AFTER_BATCHES"


class RankFailure(RuntimeError):
    """Raised by the :data:`FAIL_AFTER_ENV` test hook."""


@dataclass(frozen=True)
class RankInfo:
    """Where this process stands in a torchrun launch (``rank 0 of 1`` when not launched by it).

    Attributes:
        rank (int): global rank, ``RANK``.
        world_size (int): number of ranks, ``WORLD_SIZE``.
        local_rank (int): rank on this node, ``LOCAL_RANK`` (selects the GPU).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def rank_info(env: Optional[Mapping[str, str]] = None) -> RankInfo:
    """This process's rank from torchrun's environment variables.

    Args:
        env (mapping, optional): the environment. Default ``os.environ``.

    Returns:
        RankInfo

    Examples::

        >>> rank_info({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
        RankInfo(rank=3, world_size=4, local_rank=1)
        >>> rank_info({})
        RankInfo(rank=0, world_size=1, local_rank=0)
    """
    env = os.environ if env is None else env
    try:
        info = RankInfo(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))
    except ValueError:
        raise ValueError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (set by torchrun)") from None
    if info.world_size < 1 or not 0 <= info.rank < info.world_size or info.local_rank < 0:
        raise ValueError(f"inconsistent torchrun environment: {info}")
    return info


def shard_indices(indices: Sequence[int], rank: int, world_size: int) -> List[int]:
    """This rank's static share of ``indices``: every ``world_size``-th one from position ``rank``.

    Every index lands on exactly one rank; no rank gets padding duplicates (the shares differ in
    length by at most one).

    Examples::

        >>> shard_indices(range(5), 0, 2), shard_indices(range(5), 1, 2)
        ([0, 2, 4], [1, 3])
        >>> shard_indices([7], 1, 3)
        []
    """
    check_int_at_least("world_size", world_size, 1)
    if not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"`rank` must be in [0, {world_size}), got {rank!r}")
    return [int(i) for i in list(indices)[rank::world_size]]


def resolve_device(requested: str, local_rank: int = 0) -> str:
    """The device a rank runs on.

    ``"auto"``: a GPU when CUDA is present, else ``"cpu"``. ``"auto"`` and ``"cuda"`` (no index)
    give rank ``LOCAL_RANK`` the GPU ``cuda:LOCAL_RANK``, round-robin (``LOCAL_RANK % GPUs``)
    when a node runs more ranks than it has GPUs. Anything else (``cpu``, ``cuda:N``) is
    returned unchanged.

    Examples::

        >>> resolve_device("cpu", 3)
        'cpu'
        >>> resolve_device("auto") in ("cpu", "cuda:0")
        True
    """
    if requested in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{local_rank % torch.cuda.device_count()}"
    if requested == "auto":
        return "cpu"
    return requested


def backend_for(device: str, env: Optional[Mapping[str, str]] = None) -> str:
    """``nccl`` when every rank of the node has its own GPU, else ``gloo``.

    Only small control messages are exchanged (errors, barriers), never tensors, so gloo is
    always correct; nccl refuses two ranks on one GPU.

    Examples::

        >>> backend_for("cpu")
        'gloo'
    """
    if not device.startswith("cuda"):
        return "gloo"
    env = os.environ if env is None else env
    per_node = int(env.get("LOCAL_WORLD_SIZE", 1))
    return "nccl" if torch.cuda.device_count() >= per_node else "gloo"


def _timeout() -> timedelta:
    return timedelta(seconds=float(os.environ.get("CAPTUM_EXT_DIST_TIMEOUT", DEFAULT_TIMEOUT_S)))


class _Group:
    """The process group of a torchrun launch (a no-op on one process)."""

    def __init__(self, info: RankInfo, device: str) -> None:
        import torch.distributed as dist

        self.info = info
        self.dist = dist
        self.owned = False
        if not info.distributed:
            self.nccl = False
            return
        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
        if not dist.is_initialized():
            dist.init_process_group(backend_for(device), timeout=_timeout())
            self.owned = True
        self.nccl = dist.get_backend() == "nccl"

    def agree(self, error: Optional[str]) -> Optional[str]:
        """The first rank's error message, on every rank (None when no rank failed)."""
        if not self.info.distributed:
            return error
        gathered: List[Optional[str]] = [None] * self.info.world_size
        self.dist.all_gather_object(gathered, error)
        return next((e for e in gathered if e), None)

    def barrier(self) -> None:
        if not self.info.distributed:
            return
        if self.nccl:
            self.dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            self.dist.barrier()

    def close(self) -> None:
        if self.owned and self.dist.is_initialized():
            self.dist.destroy_process_group()


def _fail_after_hook(info: RankInfo) -> Optional[Callable[[int], None]]:
    spec = os.environ.get(FAIL_AFTER_ENV)
    if not spec:
        return None
    rank_text, _, batches_text = spec.partition(":")
    if int(rank_text) != info.rank:
        return None
    limit = int(batches_text)

    def hook(batches: int) -> None:
        if batches >= limit:
            raise RankFailure(f"rank {info.rank} stopped after {batches} batches ({FAIL_AFTER_ENV})")

    return hook


def evaluate_distributed(
    config: EvalConfig,
    dataset: Optional[Dataset] = None,
    model: Optional[torch.nn.Module] = None,
    n_resamples: int = 9999,
    after_batch: Optional[Callable[[int], None]] = None,
    info: Optional[RankInfo] = None,
) -> Any:
    """Run an evaluation as one rank of a torchrun launch (or alone, when not launched by it).

    Args:
        config (EvalConfig): the run's options (``device="auto"`` picks ``cuda:LOCAL_RANK``).
        dataset, model (optional): as :func:`~captum_ext.evaluate.runner.build_job` (each rank
            must pass the same).
        n_resamples (int): bootstrap resamples of the summary. Default 9999.
        after_batch (callable, optional): test hook passed to ``run_indices``.
        info (RankInfo, optional): default :func:`rank_info` of the environment.

    Returns:
        The :class:`~captum_ext.evaluate.summary.Summary` on rank 0, ``None`` on other ranks.

    Raises:
        ValueError: a user error found by any rank (raised on every rank, before any image is
            explained).
    """
    from captum_ext.evaluate.runner import build_job, check_out_dir, completed_indices, run_indices
    from captum_ext.evaluate.summary import summarize

    info = rank_info() if info is None else info
    config = replace(config, device=resolve_device(config.device, info.local_rank))
    group = _Group(info, config.device)
    try:
        error: Optional[str] = None
        if info.rank == 0:  # one writer probes the folder (ranks would race on the probe file)
            try:
                check_out_dir(config.out, config.resume, config)
            except (ValueError, TypeError) as caught:
                error = str(caught)
        error = group.agree(error)
        if error is None:
            try:
                job = build_job(config, dataset=dataset, model=model)
            except (ValueError, TypeError) as caught:
                error = f"{caught}" + (f" (rank {info.rank})" if info.distributed else "")
        error = group.agree(error)
        if error is not None:
            raise ValueError(error)
        done = completed_indices(config.out, job.method_names) if config.resume else set()
        todo = [i for i in job.indices if i not in done]
        group.barrier()  # every rank has read what is done before any rank writes
        mine = shard_indices(todo, info.rank, info.world_size)
        run_indices(job, mine, config.out, resume=False, rank=info.rank, after_batch=after_batch)
        group.barrier()  # every rank's rows are written
        if info.rank != 0:
            return None
        return summarize(config.out, reference=config.reference, n_resamples=n_resamples, seed=config.seed)
    finally:
        group.close()


# ------------------------------------------------------------------------------------------ CLI


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--engine`` and ``--address`` of ``captum-ext evaluate``."""
    group = parser.add_argument_group("distributed execution (docs/distributed.md)")
    group.add_argument("--engine", choices=["local", "torchrun", "ray"], default=None,
                       help="local: one process; torchrun: one rank of a torchrun launch (chosen automatically "
                            "when launched by torchrun); ray: Ray Data actors (pip install 'captum-ext[ray]')")
    group.add_argument("--address", default=None,
                       help="Ray cluster address for --engine ray (default: start a local Ray instance)")
    group.add_argument("--workers", type=int, default=None,
                       help="Ray actors for --engine ray (default: one per GPU, else one per CPU)")


def wants_distributed(args: argparse.Namespace) -> bool:
    """Whether ``evaluate`` goes through this module (a torchrun launch, or an explicit engine)."""
    engine = getattr(args, "engine", None)
    if engine == "local":
        return False
    return engine in ("torchrun", "ray") or rank_info().distributed


def _error(message: str) -> int:
    print(f"captum-ext: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def run_command(args: argparse.Namespace) -> int:
    """``captum-ext evaluate`` with ``--engine torchrun`` / ``ray`` or under torchrun; the exit code."""
    from captum_ext.evaluate.cli import config_from_args

    if args.address is not None and args.engine != "ray":
        return _error("--address applies to --engine ray only")
    if args.workers is not None and (args.engine != "ray" or args.workers < 1):
        return _error("--workers applies to --engine ray and must be >= 1")
    preset = getattr(args, "preset", None)
    try:
        info = rank_info()
        config = config_from_args(args)
        if preset is not None:
            if config.data or config.model:
                return _error("--preset replaces --data and --model; give one or the other")
        elif not config.data:
            return _error("--data is required (or --preset stamp)")
        elif not config.model:
            return _error("--model is required")
    except (ValueError, TypeError) as error:
        return _error(str(error))
    try:
        if args.engine == "ray":
            from captum_ext.evaluate.ray_engine import evaluate_ray

            summary = evaluate_ray(config, address=args.address, num_workers=args.workers,
                                   n_resamples=args.n_resamples, preset=preset)
        else:
            dataset: Any = None
            model: Any = None
            if preset is not None:
                from captum_ext.evaluate.presets import load_preset

                dataset, model = load_preset(preset, config)
            summary = evaluate_distributed(config, dataset=dataset, model=model, n_resamples=args.n_resamples,
                                           info=info, after_batch=_fail_after_hook(info))
    except (ValueError, TypeError) as error:
        return _error(str(error)) if info.rank == 0 else 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: rows written so far are in {config.out}/rows; rerun with --resume", file=sys.stderr)
        return 130
    if summary is not None:
        print(summary.markdown())
        print("wrote " + ", ".join(str(p) for p in summary.paths.values()))
    return 0
