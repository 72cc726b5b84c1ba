"""Sanity checks for saliency maps: cascading (or independent) model-parameter randomisation.

Adebayo et al., "Sanity Checks for Saliency Maps" (NeurIPS 2018). Known: the layers of a trained
network are re-initialised from the top (logits) down, cumulatively; after each stage every
method's map is recomputed and compared with its map on the trained network by the Spearman
rank correlation (with and without absolute values), SSIM and the Pearson correlation of HOG
features. A method whose maps stay similar while the network is destroyed does not explain the
network: it fails. The pathway paper re-draws every weight and bias from N(0, 0.1) and reports
the mean Spearman-abs over the stages.

Chosen here (configurable):

- a stage is one module that owns parameters (``layers`` may name blocks instead); the
  default order is the reverse of ``model.named_modules()``, i.e. top layer first for models
  that register their layers in forward order;
- a map is reduced to one value per pixel: the channel sum (``spearman``) or the channel sum of
  ``|a|`` (``spearman_abs``); SSIM and HOG compare the ``|a|`` maps normalised as the PAIR
  saliency library's grayscale visualisation (minimum to 0, 99th percentile to 1, clipped);
- SSIM is this module's batched torch re-implementation of scikit-image's default
  ``structural_similarity`` (7 x 7 uniform window, sample covariance, K1 = 0.01, K2 = 0.03,
  ``data_range = 1``); HOG is a batched torch re-implementation of ``skimage.feature.hog``
  (9 orientations, 8 x 8 cells, 3 x 3 blocks, L2-Hys); both are tested against scikit-image;
- a method passes when its mean Spearman-abs over the randomised stages is below 0.5.

The user's model is never touched: all the work happens on a deep copy.
"""

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from captum.log import log_usage
from torch import Tensor, nn

from captum_ext._utils import check_image_batch, check_int_at_least, check_positive

Explainer = Callable[[Tensor, Tensor], Tensor]
MethodBuilder = Callable[[nn.Module], Explainer]

#: The similarity measures reported per stage, in plotting order.
MEASURES: Tuple[str, ...] = ("spearman_abs", "spearman", "ssim", "hog")

__all__ = [
    "MEASURES",
    "SanityResult",
    "cascading_randomisation",
    "hog_features",
    "map_similarities",
    "normalise_abs_map",
    "pearson",
    "randomisation_layers",
    "resolve_methods",
    "spearman",
    "ssim",
]


# ----------------------------------------------------------------------------- similarities


def _average_ranks(values: Tensor) -> Tensor:
    """1-based average ranks along dim 1 (ties share their mean rank, as scipy's ``rankdata``)."""
    ordered = values.sort(dim=1).values.contiguous()
    below = torch.searchsorted(ordered, values.contiguous(), right=False)
    upto = torch.searchsorted(ordered, values.contiguous(), right=True)
    return (below + upto + 1).to(torch.float64) / 2.0


