"""The stamp benchmark runner: explain held-out stamped images with every method, score every map.

Used by ``captum-ext benchmark``; usable from Python::

    from captum_ext.benchmark.runner import BenchmarkConfig, run_benchmark
    result = run_benchmark(BenchmarkConfig(n_images=32, methods=["Saliency", "IntegratedGradients"]))
    print(result.markdown())
"""

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from captum_ext._checks import check_int_at_least
from captum_ext._utils import derive_seed, preserved_model_state
from captum_ext.benchmark.registry import (
    MethodSpec,
    MetricContext,
    MetricSpec,
    available_methods,
    available_metrics,
    select,
)
from captum_ext.data.classifier import DEFAULT_RECIPE, load_stamp_classifier
from captum_ext.data.stamped import make_stamped_batch
from captum_ext.metrics.localisation import mean_and_interval

#: Offset of the held-out seeds, far from the training seeds (which start at 1,000,000).
HELD_OUT_SEED_OFFSET = 500_000

#: Candidate images generated (and classified) at a time by :func:`held_out_images`.
HELD_OUT_CHUNK = 2048


@dataclass
class BenchmarkConfig:
    """Options of one benchmark run.

    Args:
        n_images (int): held-out stamped images to explain (correctly classified ones). Default 32.
        methods (list of str, optional): registered method names; default: every default method.
        metrics (list of str, optional): registered metric names; default: every default metric.
        device (str): "cpu" or "cuda". Default "cpu".
        out_dir (str): where the CSV, Markdown and PNG go. Default "benchmark_out".
        seed (int): seed of the held-out images. Default 0.
        batch_size (int): images explained per call. Default 16.
        abs (bool): score ``|attribution|`` (summed over channels). Default True.
        grid_images (int): rows of the PNG grid. Default 6.
        only_correct (bool): keep only images the model assigns to the stamp's class, as the
            metric asks. Default True.
        progress (bool): show progress bars. Default True.
        retrain (bool): retrain the classifier even if cached. Default False.
        options (dict): extra options passed to metrics (e.g. a filler).
    """

    n_images: int = 32
    methods: Optional[List[str]] = None
    metrics: Optional[List[str]] = None
    device: str = "cpu"
    out_dir: str = "benchmark_out"
    seed: int = 0
    batch_size: int = 16
    abs: bool = True
    grid_images: int = 6
    only_correct: bool = True
    progress: bool = True
    retrain: bool = False
    options: Dict[str, object] = field(default_factory=dict)


@dataclass
class BenchmarkResult:
    """What a run produced: one row per method, per-image values, and the maps for the grid."""

    rows: List[Dict[str, object]]
    per_image: Dict[str, Dict[str, Tensor]]
    maps: Dict[str, Tensor]
    images: Tensor
    masks: Tensor
    metric_specs: List[MetricSpec]

    def markdown(self) -> str:
        """The table as GitHub Markdown."""
        return format_markdown(self.rows, self.metric_specs)


def held_out_images(
    model: nn.Module,
    n_images: int,
    seed: int,
    device: str,
    recipe: Optional[Dict] = None,
    only_correct: bool = True,
    chunk: Optional[int] = None,
) -> Tuple[Tensor, Tensor, Tensor]:
    """Held-out stamped images (by default only those ``model`` assigns to the stamp's class).

    Up to ``4 * n_images + 32`` candidates are generated and classified ``chunk`` at a time
    (default :data:`HELD_OUT_CHUNK`), stopping as soon as ``n_images`` are kept, so memory does
    not grow with the candidates. The first chunk is seeded by ``HELD_OUT_SEED_OFFSET + seed``
    (for ``n_images <= 504`` the images are the same as when everything was built at once),
    chunk ``k > 0`` by ``derive_seed(HELD_OUT_SEED_OFFSET + seed, k)``.

    Returns:
        (images, labels, masks) on ``device``, ``n_images`` of each (fewer only if the model
        misclassifies many).

    Raises:
        ValueError: if the model classifies none of them correctly.
    """
    r = {**DEFAULT_RECIPE, **(recipe or {})}
    num_glyphs = int(r["num_glyphs"])
    step = HELD_OUT_CHUNK if chunk is None else chunk
    check_int_at_least("n_images", n_images, 1)
    check_int_at_least("chunk", step, 1)
    budget = 4 * n_images + 32
    kept: List[Tuple[Tensor, Tensor, Tensor]] = []
    count, start, part = 0, 0, 0
    while start < budget and count < n_images:
        size = min(step, budget - start)
        base = HELD_OUT_SEED_OFFSET + seed
        batch = make_stamped_batch(
            size, int(r["image_size"]), int(r["stamp_size"]), num_glyphs, base if part == 0 else derive_seed(base, part)
        )
        stamped = batch.labels < num_glyphs
        images, labels, masks = batch.images[stamped], batch.labels[stamped], batch.masks[stamped]
        if only_correct:
            with torch.no_grad():
                preds = torch.cat([model(images[i:i + 256].to(device)).argmax(1).cpu()
                                   for i in range(0, images.shape[0], 256)] or [labels[:0]])
            correct = preds == labels
            images, labels, masks = images[correct], labels[correct], masks[correct]
        take = n_images - count
        kept.append((images[:take], labels[:take], masks[:take]))
        count += min(take, images.shape[0])
        start += size
        part += 1
    if count == 0:
        raise ValueError("the model classifies none of the held-out stamped images correctly")
    images, labels, masks = (torch.cat(parts) for parts in zip(*kept))
    return images.to(device), labels.to(device), masks.to(device)


