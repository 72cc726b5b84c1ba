"""Tensor-friendly visualization: a batch of images and attribution maps in, a figure grid out.

All plotting of the package lives here (pyplot is imported inside the functions; the
matplotlib backend is never switched: a path given to a plotting function saves the figure
with ``savefig`` and closes it).

Captum's ``visualize_image_attr`` takes one HWC numpy image at a time. :func:`visualize_attr_grid`
takes tensors in Captum's layout (B, C, H, W), one map per method, and draws one row per image:
the image, then each method's map, with one colour map per sign convention so that grids made
at different times read the same way.
"""

from typing import Any, Dict, Optional, Sequence, Union

import torch
from torch import Tensor

from captum_ext.metrics.similarity import MEASURES

#: Colour maps: signed maps use a diverging map centred on 0, absolute and positive maps a
#: sequential one, negative maps a reversed sequential one.
SIGN_CMAPS: Dict[str, str] = {"all": "RdBu_r", "absolute_value": "magma", "positive": "Greens", "negative": "Reds"}


def reduce_attr(attributions: Tensor, sign: str = "absolute_value") -> Tensor:
    """Reduce (B, C, H, W) attributions to (B, H, W) maps for display.

    ``"all"`` sums channels keeping the sign, ``"absolute_value"`` sums ``|a|``, ``"positive"``
    and ``"negative"`` keep one side (negative shown as magnitudes).

    Examples::

        >>> reduce_attr(torch.tensor([[[[1.0]], [[-3.0]]]]), "all").item()
        -2.0
        >>> reduce_attr(torch.tensor([[[[1.0]], [[-3.0]]]]), "absolute_value").item()
        4.0
    """
    if sign not in SIGN_CMAPS:
        raise ValueError(f"`sign` must be one of {sorted(SIGN_CMAPS)}, got {sign!r}")
    if not isinstance(attributions, Tensor) or attributions.dim() != 4:
        got = getattr(attributions, "shape", type(attributions))
        raise ValueError(f"`attributions` must be a (B, C, H, W) tensor, got {got}")
    a = attributions.detach().float().cpu()
    if sign == "absolute_value":
        return a.abs().sum(1)
    if sign == "positive":
        return a.clamp_min(0).sum(1)
    if sign == "negative":
        return (-a).clamp_min(0).sum(1)
    return a.sum(1)


def _scale(maps: Tensor, outlier_perc: float) -> Tensor:
    """Per-map scale as Captum's ``_normalize_attr``: the smallest |value| at which the cumulative
    sum of the sorted |values| reaches ``100 - outlier_perc`` percent of their total."""
    flat = maps.abs().flatten(1).to(torch.float64).sort(dim=1).values
    cumulative = flat.cumsum(dim=1)
    needed = cumulative[:, -1:] * (1 - outlier_perc / 100.0)
    index = torch.searchsorted(cumulative, needed).clamp_max(flat.shape[1] - 1)
    return flat.gather(1, index).squeeze(1).to(maps.dtype).clamp_min(1e-12)