def pearson(x: Tensor, y: Tensor) -> Tensor:
    """Pearson correlation of the rows of ``x`` and ``y`` (B, N); NaN where a row is constant.

    Examples::

        >>> pearson(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[2.0, 4.0, 7.0]])).item() > 0.98
        True
    """
    x = x.to(torch.float64).flatten(1)
    y = y.to(torch.float64).flatten(1)
    if x.shape != y.shape:
        raise ValueError(f"`x` and `y` must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    xc = x - x.mean(dim=1, keepdim=True)
    yc = y - y.mean(dim=1, keepdim=True)
    denominator = xc.norm(dim=1) * yc.norm(dim=1)
    r = (xc * yc).sum(dim=1) / denominator
    constant = (x.amax(dim=1) == x.amin(dim=1)) | (y.amax(dim=1) == y.amin(dim=1))
    return r.clamp(-1.0, 1.0).masked_fill(constant, math.nan)


def spearman(x: Tensor, y: Tensor) -> Tensor:
    """Spearman rank correlation of the rows of ``x`` and ``y`` (any shape (B, ...)).

    Average ranks for ties (as ``scipy.stats.spearmanr``); NaN where a row is constant.

    Examples::

        >>> round(spearman(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([[4.0, 1.0, 9.0, 16.0]])).item(), 6)
        0.8
    """
    x = x.flatten(1)
    y = y.flatten(1)
    if x.shape != y.shape:
        raise ValueError(f"`x` and `y` must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    return pearson(_average_ranks(x.to(torch.float64)), _average_ranks(y.to(torch.float64)))


def ssim(x: Tensor, y: Tensor, data_range: float = 1.0, win_size: int = 7) -> Tensor:
    """Mean structural similarity of two batches of gray images, as scikit-image computes it.

    The same numbers as ``skimage.metrics.structural_similarity(x, y, data_range=data_range)``
    with its defaults: a ``win_size`` uniform window, sample covariance, K1 = 0.01, K2 = 0.03,
    and the mean over the pixels whose window fits inside the image.

    Args:
        x (Tensor): (B, H, W) or (B, 1, H, W) images.
        y (Tensor): images of the same shape.
        data_range (float): the value range of the images. Default 1.
        win_size (int): odd window side, at most min(H, W). Default 7.

    Returns:
        Tensor: (B,) float64.

    Examples::

        >>> x = torch.rand(2, 16, 16)
        >>> ssim(x, x).tolist()
        [1.0, 1.0]
    """
    check_positive("data_range", data_range)
    check_int_at_least("win_size", win_size, 3)
    if win_size % 2 == 0:
        raise ValueError(f"`win_size` must be odd, got {win_size}")
    x = x.to(torch.float64)
    y = y.to(torch.float64)
    if x.dim() == 3:
        x, y = x.unsqueeze(1), y.unsqueeze(1)
    if x.shape != y.shape or x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"`x` and `y` must both be (B, H, W) or (B, 1, H, W), got {tuple(x.shape)}, {tuple(y.shape)}")
    if min(x.shape[-2:]) < win_size:
        raise ValueError(f"images of size {tuple(x.shape[-2:])} are smaller than `win_size` {win_size}")
    pool = lambda t: F.avg_pool2d(t, win_size, stride=1)  # noqa: E731 - the 'valid' part only
    ux, uy = pool(x), pool(y)
    uxx, uyy, uxy = pool(x * x), pool(y * y), pool(x * y)
    n = win_size * win_size
    cov_norm = n / (n - 1.0)
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3))


