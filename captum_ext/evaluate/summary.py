"""The summary of an ``evaluate`` run, computed from its rows only (any number of writers).

:func:`summarize` reads ``OUT/rows/*`` (and ``OUT/run.json``, ``OUT/maps/*.pt`` when present) and
writes:

- ``summary.csv``: one line per (method, metric): mean, 95% percentile-bootstrap interval over
  images (seeded), count of images and of NaNs, and against the reference method the mean paired
  difference, its interval and the Wilcoxon signed-rank p-value (:mod:`captum_ext.metrics.statistics`);
- ``summary.md``: the same as two Markdown tables;
- ``summary.png``: per-metric dot-and-interval panels and the mean deletion / insertion curves;
- ``maps.png``: the map grid of the first images.
"""

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from captum_ext.evaluate.runner import ID_FIELDS, read_rows
from captum_ext.metrics.statistics import bootstrap_interval, paired_comparison

__all__ = ["Summary", "summarize"]


@dataclass
class Summary:
    """What :func:`summarize` computed and wrote.

    Attributes:
        table (list of dict): one dict per (method, metric), the lines of ``summary.csv``.
        methods (list of str): methods in run order.
        metrics (list of str): metric values in column order.
        reference (str or None): the reference method of the paired comparisons.
        paths (dict): ``csv``, ``markdown``, ``figure`` and (when maps were kept) ``maps``.
    """

    table: List[Dict[str, Any]]
    methods: List[str]
    metrics: List[str]
    reference: Optional[str]
    paths: Dict[str, Path]

    def markdown(self) -> str:
        return format_markdown(self)


def _fmt(value: float, digits: int = 3) -> str:
    return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.2g}" if value >= 1e-3 else f"{value:.1e}"