def visualize_attr_grid(
    images: Tensor,
    attributions: Union[Tensor, Dict[str, Tensor]],
    sign: str = "absolute_value",
    outlier_perc: float = 2.0,
    shared_scale: bool = False,
    overlay: bool = False,
    titles: Optional[Sequence[str]] = None,
    panel_size: float = 1.8,
):
    """Draw a grid: one row per image; the image, then one map per method.

    Args:
        images (Tensor): (B, 3, H, W) or (B, 1, H, W) in [0, 1] (values are clipped for display).
        attributions (Tensor or dict of str to Tensor): one (B, C, H, W) map, or several keyed
            by method name (column titles).
        sign (str): ``"absolute_value"`` (default), ``"all"``, ``"positive"`` or ``"negative"``,
            as in Captum; picks the reduction and the colour map (:data:`SIGN_CMAPS`).
        outlier_perc (float): as Captum's ``visualize_image_attr``: the largest |values|, which
            together make up this percent of the total |attribution|, saturate. Default 2.
        shared_scale (bool): one scale per row (all methods compared on the same scale) instead
            of one per map. Default False.
        overlay (bool): draw maps over a grey version of the image. Default False.
        titles (sequence of str, optional): row titles (e.g. class names).
        panel_size (float): inches per panel. Default 1.8.

    Returns:
        (matplotlib.figure.Figure, numpy.ndarray of Axes)

    Examples::

        >>> fig, axes = visualize_attr_grid(torch.rand(2, 3, 8, 8), {"a": torch.randn(2, 3, 8, 8)})
        >>> axes.shape
        (2, 2)
    """
    import matplotlib.pyplot as plt

    maps_by_name = attributions if isinstance(attributions, dict) else {"attribution": attributions}
    if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] not in (1, 3):
        got = getattr(images, "shape", type(images))
        raise ValueError(f"`images` must be (B, 3, H, W) or (B, 1, H, W), got {got}")
    reduced = {}
    for name, attr in maps_by_name.items():
        r = reduce_attr(attr, sign)
        if r.shape[0] != images.shape[0] or r.shape[1:] != images.shape[2:]:
            raise ValueError(
                f"attributions {name!r} of shape {tuple(attr.shape)} do not match images {tuple(images.shape)}"
            )
        reduced[name] = r
    scales = {name: _scale(r, outlier_perc) for name, r in reduced.items()}
    if shared_scale:
        row_scale = torch.stack(list(scales.values())).amax(0)
        scales = {name: row_scale for name in scales}
    cmap = SIGN_CMAPS[sign]
    vmin = -1.0 if sign == "all" else 0.0
    rows, cols = images.shape[0], len(reduced) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(panel_size * cols, panel_size * rows), squeeze=False)
    pictures = images.detach().float().cpu().clamp(0, 1).permute(0, 2, 3, 1)
    grey = pictures.mean(-1)
    for i in range(rows):
        axes[i, 0].imshow(pictures[i].squeeze(-1).numpy(), cmap="gray" if pictures.shape[-1] == 1 else None)
        if titles is not None:
            axes[i, 0].set_ylabel(str(titles[i]), fontsize=8)
        for j, (name, r) in enumerate(reduced.items(), start=1):
            ax = axes[i, j]
            shown = (r[i] / scales[name][i]).clamp(vmin, 1.0).numpy()
            if overlay:
                ax.imshow(grey[i].numpy(), cmap="gray")
                ax.imshow(shown, cmap=cmap, vmin=vmin, vmax=1.0, alpha=0.6)
            else:
                ax.imshow(shown, cmap=cmap, vmin=vmin, vmax=1.0)
            if i == 0:
                ax.set_title(name, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_title("image", fontsize=8)
    fig.tight_layout()
    return fig, axes


def _finish(fig: Any, path: Optional[str]) -> Any:
    """Save the figure to ``path`` (and close it) when a path is given; return it."""
    if path is not None:
        import matplotlib.pyplot as plt

        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def plot_sanity_curves(result: Any, path: Optional[str] = None, measures: Sequence[str] = MEASURES) -> Any:
    """Similarity against randomization stage, one panel per measure, one line (mean ± std) per method.

    Args:
        result (SanityResult): what :func:`captum_ext.metrics.cascading_randomization` returned.
        path (str, optional): save the figure there (and close it).
        measures (sequence of str): the panels. Default: all four.

    Returns:
        matplotlib.figure.Figure

    Examples::

        >>> from captum_ext.metrics.sanity import SanityResult
        >>> values = {m: torch.rand(3, 2) for m in MEASURES}
        >>> fig = plot_sanity_curves(SanityResult(["original", "fc", "conv"], {"Saliency": values}))
        >>> [ax.get_title() for ax in fig.axes][:2]
        ['spearman_abs (cascading)', 'spearman (cascading)']
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(measures), figsize=(4.0 * len(measures), 3.6), squeeze=False)
    x = list(range(len(result.stages)))
    for ax, measure in zip(axes[0], measures):
        for method, values in result.similarities.items():
            data = values[measure]
            mean = data.nanmean(dim=1)
            finite = torch.isfinite(data)
            centred = torch.where(finite, data - mean[:, None], torch.zeros_like(data))
            std = (centred.pow(2).sum(1) / finite.sum(1).clamp_min(1)).sqrt()
            ax.plot(x, mean.numpy(), marker="o", markersize=3, label=method)
            ax.fill_between(x, (mean - std).numpy(), (mean + std).numpy(), alpha=0.15)
        ax.set_title(f"{measure} ({result.mode})")
        ax.set_xticks(x)
        ax.set_xticklabels(result.stages, rotation=60, ha="right", fontsize=7)
        ax.set_ylim(-1.05 if measure in ("spearman", "hog") else -0.05, 1.05)
        ax.axhline(0.0, color="gray", lw=0.5)
    axes[0][0].set_ylabel("similarity to the trained model's map")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _finish(fig, path)


def plot_sanity_maps(result: Any, path: Optional[str] = None, image: int = 0) -> Any:
    """The Adebayo et al. figure: one row per method, one column per stage, normalized ``|a|`` maps.

    Args:
        result (SanityResult): a result computed with ``keep_maps >= 1``.
        path (str, optional): save the figure there (and close it).
        image (int): which kept image to show. Default 0.

    Returns:
        matplotlib.figure.Figure

    Examples::

        >>> from captum_ext.metrics.sanity import SanityResult
        >>> kept = {"Saliency": torch.rand(2, 1, 8, 8)}
        >>> fig = plot_sanity_maps(SanityResult(["original", "fc"], {}, maps=kept))
        >>> len(fig.axes)
        2
    """
    import matplotlib.pyplot as plt

    if not result.maps:
        raise ValueError("no maps were kept; run with keep_maps >= 1")
    rows, cols = len(result.maps), len(result.stages)
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols + 1, 1.2 * rows + 0.6), squeeze=False)
    for i, (method, maps) in enumerate(result.maps.items()):
        for j in range(cols):
            ax = axes[i][j]
            ax.imshow(maps[j, image].cpu().numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(result.stages[j], fontsize=6, rotation=45, ha="left", loc="left")
            if j == 0:
                ax.set_ylabel(method, fontsize=7)
    fig.tight_layout()
    return _finish(fig, path)


# ---------------------------------------------------------------- evaluation summary figures
# (``captum-ext evaluate``: per-metric dot-and-interval plots and mean deletion / insertion curves)


def plot_metric_intervals(
    intervals: Dict[str, Dict[str, "tuple[float, float, float]"]],
    lower_is_better: Optional[Dict[str, Optional[bool]]] = None,
    axes=None,
):
    """One panel per metric: each method's mean as a dot with its interval as a bar.

    Args:
        intervals (dict): ``{metric: {method: (mean, low, high)}}``.
        lower_is_better (dict, optional): ``{metric: bool}``, shown as an arrow in the title.
        axes (sequence of Axes, optional): one per metric; default: a new figure.

    Returns:
        (matplotlib.figure.Figure, list of Axes)

    Examples::

        >>> fig, axes = plot_metric_intervals({"deletion": {"a": (0.2, 0.1, 0.3), "b": (0.4, 0.3, 0.5)}})
        >>> len(axes), [t.get_text() for t in axes[0].get_yticklabels()]
        (1, ['a', 'b'])
    """
    from matplotlib.figure import Figure

    metrics = list(intervals)
    if axes is None:
        n_methods = max((len(v) for v in intervals.values()), default=1)
        fig = Figure(figsize=(3.0 * max(1, len(metrics)), 0.6 + 0.35 * n_methods))
        axes = fig.subplots(1, max(1, len(metrics)), squeeze=False)[0].tolist()
    else:
        axes = list(axes)
        fig = axes[0].figure
    for ax, metric in zip(axes, metrics):
        methods = list(intervals[metric])
        for y, method in enumerate(methods):
            mean, low, high = intervals[metric][method]
            if low == low and high == high:  # not NaN
                ax.plot([low, high], [y, y], color="0.4", lw=2)
            ax.plot([mean], [y], "o", color="C0")
        ax.set_yticks(range(len(methods)))
        ax.set_yticklabels(methods, fontsize=7)
        ax.set_ylim(len(methods) - 0.5, -0.5)
        arrow = ""
        if lower_is_better and lower_is_better.get(metric) is not None:
            arrow = " ↓" if lower_is_better[metric] else " ↑"
        ax.set_title(metric + arrow, fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    return fig, axes


def plot_mean_curves(
    curves: Dict[str, Dict[str, "tuple[Sequence[float], Sequence[float]]"]],
    axes=None,
):
    """Mean perturbation curves: one panel per curve kind, one line per method.

    Args:
        curves (dict): ``{kind: {method: (fractions, mean_scores)}}``, e.g. kind ``"deletion"``.
        axes (sequence of Axes, optional): one per kind; default: a new figure.

    Returns:
        (matplotlib.figure.Figure, list of Axes)

    Examples::

        >>> fig, axes = plot_mean_curves({"deletion": {"a": ([0, 0.5, 1], [0.9, 0.2, 0.1])}})
        >>> len(axes[0].get_lines())
        1
    """
    from matplotlib.figure import Figure

    kinds = list(curves)
    if axes is None:
        fig = Figure(figsize=(3.6 * max(1, len(kinds)), 3.0))
        axes = fig.subplots(1, max(1, len(kinds)), squeeze=False)[0].tolist()
    else:
        axes = list(axes)
        fig = axes[0].figure
    for ax, kind in zip(axes, kinds):
        for method, (x, y) in curves[kind].items():
            ax.plot(list(x), list(y), label=method, lw=1.2)
        ax.set_xlabel(f"fraction of pixels {'removed' if kind.startswith('del') else 'inserted'}", fontsize=8)
        ax.set_ylabel("mean target probability", fontsize=8)
        ax.set_title(f"mean {kind} curve", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    return fig, axes


def plot_evaluation_summary(
    intervals: Dict[str, Dict[str, "tuple[float, float, float]"]],
    curves: Dict[str, Dict[str, "tuple[Sequence[float], Sequence[float]]"]],
    lower_is_better: Optional[Dict[str, Optional[bool]]] = None,
):
    """The ``evaluate`` summary figure: a row of dot-and-interval panels, a row of mean curves.

    Returns:
        matplotlib.figure.Figure

    Examples::

        >>> fig = plot_evaluation_summary({"insertion": {"a": (0.5, 0.4, 0.6)}},
        ...                               {"insertion": {"a": ([0, 1], [0.1, 0.9])}})
        >>> len(fig.axes)
        2
    """
    from matplotlib.figure import Figure

    cols = max(len(intervals), len(curves), 1)
    n_methods = max((len(v) for v in intervals.values()), default=1)
    top = 0.8 + 0.3 * n_methods
    fig = Figure(figsize=(3.2 * cols, top + (3.0 if curves else 0.0)))
    rows = 2 if curves else 1
    grid = fig.add_gridspec(rows, cols, height_ratios=[top, 3.0] if curves else [1.0])
    if intervals:
        plot_metric_intervals(intervals, lower_is_better, [fig.add_subplot(grid[0, j]) for j in range(len(intervals))])
    if curves:
        plot_mean_curves(curves, [fig.add_subplot(grid[1, j]) for j in range(len(curves))])
    fig.tight_layout()
    return fig


def plot_image_mask_maps(images: Tensor, masks: Tensor, maps: Dict[str, Tensor]) -> Any:
    """The benchmark's grid: one row per image; the image, its ground truth, one ``|map|`` per method.

    Uses ``matplotlib.figure.Figure`` directly (no pyplot state, no backend switch).

    Args:
        images (Tensor): (B, 3, H, W) in [0, 1].
        masks (Tensor): (B, 1, H, W) ground truth.
        maps (dict of str to Tensor): (B, C, H, W) attribution maps per method.

    Returns:
        matplotlib.figure.Figure

    Examples::

        >>> fig = plot_image_mask_maps(torch.rand(2, 3, 8, 8), torch.ones(2, 1, 8, 8),
        ...                            {"Saliency": torch.rand(2, 3, 8, 8)})
        >>> len(fig.axes)
        6
    """
    from matplotlib.figure import Figure

    names = list(maps)
    rows, cols = images.shape[0], len(names) + 2
    fig = Figure(figsize=(1.3 * cols, 1.3 * rows + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False)
    for i in range(rows):
        panels = [("image", images[i].permute(1, 2, 0).clamp(0, 1).numpy(), None),
                  ("ground truth", masks[i, 0].float().numpy(), "gray")]
        for name in names:
            heat = maps[name][i].detach().abs().sum(0)
            panels.append((name, (heat / heat.max().clamp_min(1e-12)).numpy(), "magma"))
        for j, (title, array, cmap) in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(array, cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=6, rotation=30, ha="left", loc="left")
    fig.tight_layout()
    return fig