def hog_features(images: Tensor, orientations: int = 9, cell: int = 8, block: int = 3) -> Tensor:
    """Histogram-of-oriented-gradients features of gray images, as ``skimage.feature.hog``.

    The same features, in the same order, as ``skimage.feature.hog(image, orientations,
    (cell, cell), (block, block), block_norm="L2-Hys")``: central-difference gradients (zero on
    the border), unsigned orientation bins without interpolation, cell means, L2-Hys block
    normalisation; batched.

    Args:
        images (Tensor): (B, H, W) or (B, 1, H, W); H and W at least ``cell * block``.
        orientations (int): orientation bins over [0, 180) degrees. Default 9.
        cell (int): cell side in pixels. Default 8.
        block (int): block side in cells. Default 3.

    Returns:
        Tensor: (B, F) float64.

    Examples::

        >>> hog_features(torch.rand(2, 32, 32)).shape
        torch.Size([2, 324])
    """
    check_int_at_least("orientations", orientations, 1)
    check_int_at_least("cell", cell, 1)
    check_int_at_least("block", block, 1)
    x = images.to(torch.float64)
    x = x.squeeze(1) if x.dim() == 4 and x.shape[1] == 1 else x
    if x.dim() != 3:
        raise ValueError(f"`images` must be (B, H, W) or (B, 1, H, W), got {tuple(images.shape)}")
    n_rows, n_cols = x.shape[1] // cell, x.shape[2] // cell
    if n_rows < block or n_cols < block:
        raise ValueError(f"images of size {tuple(x.shape[1:])} are smaller than one block ({cell * block} pixels)")
    g_row = torch.zeros_like(x)
    g_col = torch.zeros_like(x)
    g_row[:, 1:-1, :] = x[:, 2:, :] - x[:, :-2, :]
    g_col[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    magnitude = torch.hypot(g_col, g_row)
    orientation = torch.rad2deg(torch.atan2(g_row, g_col)).remainder(180.0)
    edges = (180.0 / orientations) * torch.arange(1, orientations, dtype=torch.float64, device=x.device)
    bins = torch.bucketize(orientation, edges, right=True)  # number of edges <= orientation
    votes = F.one_hot(bins, orientations).to(torch.float64) * magnitude.unsqueeze(-1)  # (B, H, W, O)
    votes = votes[:, : n_rows * cell, : n_cols * cell].permute(0, 3, 1, 2)
    histogram = F.avg_pool2d(votes, cell)  # (B, O, n_rows, n_cols): cell sums / cell area
    blocks = histogram.unfold(2, block, 1).unfold(3, block, 1)  # (B, O, bR, bC, block, block)
    blocks = blocks.permute(0, 2, 3, 4, 5, 1)  # skimage's order: (bR, bC, block, block, O)
    eps2 = 1e-5**2
    out = blocks / torch.sqrt(blocks.pow(2).sum(dim=(3, 4, 5), keepdim=True) + eps2)
    out = out.clamp(max=0.2)
    out = out / torch.sqrt(out.pow(2).sum(dim=(3, 4, 5), keepdim=True) + eps2)
    return out.flatten(1)


def normalise_abs_map(attributions: Tensor, percentile: float = 99.0) -> Tensor:
    """``|a|`` summed over channels, scaled so its minimum is 0 and its ``percentile`` is 1, clipped.

    (The PAIR saliency library's ``VisualizeImageGrayscale``, which the sanity-check paper's
    code uses.) A constant map becomes all zeros.

    Args:
        attributions (Tensor): (B, C, H, W) maps.
        percentile (float): the percentile mapped to 1, in (0, 100]. Default 99.

    Returns:
        Tensor: (B, H, W) float64 in [0, 1].

    Examples::

        >>> normalise_abs_map(torch.tensor([[[[0.0, -2.0], [4.0, 1.0]]]]), percentile=100).tolist()
        [[[0.0, 0.5], [1.0, 0.25]]]
    """
    if not 0 < percentile <= 100:
        raise ValueError(f"`percentile` must be in (0, 100], got {percentile}")
    a = attributions.detach().to(torch.float64).abs().sum(dim=1)
    flat = a.flatten(1)
    vmin = flat.amin(dim=1)
    vmax = torch.quantile(flat, percentile / 100.0, dim=1)
    span = (vmax - vmin).view(-1, 1, 1)
    scaled = (a - vmin.view(-1, 1, 1)) / span.clamp_min(torch.finfo(torch.float64).tiny)
    return torch.where(span > 0, scaled.clamp(0.0, 1.0), torch.zeros_like(a))


def map_similarities(reference: Tensor, maps: Tensor) -> Dict[str, Tensor]:
    """The four similarities of each map to its reference map, per image.

    Args:
        reference (Tensor): (B, C, H, W) maps of the trained model.
        maps (Tensor): (B, C, H, W) maps of a randomised model.

    Returns:
        dict: ``{"spearman_abs", "spearman", "ssim", "hog"}`` -> (B,) float64. HOG is NaN for
        images smaller than 24 x 24 pixels.

    Examples::

        >>> a = torch.rand(2, 3, 32, 32)
        >>> sorted(map_similarities(a, a)), map_similarities(a, a)["ssim"].tolist()
        (['hog', 'spearman', 'spearman_abs', 'ssim'], [1.0, 1.0])
    """
    if reference.shape != maps.shape or reference.dim() != 4:
        raise ValueError(
            f"maps must be (B, C, H, W) and match the reference maps {tuple(reference.shape)}, got {tuple(maps.shape)}"
        )
    ref64, map64 = reference.detach().to(torch.float64), maps.detach().to(torch.float64)
    out = {
        "spearman_abs": spearman(ref64.abs().sum(1), map64.abs().sum(1)),
        "spearman": spearman(ref64.sum(1), map64.sum(1)),
    }
    ref_n, map_n = normalise_abs_map(ref64), normalise_abs_map(map64)
    height, width = ref_n.shape[-2:]
    nan = torch.full((ref_n.shape[0],), math.nan, dtype=torch.float64, device=ref_n.device)
    out["ssim"] = ssim(ref_n, map_n) if min(height, width) >= 7 else nan
    out["hog"] = pearson(hog_features(ref_n), hog_features(map_n)) if min(height, width) >= 24 else nan
    return out


# ----------------------------------------------------------------------------- methods


def _captum_builder(cls: type, kwargs: Dict[str, Any]) -> MethodBuilder:
    def build(model: nn.Module) -> Explainer:
        method = cls(model)
        return lambda inputs, target: method.attribute(inputs, target=target, **kwargs)

    return build


def _as_builder(method: Any, name: str) -> MethodBuilder:
    from captum.attr import Attribution

    if isinstance(method, type) and issubclass(method, Attribution):
        return _captum_builder(method, {})
    if hasattr(method, "build") and callable(method.build):  # a benchmark MethodSpec
        return method.build
    if callable(method):
        return method
    raise TypeError(
        f"method {name!r} must be a Captum Attribution class, a MethodSpec or a callable "
        f"build(model) -> explain(inputs, target), got {type(method).__name__}"
    )


def _method_name(method: Any) -> str:
    if isinstance(method, type):
        return method.__name__
    return str(getattr(method, "name", getattr(method, "__name__", type(method).__name__)))


def resolve_methods(methods: Any) -> Dict[str, MethodBuilder]:
    """Normalise ``methods`` to ``{name: build(model) -> explain(inputs, target)}``.

    Args:
        methods: a mapping ``name -> method``, a sequence of methods, or one method, where a
            method is a Captum ``Attribution`` class (``attribute(inputs, target=target)`` with
            its defaults), a benchmark ``MethodSpec``, or a callable ``build(model)`` returning
            ``explain(inputs, target) -> maps``.

    Returns:
        dict: name -> builder, in the given order.

    Examples::

        >>> from captum.attr import Saliency
        >>> list(resolve_methods([Saliency]))
        ['Saliency']
    """
    if isinstance(methods, Mapping):
        items = list(methods.items())
    elif isinstance(methods, (list, tuple)):
        items = [(_method_name(m), m) for m in methods]
    else:
        items = [(_method_name(methods), methods)]
    if not items:
        raise ValueError("`methods` must name at least one method")
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(f"`methods` has duplicate names: {names}; pass a mapping name -> method")
    return {str(name): _as_builder(m, str(name)) for name, m in items}


# ----------------------------------------------------------------------------- randomisation


def randomisation_layers(model: nn.Module) -> List[str]:
    """The default stages: every module owning parameters, from the last registered to the first.

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(),
        ...                           torch.nn.Linear(2, 2))
        >>> randomisation_layers(net)
        ['3', '0']
    """
    names = [name for name, module in model.named_modules() if next(module.parameters(recurse=False), None) is not None]
    return names[::-1]


def _check_layers(model: nn.Module, layers: Optional[Sequence[str]]) -> List[str]:
    if layers is None:
        names = randomisation_layers(model)
    else:
        if isinstance(layers, str) or not all(isinstance(n, str) for n in layers):
            raise TypeError("`layers` must be a sequence of module names (str)")
        names = list(layers)
    modules = dict(model.named_modules())
    for name in names:
        if name not in modules:
            raise ValueError(f"`layers` names {name!r}, which is not a module of the model")
        if next(modules[name].parameters(), None) is None:
            raise ValueError(f"`layers` names {name!r}, which has no parameters to randomise")
    if not names:
        raise ValueError("the model has no parameters to randomise")
    return names


def _redraw(module: nn.Module, std: float, generator: torch.Generator) -> None:
    with torch.no_grad():
        for param in module.parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float64) * std
            param.copy_(noise.to(device=param.device, dtype=param.dtype))


