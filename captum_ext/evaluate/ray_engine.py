"""``captum-ext evaluate --engine ray``: Ray Data actors with dynamic hand-out of image batches.

Needs the ``[ray]`` extra (``pip install 'captum-ext[ray]'``, i.e. ``ray[data]``)::

    captum-ext evaluate --engine ray --data DIR --model torchvision:resnet50 --weights r50.pth \\
        --device auto --out /shared/out/                  # a local Ray instance on this machine
    captum-ext evaluate --engine ray --address auto ...   # the Ray cluster this node belongs to

The driver validates the whole run first (a user error is one line and exit code 2, before any
actor starts), writes ``run.json``, and turns the image indices still to do into a Ray dataset
of about one block per batch. ``map_batches`` runs :class:`EvalActor`, an actor class that builds
the model and the methods once (``num_gpus=1`` per actor when the cluster has GPUs and the device
is ``auto``/``cuda``, else one CPU per actor) and writes the rows of each batch it is handed
under ``OUT/rows/ray-<actor>-<n>`` exactly as a torchrun rank does. Ray hands the next batch to
whichever actor is free (dynamic hand-out: a slow method or a slow node leaves nobody idle).

Failures: a lost actor or worker node is restarted by Ray and its unfinished batch retried
(``max_restarts=-1``, ``max_task_retries=-1``); a batch is written in one atomic file, so a retry
never leaves half a batch, and a batch written twice (an actor lost between writing and
returning) is read once. A lost driver: rerun the command with ``--resume``. ``OUT`` must be a
folder every node can write (a shared file system) when the cluster has more than one node.
"""

import os
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from captum_ext.evaluate.config import EvalConfig

__all__ = ["EvalActor", "evaluate_ray"]


class EvalActor:
    """A Ray Data actor: builds the job once, then evaluates and writes each batch it is handed.

    Args:
        config (EvalConfig): the run's options, with the actor's device.
        preset (str, optional): a built-in data set and model (``--preset``) instead of
            ``config.data`` / ``config.model``.

    Examples::

        >>> # ray.data.from_items([{"index": i} for i in range(8)]).map_batches(
        >>> #     EvalActor, fn_constructor_kwargs={"config": config}, batch_size=2, concurrency=2)
        >>> sorted(vars(EvalActor))[:2]
        ['__call__', '__dict__']
    """

    def __init__(self, config: EvalConfig, preset: Optional[str] = None) -> None:
        from captum_ext.evaluate.runner import build_job

        self.job = build_job(config, *_preset(preset, config))
        self.out = Path(config.out)
        self.tag = f"ray-{os.getpid()}{uuid.uuid4().hex[:6]}"

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        """Evaluate the images of ``batch["index"]`` and write their rows (one file)."""
        import numpy as np

        from captum_ext.evaluate.runner import run_indices

        indices = [int(i) for i in batch["index"]]
        run_indices(self.job, indices, self.out, resume=False, rank=self.tag)
        return {"index": np.asarray(indices, dtype=np.int64)}


def _preset(preset: Optional[str], config: EvalConfig) -> Tuple[Any, Any]:
    if preset is None:
        return None, None
    from captum_ext.evaluate.presets import load_preset

    return load_preset(preset, config)


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ValueError("--engine ray needs Ray Data: pip install 'captum-ext[ray]'") from None
    return ray


def evaluate_ray(
    config: EvalConfig,
    address: Optional[str] = None,
    num_workers: Optional[int] = None,
    n_resamples: int = 9999,
    init_kwargs: Optional[Dict[str, Any]] = None,
    preset: Optional[str] = None,
) -> Any:
    """Run an evaluation on Ray Data actors and write the summary.

    Args:
        config (EvalConfig): the run's options (``device="auto"`` or ``"cuda"``: one GPU per
            actor when the cluster has GPUs; otherwise the actors run on the CPU).
        address (str, optional): a Ray cluster (``"auto"``, ``"ray://host:10001"``); default: an
            already initialised Ray, else a local instance started (and shut down) here.
        num_workers (int, optional): number of actors; default one per GPU, else one per CPU.
        n_resamples (int): bootstrap resamples of the summary. Default 9999.
        init_kwargs (dict, optional): extra ``ray.init`` arguments (e.g. ``{"num_cpus": 2}``).
        preset (str, optional): a built-in data set and model (``--preset stamp``).

    Returns:
        Summary: as :func:`~captum_ext.evaluate.summary.summarize`.

    Raises:
        ValueError: a user error (checked on the driver before any actor starts), or Ray missing.
    """
    from captum_ext.evaluate.runner import build_job, check_out_dir, completed_indices, write_manifest
    from captum_ext.evaluate.summary import summarize

    ray = _import_ray()
    if num_workers is not None and (not isinstance(num_workers, int) or num_workers < 1):
        raise ValueError(f"--workers must be an int >= 1, got {num_workers!r}")
    wants_gpu = config.device in ("auto", "cuda") or config.device.startswith("cuda:")
    check_out_dir(config.out, config.resume, config)
    driver_config = replace(config, device="cpu")  # validate everything on the driver, on the CPU
    job = build_job(driver_config, *_preset(preset, driver_config))
    write_manifest(job, config.out)
    done = completed_indices(config.out, job.method_names) if config.resume else set()
    todo = [i for i in job.indices if i not in done]
    started = False
    if todo:
        if not ray.is_initialized():
            kwargs: Dict[str, Any] = {"address": address, "include_dashboard": False, "log_to_driver": False}
            if address is None:  # a local instance: the workers import this copy of captum_ext
                root = str(Path(__file__).resolve().parents[2])
                path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
                kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}
            kwargs.update(init_kwargs or {})
            ray.init(**kwargs)
            started = True
        try:
            _run_actors(ray, config, todo, wants_gpu, num_workers, preset)
        finally:
            if started:
                ray.shutdown()
    return summarize(config.out, reference=config.reference, n_resamples=n_resamples, seed=config.seed)


def _run_actors(
    ray: Any, config: EvalConfig, todo: List[int], wants_gpu: bool, num_workers: Optional[int], preset: Optional[str]
) -> None:
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0)) if wants_gpu else 0
    if gpus:
        workers = num_workers or gpus
        actor_config = replace(config, device="cuda")  # Ray sets CUDA_VISIBLE_DEVICES per actor
        per_actor: Dict[str, Any] = {"num_gpus": 1}
    else:
        workers = num_workers or max(1, int(resources.get("CPU", 1)))
        actor_config = replace(config, device="cpu")
        per_actor = {"num_cpus": 1}
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = bool(config.progress)
    dataset = ray.data.from_items([{"index": i} for i in todo],
                                  override_num_blocks=max(1, -(-len(todo) // config.batch_size)))
    results = dataset.map_batches(
        EvalActor, fn_constructor_kwargs={"config": actor_config, "preset": preset}, batch_size=config.batch_size,
        batch_format="numpy", concurrency=min(workers, len(todo)), max_restarts=-1, max_task_retries=-1,
        **per_actor,
    )
    handed = sum(len(batch["index"]) for batch in results.iter_batches(batch_size=None, batch_format="numpy"))
    if handed != len(todo):  # pragma: no cover - Ray lost a batch without an error
        raise RuntimeError(f"Ray returned {handed} of {len(todo)} images; rerun with --resume")