def format_markdown(summary: Summary) -> str:
    """Two tables: mean [95% interval] per method and metric; paired differences vs the reference."""
    by = {(r["method"], r["metric"]): r for r in summary.table}
    arrows = {r["metric"]: r.get("lower_is_better") for r in summary.table}

    def head(metric: str) -> str:
        lower = arrows.get(metric)
        return metric + ("" if lower in (None, "") else (" ↓" if lower else " ↑"))

    lines = ["| method | n | " + " | ".join(head(m) for m in summary.metrics) + " |",
             "|---|---|" + "---|" * len(summary.metrics)]
    for method in summary.methods:
        n = max((by[(method, m)]["n"] for m in summary.metrics if (method, m) in by), default=0)
        cells = []
        for m in summary.metrics:
            r = by.get((method, m))
            cells.append("" if r is None else f"{_fmt(r['mean'])} [{_fmt(r['low'])}, {_fmt(r['high'])}]")
        lines.append(f"| {method} | {n} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    if summary.reference is not None:
        lines = [f"\nPaired difference to **{summary.reference}** (method − reference, same images): "
                 "mean [95% bootstrap interval], Wilcoxon signed-rank p.\n",
                 "| method | " + " | ".join(summary.metrics) + " |", "|---|" + "---|" * len(summary.metrics)]
        for method in summary.methods:
            if method == summary.reference:
                continue
            cells = []
            for m in summary.metrics:
                r = by.get((method, m))
                cells.append("" if r is None else
                             f"{_fmt(r['difference'])} [{_fmt(r['difference_low'])}, {_fmt(r['difference_high'])}]"
                             f" p={_p(r['p_value'])}")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        text += "\n" + "\n".join(lines)
    return text + "\n"


def _load_manifest(out: Path) -> Dict[str, Any]:
    path = out / "run.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def summarize(
    out_dir: "str | Path",
    reference: Optional[str] = None,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
    figures: bool = True,
) -> Summary:
    """Read every rows file under ``out_dir`` and write the summary (see the module docstring).

    Args:
        out_dir (str or Path): the run's output folder.
        reference (str, optional): method the others are compared to; default the run's
            ``reference`` (``run.json``), else no paired comparison.
        confidence (float): interval coverage. Default 0.95.
        n_resamples (int): bootstrap resamples. Default 9999.
        seed (int): bootstrap seed. Default 0.
        figures (bool): also write ``summary.png`` and ``maps.png``. Default True.

    Returns:
        Summary

    Raises:
        ValueError: if there are no rows, or ``reference`` is not a method of the rows.
    """
    out = Path(out_dir)
    rows = read_rows(out)
    if not rows:
        raise ValueError(f"--out: no rows under {out / 'rows'}")
    manifest = _load_manifest(out)
    directions: Dict[str, bool] = manifest.get("values", {})
    curve_x: Dict[str, List[float]] = manifest.get("curves", {})
    reference = reference if reference is not None else manifest.get("reference")
    methods = list(dict.fromkeys([m for m in manifest.get("methods", []) if any(r["method"] == m for r in rows)]
                                 + [str(r["method"]) for r in rows]))
    if reference is not None and reference not in methods:
        raise ValueError(f"--reference: {reference!r} is not one of the methods {methods}")
    metrics = [k for k in rows[0] if k not in ID_FIELDS and not k.endswith("_curve")]
    metrics = list(dict.fromkeys([m for m in directions if m in metrics] + metrics))
    values: Dict[str, Dict[int, Dict[str, Any]]] = {m: {} for m in methods}  # method -> index -> row
    for row in rows:
        values[str(row["method"])][int(row["index"])] = row
    table: List[Dict[str, Any]] = []
    for method in methods:
        indices = sorted(values[method])
        for metric in metrics:
            x = np.array([float(values[method][i].get(metric, math.nan)) for i in indices], dtype=np.float64)
            interval = bootstrap_interval(x, confidence, n_resamples, seed)
            line: Dict[str, Any] = {"method": method, "metric": metric,
                                    "lower_is_better": directions.get(metric, ""), "mean": interval.mean,
                                    "low": interval.low, "high": interval.high, "n": interval.n,
                                    "n_nan": interval.n_nan}
            if reference is not None and method != reference:
                common = [i for i in indices if i in values[reference]]
                a = np.array([float(values[method][i].get(metric, math.nan)) for i in common])
                b = np.array([float(values[reference][i].get(metric, math.nan)) for i in common])
                paired = paired_comparison(a, b, confidence, n_resamples, seed)
                line.update(difference=paired.mean_difference, difference_low=paired.low,
                            difference_high=paired.high, p_value=paired.p_value, n_paired=paired.n)
            else:
                line.update(difference=math.nan, difference_low=math.nan, difference_high=math.nan,
                            p_value=math.nan, n_paired=0)
            table.append(line)
    paths = {"csv": out / "summary.csv", "markdown": out / "summary.md", "figure": out / "summary.png"}
    with open(paths["csv"], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    summary = Summary(table, methods, metrics, reference, paths)
    paths["markdown"].write_text(format_markdown(summary))
    if figures:
        _figure(summary, rows, curve_x, directions, paths["figure"])
        maps = _map_grid(out, methods, int(manifest.get("grid_images", 4)))
        if maps is not None:
            paths["maps"] = maps
    else:
        paths.pop("figure")
    return summary


def mean_curves(rows: List[Dict[str, Any]], curve_x: Dict[str, List[float]]) -> Dict[str, Dict[str, Any]]:
    """``{kind: {method: (fractions, mean curve)}}`` over the images with a curve."""
    out: Dict[str, Dict[str, Any]] = {}
    names = [k for k in rows[0] if k.endswith("_curve")]
    for name in names:
        kind = name[: -len("_curve")]
        per_method: Dict[str, List[List[float]]] = {}
        for row in rows:
            text = str(row.get(name) or "")
            if text:
                per_method.setdefault(str(row["method"]), []).append([float(v) for v in text.split()])
        for method, curves in per_method.items():
            lengths = {len(c) for c in curves}
            if len(lengths) != 1:
                continue  # images of different sizes with an evenly spaced schedule: no common x
            mean = np.mean(np.array(curves), axis=0)
            x = curve_x.get(name) or list(np.linspace(0.0, 1.0, mean.shape[0]))
            out.setdefault(kind, {})[method] = (list(x), mean.tolist())
    return out


def _figure(summary: Summary, rows: List[Dict[str, Any]], curve_x: Dict[str, List[float]],
            directions: Dict[str, bool], path: Path) -> None:
    from captum_ext.visualization import plot_evaluation_summary

    by = {(r["method"], r["metric"]): r for r in summary.table}
    intervals = {m: {meth: (by[(meth, m)]["mean"], by[(meth, m)]["low"], by[(meth, m)]["high"])
                     for meth in summary.methods if (meth, m) in by}
                 for m in summary.metrics}
    lower = {m: directions.get(m) for m in summary.metrics}
    curves = {kind: {m: by_method[m] for m in summary.methods if m in by_method}
              for kind, by_method in mean_curves(rows, curve_x).items()}
    fig = plot_evaluation_summary(intervals, curves, lower)
    fig.savefig(path, dpi=110)


def _map_grid(out: Path, methods: List[str], limit: int) -> Optional[Path]:
    import torch

    files = sorted((out / "maps").glob("*.pt"), key=lambda p: int(p.stem)) if (out / "maps").is_dir() else []
    files = files[:limit]
    if not files:
        return None
    from captum_ext.visualization import visualize_attr_grid

    items = [torch.load(p, map_location="cpu", weights_only=True) for p in files]
    shown = [m for m in methods if all(m in item["maps"] for item in items)]
    sizes = {tuple(item["image"].shape) for item in items}
    if not shown or len(sizes) != 1:
        return None
    images = torch.stack([item["image"] for item in items])
    maps = {m: torch.stack([item["maps"][m] for item in items]) for m in shown}
    if all(item["mask"] is not None for item in items):
        maps = {"ground truth": torch.stack([item["mask"] for item in items]).expand(-1, 1, -1, -1), **maps}
    fig, _ = visualize_attr_grid(images, maps, titles=[item["image_id"] for item in items])
    path = out / "maps.png"
    fig.savefig(path, dpi=90)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