def _explain_all(explain: Explainer, inputs: Tensor, target: Tensor, batch_size: int) -> Tensor:
    maps = []
    for lo in range(0, inputs.shape[0], batch_size):
        out = explain(inputs[lo:lo + batch_size], target[lo:lo + batch_size])
        if isinstance(out, tuple):
            out = out[0]
        maps.append(out.detach())
    maps_t = torch.cat(maps)
    if maps_t.dim() == 3:
        maps_t = maps_t.unsqueeze(1)
    if maps_t.dim() != 4 or maps_t.shape[0] != inputs.shape[0] or maps_t.shape[2:] != inputs.shape[2:]:
        raise ValueError(f"a method returned maps of shape {tuple(maps_t.shape)} for inputs {tuple(inputs.shape)}")
    return maps_t


@dataclass
class SanityResult:
    """Similarities of every method's maps to its maps on the trained model, per stage.

    Attributes:
        stages (list of str): ``"original"``, then the layer randomised at each stage.
        similarities (dict): method -> measure -> (S, B) float64 (S stages, B images).
        mode (str): ``"cascading"`` or ``"independent"``.
        maps (dict): method -> (S, K, H, W) ``|a|`` maps of the first K images (for plotting).
    """

    stages: List[str]
    similarities: Dict[str, Dict[str, Tensor]]
    mode: str = "cascading"
    maps: Dict[str, Tensor] = field(default_factory=dict)

    def curve(self, method: str, measure: str = "spearman_abs") -> Tensor:
        """(S,) mean similarity over the images at each stage (NaNs left out)."""
        return self.similarities[method][measure].nanmean(dim=1)

    def summary(self, measure: str = "spearman_abs") -> Dict[str, float]:
        """Mean similarity over the randomised stages and the images, per method (lower = passes)."""
        return {m: float(values[measure][1:].nanmean()) for m, values in self.similarities.items()}

    def passed(self, threshold: float = 0.5, measure: str = "spearman_abs") -> Dict[str, bool]:
        """Whether each method's :meth:`summary` is below ``threshold`` (NaN counts as failed)."""
        return {m: bool(v < threshold) for m, v in self.summary(measure).items()}

    def markdown(self, threshold: float = 0.5) -> str:
        """A table: per method, the mean over stages and the value at the last stage of each measure."""
        header = ["method"] + [f"{m} mean ↓" for m in MEASURES] + [f"{m} last ↓" for m in MEASURES] + ["passes"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        passed = self.passed(threshold)
        for method in self.similarities:
            means = [self.summary(m)[method] for m in MEASURES]
            lasts = [float(self.curve(method, m)[-1]) for m in MEASURES]
            cells = [method] + [f"{v:.3f}" for v in means + lasts] + ["yes" if passed[method] else "no"]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def plot(self, path: Optional[str] = None, measures: Sequence[str] = MEASURES):
        """Similarity against stage, one panel per measure, one line (mean ± std) per method.

        Returns the matplotlib figure; saves it to ``path`` when given.
        """
        import matplotlib

        if path is not None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(measures), figsize=(4.0 * len(measures), 3.6), squeeze=False)
        x = list(range(len(self.stages)))
        for ax, measure in zip(axes[0], measures):
            for method, values in self.similarities.items():
                mean = values[measure].nanmean(dim=1).cpu().numpy()
                finite = torch.isfinite(values[measure])
                centred = torch.where(finite, values[measure] - values[measure].nanmean(dim=1, keepdim=True), 0.0)
                std = (centred.pow(2).sum(1) / finite.sum(1).clamp_min(1)).sqrt().cpu().numpy()
                ax.plot(x, mean, marker="o", markersize=3, label=method)
                ax.fill_between(x, mean - std, mean + std, alpha=0.15)
            ax.set_title(f"{measure} ({self.mode})")
            ax.set_xticks(x)
            ax.set_xticklabels(self.stages, rotation=60, ha="right", fontsize=7)
            ax.set_ylim(-1.05 if measure in ("spearman", "hog") else -0.05, 1.05)
            ax.axhline(0.0, color="gray", lw=0.5)
        axes[0][0].set_ylabel("similarity to the trained model's map")
        axes[0][-1].legend(fontsize=7, loc="best")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
            plt.close(fig)
        return fig

    def plot_maps(self, path: Optional[str] = None, image: int = 0):
        """The Adebayo figure: one row per method, one column per stage, normalised ``|a|`` maps."""
        import matplotlib

        if path is not None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if not self.maps:
            raise ValueError("no maps were kept; run with keep_maps >= 1")
        rows, cols = len(self.maps), len(self.stages)
        fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols + 1, 1.2 * rows + 0.6), squeeze=False)
        for i, (method, maps) in enumerate(self.maps.items()):
            for j in range(cols):
                ax = axes[i][j]
                ax.imshow(maps[j, image].cpu().numpy(), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(self.stages[j], fontsize=6, rotation=45, ha="left", loc="left")
                if j == 0:
                    ax.set_ylabel(method, fontsize=7)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
            plt.close(fig)
        return fig


@log_usage()
def cascading_randomisation(
    model: Union[nn.Module, Callable[[], nn.Module]],
    methods: Any,
    inputs: Tensor,
    target: Union[int, Sequence[int], Tensor],
    layers: Optional[Sequence[str]] = None,
    mode: str = "cascading",
    std: float = 0.1,
    init: Optional[Callable[[nn.Module], None]] = None,
    seed: int = 0,
    batch_size: int = 16,
    keep_maps: int = 1,
    progress: bool = False,
) -> SanityResult:
    """Model-parameter randomisation test of one or more attribution methods.

    A deep copy of the model (or a model from the factory, also copied) is randomised layer by
    layer from the top; at each stage every method is rebuilt on the copy and its maps compared
    with its maps on the trained model. The user's model is never changed.

    Args:
        model (nn.Module or callable): the trained model, or a factory returning it.
        methods: a mapping ``name -> method``, a list of methods or one method; a method is a
            Captum ``Attribution`` class, a benchmark ``MethodSpec`` or a callable
            ``build(model) -> explain(inputs, target) -> maps (B, C, H, W)``.
        inputs (Tensor): images (B, C, H, W).
        target (int, sequence or Tensor): class per image.
        layers (sequence of str, optional): module names in the order they are randomised;
            default :func:`randomisation_layers` (every parameter-owning module, top first).
        mode (str): ``"cascading"`` (stage k randomises the first k layers) or
            ``"independent"`` (stage k randomises layer k alone). Default ``"cascading"``.
        std (float): standard deviation of the N(0, std^2) re-draw of every weight and bias.
            Default 0.1 (the pathway paper).
        init (callable, optional): ``init(module)`` re-initialises a module in place instead
            (e.g. ``lambda m: m.reset_parameters()``); ``std`` and ``seed`` are then unused.
        seed (int): seed of the re-draw. Default 0.
        batch_size (int): images per method call. Default 16.
        keep_maps (int): keep the normalised maps of this many images for :meth:`plot_maps`.
        progress (bool): show a progress bar. Default False.

    Returns:
        SanityResult: per method, measure and stage, the similarity of each image's map.

    Examples::

        >>> from captum.attr import Saliency
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
        ...                           torch.nn.Flatten(), torch.nn.Linear(4 * 32 * 32, 2))
        >>> result = cascading_randomisation(net, [Saliency], torch.rand(2, 3, 32, 32), target=0)
        >>> result.stages, result.similarities["Saliency"]["ssim"].shape
        (['original', '3', '0'], torch.Size([3, 2]))
    """
    check_image_batch("inputs", inputs)
    check_int_at_least("batch_size", batch_size, 1)
    check_int_at_least("keep_maps", keep_maps, 0)
    check_positive("std", std)
    if mode not in ("cascading", "independent"):
        raise ValueError(f"`mode` must be 'cascading' or 'independent', got {mode!r}")
    if init is not None and not callable(init):
        raise TypeError(f"`init` must be callable, got {type(init).__name__}")
    builders = resolve_methods(methods)
    if isinstance(model, nn.Module):
        work = copy.deepcopy(model)
    elif callable(model):
        built = model()
        if not isinstance(built, nn.Module):
            raise TypeError(f"the model factory must return an nn.Module, got {type(built).__name__}")
        work = copy.deepcopy(built)
    else:
        raise TypeError(f"`model` must be an nn.Module or a factory, got {type(model).__name__}")
    names = _check_layers(work, layers)
    target_t = torch.as_tensor(target, device=inputs.device).long()
    target_t = target_t.expand(inputs.shape[0]).clone() if target_t.dim() == 0 else target_t
    if target_t.shape != (inputs.shape[0],):
        raise ValueError(f"`target` must be an int or have shape ({inputs.shape[0]},), got {tuple(target_t.shape)}")

    modules = dict(work.named_modules())
    trained_state = {k: v.detach().clone() for k, v in work.state_dict().items()}
    generator = torch.Generator().manual_seed(int(seed))

    def all_maps() -> Dict[str, Tensor]:
        return {name: _explain_all(build(work), inputs, target_t, batch_size) for name, build in builders.items()}

    reference = all_maps()
    per_stage: List[Dict[str, Dict[str, Tensor]]] = [
        {n: map_similarities(ref, ref) for n, ref in reference.items()}
    ]
    kept: Dict[str, List[Tensor]] = {n: [] for n in builders}

    def keep(maps: Dict[str, Tensor]) -> None:
        if keep_maps > 0:
            for n in builders:
                kept[n].append(normalise_abs_map(maps[n][:keep_maps]))

    keep(reference)
    stages = names
    if progress:
        from tqdm.auto import tqdm

        stages = tqdm(names, desc="randomising", unit="layer")
    for name in stages:
        if mode == "independent":
            work.load_state_dict(trained_state)
        if init is not None:
            init(modules[name])
        else:
            _redraw(modules[name], std, generator)
        maps = all_maps()
        per_stage.append({n: map_similarities(reference[n], maps[n]) for n in builders})
        keep(maps)
    similarities = {
        n: {m: torch.stack([stage[n][m] for stage in per_stage]).cpu() for m in MEASURES} for n in builders
    }
    maps_out = {n: torch.stack(v).cpu() for n, v in kept.items()} if keep_maps > 0 else {}
    return SanityResult(["original"] + list(names), similarities, mode, maps_out)
