"""``captum-ext evaluate``: score attribution methods on any classifier and any image data set.

Python API (stable; the distributed engines call exactly these)::

    from captum_ext.evaluate import EvalConfig, build_job, run_indices, completed_indices, summarize

    config = EvalConfig(data="images/", model="torchvision:resnet18", weights="resnet18.pth",
                        resize=64, mean="imagenet", methods=["Saliency", "IntegratedGradients"],
                        out="out/", reference="Saliency")
    job = build_job(config)                         # validated: data, model, methods, metrics
    run_indices(job, job.indices, config.out)       # rows -> out/rows/0-00000.csv, ...
    summary = summarize(config.out)                 # summary.csv / .md / .png, maps.png

- :class:`EvalConfig`: every option of the command line (a dataclass).
- :func:`build_job(config, dataset=None, model=None) <build_job>` -> :class:`EvalJob`: loads and
  checks everything before long work (``ValueError`` naming the argument or file). A Python
  ``Dataset`` yielding ``(image, label)`` or ``(image, label, mask)`` and an ``nn.Module`` may be
  passed instead of ``config.data`` / ``config.model``.
- :func:`run_indices(job, indices, out_dir, resume=True, rank=0) <run_indices>`: the unit of
  work, a shard of image indices; writes ``out_dir/rows/<rank>-<n>.csv`` (Parquet when pyarrow
  is installed) once per batch of ``config.batch_size`` images, atomically. Rows depend only
  on (seed, image index, method): not on batch size, order or sharding.
- :func:`completed_indices(out_dir, method_names) <completed_indices>`: indices with rows for
  every method (what ``resume=True`` skips).
- :func:`summarize(out_dir, reference=None) <summarize>`: reads all rows files, writes the summary.
- :func:`read_rows(out_dir) <read_rows>`: all rows, one per (index, method), sorted.
"""

from captum_ext.evaluate.config import EvalConfig
from captum_ext.evaluate.runner import (
    EvalJob,
    build_job,
    check_out_dir,
    completed_indices,
    read_rows,
    run_indices,
    write_manifest,
)
from captum_ext.evaluate.summary import Summary, summarize

__all__ = [
    "EvalConfig",
    "EvalJob",
    "Summary",
    "build_job",
    "check_out_dir",
    "completed_indices",
    "read_rows",
    "run_indices",
    "summarize",
    "write_manifest",
]