def _explain_all(
    spec: MethodSpec, model: nn.Module, images: Tensor, labels: Tensor, batch_size: int, progress: bool
) -> Tuple[Tensor, float]:
    explain = spec.build(model)
    chunks = range(0, images.shape[0], batch_size)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc=f"{spec.name:>28}", unit="batch", leave=False)
    maps = []
    start = time.perf_counter()
    for lo in chunks:
        maps.append(explain(images[lo:lo + batch_size], labels[lo:lo + batch_size]).detach())
    seconds = time.perf_counter() - start
    return torch.cat(maps), seconds / images.shape[0]


def run_benchmark(config: BenchmarkConfig, model: Optional[nn.Module] = None) -> BenchmarkResult:
    """Run every selected method on held-out stamped images and score it with every metric.

    Args:
        config (BenchmarkConfig): the run's options.
        model (nn.Module, optional): a classifier to use instead of the cached stamp classifier.

    Returns:
        BenchmarkResult: rows (one per method), per-image metric values, maps.
    """
    methods = select(dict(available_methods()), config.methods, "method")
    metrics = select(dict(available_metrics()), config.metrics, "metric")
    if model is None:
        model = load_stamp_classifier(retrain=config.retrain, progress=config.progress, device=config.device)
    with preserved_model_state(model, rng=True):  # a caller's model is left as it was
        return _run_benchmark(config, model, methods, metrics)


def _run_benchmark(
    config: BenchmarkConfig, model: nn.Module, methods: List[MethodSpec], metrics: List[MetricSpec]
) -> BenchmarkResult:
    model.eval()
    images, labels, masks = held_out_images(
        model, config.n_images, config.seed, config.device, only_correct=config.only_correct
    )
    options = {"abs": config.abs, **config.options}
    rows: List[Dict[str, object]] = []
    per_image: Dict[str, Dict[str, Tensor]] = {}
    maps: Dict[str, Tensor] = {}
    for spec in methods:
        attributions, seconds = _explain_all(spec, model, images, labels, config.batch_size, config.progress)
        context = MetricContext(model, images, labels, attributions, masks, options)
        values = {m.name: m.fn(context).detach().cpu() for m in metrics}
        per_image[spec.name] = values
        maps[spec.name] = attributions[: config.grid_images].cpu()
        rows.append(_summarise(spec, metrics, values, seconds))
        if config.progress:
            print(f"  {spec.name}: done ({seconds:.4f} s/image)", flush=True)
    shown = slice(0, config.grid_images)
    return BenchmarkResult(rows, per_image, maps, images[shown].cpu(), masks[shown].cpu(), metrics)


def _summarise(
    spec: MethodSpec, metrics: List[MetricSpec], values: Dict[str, Tensor], seconds: float
) -> Dict[str, object]:
    row: Dict[str, object] = {"method": spec.name, "group": spec.group}
    for metric in metrics:
        mean, half_width, count = mean_and_interval(values[metric.name])
        row[metric.name] = mean
        if metric.interval:
            row[f"{metric.name}_ci95"] = half_width
        row[f"{metric.name}_nan"] = int(values[metric.name].numel() - count)
    row["seconds_per_image"] = seconds
    return row


def _fmt(value: object, digits: int = 3) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def format_markdown(rows: List[Dict[str, object]], metrics: List[MetricSpec]) -> str:
    """Render benchmark rows as a Markdown table (mean, ± 95% half-width where reported)."""
    header = ["method"] + [f"{m.name} {'↓' if m.lower_is_better else '↑'}" for m in metrics] + ["s/image"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row["method"])]
        for m in metrics:
            cell = _fmt(row[m.name])
            if m.interval and not math.isnan(float(row.get(f"{m.name}_ci95", math.nan))):  # type: ignore[arg-type]
                cell += f" ± {_fmt(row[f'{m.name}_ci95'])}"
            cells.append(cell)
        seconds = float(row["seconds_per_image"])  # type: ignore[arg-type]
        cells.append(f"{seconds:.4f}" if seconds < 1 else f"{seconds:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_outputs(result: BenchmarkResult, out_dir: str) -> Dict[str, Path]:
    """Write ``results.csv``, ``results.md`` and ``maps.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "results.csv", "markdown": out / "results.md", "png": out / "maps.png"}
    fields = list(result.rows[0].keys()) if result.rows else ["method"]
    with open(paths["csv"], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(result.rows)
    paths["markdown"].write_text(result.markdown() + "\n")
    save_grid(result, paths["png"])
    return paths


def save_grid(result: BenchmarkResult, path: Path) -> None:
    """A PNG grid: one row per image; image, ground truth, then one |map| per method."""
    from captum_ext.visualization import plot_image_mask_maps

    fig = plot_image_mask_maps(result.images, result.masks, result.maps)
    fig.savefig(path, dpi=110)
