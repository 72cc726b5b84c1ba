"""The ``evaluate`` runner: a shard of image indices is the unit of work.

Stable API (used by ``captum-ext evaluate``, torchrun ranks and Ray actors)::

    job = build_job(config)                  # data, model, methods, metrics; validated
    run_indices(job, indices, out_dir, resume=True, rank=0)   # rows/<rank>-<n>.csv per batch
    done = completed_indices(out_dir, job.method_names)       # what a resume skips
    summarize(out_dir, reference="Saliency")                  # captum_ext.evaluate.summary

Every value of a row depends only on (seed, image index, method), up to float rounding for
the methods explained a batch at a time (below): the global torch RNG is seeded by
``derive_seed(seed, image_index)`` before each method and each metric, every seeded draw of a
metric is keyed by the image's seed, and a method is rebuilt for each call (so its own generator
starts afresh). So rows do not depend on the batch size, the order or the sharding, and a
killed run resumed with ``resume=True`` gives exactly the rows of an uninterrupted one (the
same batches are formed again).

Two ways of explaining a batch of ``batch_size`` images:

- **one image per call** (the default; always for stochastic or batch-dependent methods): each
  image is explained and scored on its own (the perturbed copies of one image are batched);
  rows are bit-identical whatever the batching;
- **the batch in one call** with ``EvalConfig.batch_methods`` (``--batch-methods``) for the
  methods of :data:`BATCH_INVARIANT_METHODS` (deterministic, each image's map computed from
  that image alone): the images are explained together and the
  metric columns score them together (up to ``max_examples_per_batch`` perturbed rows per
  forward). A value then differs from the one-image-per-call value only by the rounding of
  batched forwards and backwards (measured on CPU: within 1e-6; a ranking can flip where two
  pixels' scores are that close). ``seconds`` and ``metric_seconds`` are the batch's times
  divided by its number of images.
"""

import csv
import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from captum_ext._checks import check_choice, check_int_at_least
from captum_ext._utils import derive_seed, preserved_model_state
from captum_ext.evaluate.columns import Column, ColumnContext, curve_fractions, select_columns
from captum_ext.evaluate.config import DEFAULT_METHODS, EvalConfig, selector_matches

__all__ = [
    "EvalJob",
    "RESUMABLE_SETTINGS",
    "VALUES_VERSION",
    "build_job",
    "check_out_dir",
    "completed_indices",
    "read_rows",
    "run_indices",
]

Explainer = Callable[[Tensor, Tensor], Tensor]

#: Registered methods whose map of an image does not depend on the other images of the batch
#: and that draw nothing at random (Captum's gradient and occlusion methods with the registry's
#: fixed baselines): :func:`run_indices` explains a batch of them in one call. Not here:
#: ``GradientShap`` (random baselines and noise from the global RNG), ``Random`` (seeded by the
#: batch size), NeFLAG, IProp and the pruning and inpainting rows (their solvers or samples are
#: chunked over the batch). A method spec with a ``batch_invariant`` attribute overrides this.
BATCH_INVARIANT_METHODS = frozenset({"Saliency", "InputXGradient", "IntegratedGradients", "DeepLift", "Occlusion"})

#: Row fields before the metric values.
ID_FIELDS = ("index", "image_id", "method", "label", "target", "seconds", "metric_seconds")

#: Raised whenever a change of captum-ext changes the values a run writes with the same settings,
#: so that ``--resume`` never mixes rows of the two (``run.json`` records it; a ``run.json``
#: without it is version 1). 2: ROAD's noise is drawn in float32 and its solver's coarsest grid
#: is solved exactly (the ROAD values move by the noise's redraw).
VALUES_VERSION = 2

#: Settings that change no written value, or only by float rounding (``device``, the batching):
#: a resumed run may change them. Every other setting must equal the interrupted run's.
RESUMABLE_SETTINGS = frozenset({"out", "resume", "progress", "grid_images", "reference", "batch_size",
                                "max_examples_per_batch", "max_images", "device", "batch_methods"})


def _pyarrow_available() -> bool:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class EvalJob:
    """A validated run: what :func:`run_indices` needs, built once per process.

    Attributes:
        config (EvalConfig): the options.
        dataset (Dataset): yields ``(image, label)`` or ``(image, label, mask)``.
        model (nn.Module): the classifier on ``config.device`` (taking [0, 1] images).
        image_ids (list of str): one id per dataset index.
        methods (dict): method name -> ``factory()`` returning a fresh ``explain(inputs, target)``.
        columns (list of Column): the metric columns.
        has_masks (bool): whether the dataset yields masks.
        image_size (tuple): (H, W) of the first image.
        indices (list of int): every index the run covers (``max_images`` applied).
        batched (set of str): the methods explained a batch at a time (see the module docstring).
    """

    config: EvalConfig
    dataset: Dataset
    model: nn.Module
    image_ids: List[str]
    methods: Dict[str, Callable[[], Explainer]]
    columns: List[Column]
    has_masks: bool
    image_size: Tuple[int, int]
    indices: List[int]
    batched: Set[str] = field(default_factory=set)

    @property
    def method_names(self) -> List[str]:
        return list(self.methods)

    def manifest(self) -> Dict[str, Any]:
        """What the summary needs to read the rows: value directions, curves' x, the reference."""
        values: Dict[str, bool] = {}
        curves: Dict[str, List[float]] = {}
        for column in self.columns:
            values.update(column.values)
            for name in column.curves:
                curves[name] = list(curve_fractions(*self.image_size))
        config = asdict(self.config)
        return {"methods": self.method_names, "values": values, "curves": curves, "n_images": len(self.indices),
                "reference": self.config.reference, "grid_images": self.config.grid_images, "config": config,
                "values_version": VALUES_VERSION}


def batch_invariant(spec: Any) -> bool:
    """Whether a registered method may explain a batch of images in one call (its
    ``batch_invariant`` attribute, else membership in :data:`BATCH_INVARIANT_METHODS`)."""
    flag = getattr(spec, "batch_invariant", None)
    return bool(flag) if flag is not None else spec.name in BATCH_INVARIANT_METHODS


def _method_factories(config: EvalConfig, model: nn.Module) -> Dict[str, Callable[[], Explainer]]:
    from captum_ext.benchmark.registry import available_methods

    registry = available_methods()
    names = list(config.methods) if config.methods else [n for n in DEFAULT_METHODS if n in registry]
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise ValueError(f"--methods: unknown method(s) {unknown}; see `captum-ext evaluate --list`")
    if not names:
        raise ValueError("--methods: no method to run")
    names = list(dict.fromkeys(names))
    for selector in config.options:
        if not any(selector_matches(selector, n, registry[n].group) for n in names):
            raise ValueError(f"--option/--config: {selector!r} matches none of the methods {names}")
    factories: Dict[str, Callable[[], Explainer]] = {}
    for name in names:
        spec = registry[name]
        options: Dict[str, Any] = {}
        for selector, values in config.options.items():
            if selector_matches(selector, name, spec.group):
                options.update(values)

        def factory(spec=spec, options=options) -> Explainer:
            return spec.build(model, **options)

        try:
            factory()  # build once now: a wrong option fails before any long work
        except TypeError as error:
            raise ValueError(f"--option: method {name} does not accept options {sorted(options)}: {error}") from None
        factories[name] = factory
    if config.reference is not None and config.reference not in factories:
        raise ValueError(f"--reference: {config.reference!r} is not one of the methods {names}")
    return factories


def _prepare_model(config: EvalConfig, model: Optional[nn.Module]) -> nn.Module:
    from captum_ext.evaluate.data import parse_normalization
    from captum_ext.evaluate.models import Normalized, load_model

    if model is None:
        if not config.model:
            raise ValueError("--model: required")
        kwargs = {} if config.num_classes is None else {"num_classes": config.num_classes}
        model = load_model(config.model, config.weights, config.trust_pickle, kwargs)
    normalization = parse_normalization(config.mean, config.std)
    if normalization is not None:
        model = Normalized(model, *normalization)
    try:
        device = torch.device(config.device)
    except RuntimeError as error:
        raise ValueError(f"--device: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device: {config.device} requested but CUDA is not available")
    return model.to(device)


def _prepare_dataset(config: EvalConfig, dataset: Optional[Dataset]) -> Tuple[Dataset, List[str]]:
    if dataset is not None:
        ids = getattr(dataset, "image_ids", None)
        return dataset, list(ids) if ids is not None else [str(i) for i in range(len(dataset))]  # type: ignore[arg-type]
    from captum_ext.evaluate.data import ImageFolderDataset

    if not config.data:
        raise ValueError("--data: required")
    folder = ImageFolderDataset(config.data, config.labels, config.masks, config.boxes, config.resize, config.crop)
    folder.validate()
    return folder, folder.image_ids


def _split_item(item: Any, index: int) -> Tuple[Tensor, int, Optional[Tensor]]:
    if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
        raise ValueError(f"dataset item {index} must be (image, label) or (image, label, mask), "
                         f"got {type(item).__name__}")
    image, label = item[0], int(item[1])
    mask = item[2] if len(item) == 3 else None
    if not isinstance(image, Tensor) or image.dim() != 3:
        raise ValueError(f"dataset item {index}: the image must be a (C, H, W) tensor, "
                         f"got {getattr(image, 'shape', type(image).__name__)}")
    if mask is not None:
        mask = torch.as_tensor(mask).float()
        mask = mask[None] if mask.dim() == 2 else mask
        if mask.shape != (1,) + tuple(image.shape[1:]):
            raise ValueError(f"dataset item {index}: mask of shape {tuple(mask.shape)} does not match the image "
                             f"{tuple(image.shape)}")
    return image.float(), label, mask


def build_job(config: EvalConfig, dataset: Optional[Dataset] = None, model: Optional[nn.Module] = None) -> EvalJob:
    """Load and check everything before any long work.

    Args:
        config (EvalConfig): the run's options.
        dataset (Dataset, optional): instead of ``config.data``: yields ``(image, label)`` or
            ``(image, label, mask)`` with images (C, H, W) in [0, 1]; ids from its
            ``image_ids`` attribute when it has one, else the indices.
        model (nn.Module, optional): instead of ``config.model`` (moved to ``config.device``).

    Returns:
        EvalJob

    Raises:
        ValueError: naming the argument or file (the CLI prints it and exits with code 2).
    """
    check_choice("target", config.target, ("label", "predicted"))
    check_int_at_least("batch_size", config.batch_size, 1)
    check_int_at_least("max_examples_per_batch", config.max_examples_per_batch, 1)
    check_int_at_least("grid_images", config.grid_images, 0)
    if config.max_images is not None:
        check_int_at_least("max_images", config.max_images, 1)
    if config.inpainter is not None and not isinstance(config.inpainter, (int, float)):
        from captum_ext.inpaint.registry import resolve_inpainter

        try:
            resolve_inpainter(config.inpainter)
        except (ValueError, TypeError) as error:
            raise ValueError(f"--inpainter: {error}") from None
    dataset, image_ids = _prepare_dataset(config, dataset)
    n = len(dataset)  # type: ignore[arg-type]
    if n == 0:
        raise ValueError("--data: the dataset is empty")
    model = _prepare_model(config, model)
    image, label, mask = _split_item(dataset[0], 0)
    with preserved_model_state(model), torch.no_grad():
        model.eval()
        try:
            output = model(image[None].to(_model_device(model)))
        except Exception as error:
            raise ValueError(f"--model: the model fails on the first image ({tuple(image.shape)}): {error}") from None
    if not isinstance(output, Tensor) or output.dim() != 2:
        raise ValueError(f"--model: expected (batch, classes) scores, got {getattr(output, 'shape', type(output))}")
    if config.target == "label" and not 0 <= label < output.shape[1]:
        raise ValueError(f"label {label} of image {image_ids[0]} is outside the model's {output.shape[1]} classes")
    columns = select_columns(config.metrics, mask is not None)
    methods = _method_factories(config, model)
    indices = list(range(n if config.max_images is None else min(n, config.max_images)))
    from captum_ext.benchmark.registry import available_methods

    registry = available_methods()
    batched = set() if not config.batch_methods else {name for name in methods if batch_invariant(registry[name])}
    return EvalJob(config, dataset, model, image_ids, methods, columns, mask is not None,
                   (int(image.shape[1]), int(image.shape[2])), indices, batched)


def _model_device(model: nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def check_out_dir(out_dir: "str | Path", resume: bool, config: Optional[EvalConfig] = None) -> None:
    """The output folder can be written, holds no rows unless resuming, and a resumed run has
    the interrupted run's settings.

    Call it once per run before any rows are written (with several processes: on one of them,
    before the others start writing), not from every worker.

    Args:
        out_dir (str or Path): the output folder.
        resume (bool): whether rows of an earlier run may be there (and are continued).
        config (EvalConfig, optional): the new run's settings; with ``resume``, compared with
            the ``run.json`` of the earlier run: every setting outside
            :data:`RESUMABLE_SETTINGS` must be equal, and the earlier run must have been written
            by a captum-ext of the same :data:`VALUES_VERSION`, else its rows and the new ones
            would be mixed in one summary.

    Raises:
        ValueError: naming ``--out`` (or ``--resume`` and the settings that differ).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {out} exists and is not a folder")
    if not resume and any(_row_files(out)):
        raise ValueError(f"--out: {out} holds rows of an earlier run; pass --resume to continue it or choose "
                         "another folder")
    if resume and config is not None:
        _check_same_settings(out, config)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ValueError(f"--out: cannot write to {out}: {error}") from None


def _check_same_settings(out: Path, config: EvalConfig) -> None:
    manifest_path = out / "run.json"
    if not manifest_path.is_file():
        return  # nothing was written yet (run.json is written before the first row)
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"--resume: cannot read {manifest_path}: {error}") from None
    version = manifest.get("values_version", 1)
    if version != VALUES_VERSION:
        raise ValueError(f"--resume: the rows in {out} were written by a captum-ext whose values differ from "
                         f"this one's (values version {version}, now {VALUES_VERSION}); start a new --out")
    earlier = manifest.get("config", {})
    now = json.loads(json.dumps(asdict(config), default=str))
    differ = [key for key in sorted(set(earlier) | set(now))
              if key not in RESUMABLE_SETTINGS and earlier.get(key) != now.get(key)]
    if differ:
        changes = ", ".join(f"{key} {earlier.get(key)!r} -> {now.get(key)!r}" for key in differ)
        raise ValueError(f"--resume: settings differ from the run in {out}: {changes}; resume with the same "
                         "settings or choose another --out")


# ----------------------------------------------------------------------------------- rows I/O


def _row_files(out_dir: Path) -> List[Path]:
    rows = Path(out_dir) / "rows"
    if not rows.is_dir():
        return []
    return sorted(p for p in rows.iterdir() if p.suffix in (".csv", ".parquet"))


def _format(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _write_rows(path_stem: Path, rows: List[Dict[str, Any]]) -> Path:
    """Write ``rows`` atomically (a kill never leaves half a file) as Parquet or CSV."""
    fields = list(rows[0])
    if _pyarrow_available():
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = path_stem.with_suffix(".parquet")
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(pa.Table.from_pylist(rows), tmp)
    else:
        path = path_stem.with_suffix(".csv")
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(fields)
            for row in rows:
                writer.writerow([_format(row.get(f, "")) for f in fields])
    os.replace(tmp, path)
    return path


def _parse(field: str, text: str) -> Any:
    if field in ("index", "label", "target"):
        return int(text)
    if field in ("image_id", "method") or field.endswith("_curve"):
        return text
    try:
        return float(text)
    except ValueError:
        return text


def read_rows(out_dir: "str | Path") -> List[Dict[str, Any]]:
    """Every row written under ``out_dir/rows`` (CSV and Parquet), one per (index, method).

    Rows are sorted by (index, method); a (index, method) written twice keeps its first file's row.
    """
    seen: Dict[Tuple[int, str], Dict[str, Any]] = {}
    for path in _row_files(Path(out_dir)):
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            rows = pq.read_table(path).to_pylist()
        else:
            with open(path, newline="") as handle:
                rows = [{k: _parse(k, v) for k, v in row.items()} for row in csv.DictReader(handle)]
        for row in rows:
            seen.setdefault((int(row["index"]), str(row["method"])), row)
    return [seen[key] for key in sorted(seen)]


def completed_indices(out_dir: "str | Path", method_names: Sequence[str]) -> Set[int]:
    """Image indices that have a written row for every method in ``method_names``."""
    methods: Dict[int, Set[str]] = {}
    for row in read_rows(out_dir):
        methods.setdefault(int(row["index"]), set()).add(str(row["method"]))
    wanted = set(method_names)
    return {index for index, names in methods.items() if wanted <= names}


def _next_file_number(out_dir: Path, tag: str) -> int:
    numbers = [-1]
    for path in _row_files(out_dir):
        stem_tag, _, number = path.stem.rpartition("-")
        if stem_tag == tag and number.isdigit():
            numbers.append(int(number))
    return max(numbers) + 1


# ------------------------------------------------------------------------------------ running


def _curve_text(values: Tensor) -> str:
    return " ".join(repr(float(v)) for v in values.tolist())


@dataclass
class _Item:
    """One image of a batch, ready for the methods."""

    index: int
    image: Tensor  # (C, H, W) on the model's device
    label: int
    mask: Optional[Tensor]  # (1, H, W) on the model's device
    target: int
    seed: int


def _load_item(job: EvalJob, index: int, device: torch.device) -> _Item:
    image, label, mask = _split_item(job.dataset[index], index)
    inputs = image.to(device)
    if job.config.target == "predicted":
        with torch.no_grad():  # one image per forward: the target never depends on the batch
            target = int(job.model(inputs[None]).argmax(1).item())
    else:
        target = label
    return _Item(index, inputs, label, None if mask is None else mask.to(device), target,
                 derive_seed(job.config.seed, index))


def _groups(items: List[_Item], batched: bool) -> List[List[_Item]]:
    """The calls of one method: every image alone, or the images of one shape together."""
    if not batched:
        return [[item] for item in items]
    by_shape: Dict[Tuple[int, ...], List[_Item]] = {}
    for item in items:
        by_shape.setdefault(tuple(item.image.shape), []).append(item)
    return list(by_shape.values())


def _explain_group(job: EvalJob, name: str, group: List[_Item]) -> Tuple[List[Dict[str, Any]], Tensor]:
    """Rows of ``group`` (explained in one call) for the method ``name``, and its maps (on CPU)."""
    config = job.config
    inputs = torch.stack([item.image for item in group])
    masks = None if any(item.mask is None for item in group) else torch.stack([item.mask for item in group])  # type: ignore[misc]
    target_t = torch.tensor([item.target for item in group], device=inputs.device)
    seed = group[0].seed
    options = {"inpainter": config.inpainter, "max_examples_per_batch": config.max_examples_per_batch,
               "abs": config.abs}
    torch.manual_seed(seed)
    explain = job.methods[name]()
    start = time.perf_counter()
    with warnings.catch_warnings():  # Captum's note, once per image, would flood the output
        warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients")
        attributions = explain(inputs, target_t)
    seconds = (time.perf_counter() - start) / len(group)
    if isinstance(attributions, tuple):
        attributions = attributions[0]
    attributions = attributions.detach()
    finite = torch.isfinite(attributions.flatten(1)).all(dim=1).tolist()
    for item, ok in zip(group, finite):
        if not ok:
            warnings.warn(f"{name} gave a non-finite map for image {job.image_ids[item.index]}; its metrics are NaN",
                          RuntimeWarning, stacklevel=3)
    keep = [k for k, ok in enumerate(finite) if ok]
    values: List[Dict[str, Any]] = [{} for _ in group]
    start = time.perf_counter()
    if keep:
        rows = torch.tensor(keep, device=inputs.device) if len(keep) < len(group) else None
        pick = (lambda t: t) if rows is None else (lambda t: t[rows])
        context = ColumnContext(job.model, pick(inputs), pick(target_t), pick(attributions),
                                None if masks is None else pick(masks), explain, [group[k].seed for k in keep],
                                options)
        for column in job.columns:
            torch.manual_seed(seed)
            for key, value in column.fn(context).items():
                value = value.detach().cpu()
                for j, k in enumerate(keep):
                    values[k][key] = _curve_text(value[j]) if key in column.curves else float(value[j])
    metric_seconds = (time.perf_counter() - start) / len(group)
    out = []
    for k, item in enumerate(group):
        row: Dict[str, Any] = {"index": item.index, "image_id": job.image_ids[item.index], "method": name,
                               "label": item.label, "target": item.target, "seconds": seconds,
                               "metric_seconds": metric_seconds}
        if not finite[k]:
            for column in job.columns:
                values[k].update({v: math.nan for v in column.values})
                values[k].update({c: "" for c in column.curves})
        row.update(values[k])
        out.append(row)
    return out, attributions.cpu()


def _evaluate_batch(job: EvalJob, indices: Sequence[int], out_dir: Path) -> List[Dict[str, Any]]:
    """Rows of the images ``indices``: image-major, the methods in their order."""
    config = job.config
    device = _model_device(job.model)
    items = [_load_item(job, index, device) for index in indices]
    rows: Dict[int, List[Dict[str, Any]]] = {item.index: [] for item in items}
    maps: Dict[int, Dict[str, Tensor]] = {item.index: {} for item in items if item.index < config.grid_images}
    for name in job.methods:
        for group in _groups(items, name in job.batched):
            group_rows, attributions = _explain_group(job, name, group)
            for k, (item, row) in enumerate(zip(group, group_rows)):
                rows[item.index].append(row)
                if item.index in maps:
                    maps[item.index][name] = attributions[k]
    for item in items:
        if item.index in maps:
            maps_dir = out_dir / "maps"
            maps_dir.mkdir(parents=True, exist_ok=True)
            tmp = maps_dir / f"{item.index}.pt.tmp"
            torch.save({"image": item.image.cpu(), "mask": None if item.mask is None else item.mask.cpu(),
                        "image_id": job.image_ids[item.index], "maps": maps[item.index]}, tmp)
            os.replace(tmp, maps_dir / f"{item.index}.pt")
    return [row for item in items for row in rows[item.index]]


def write_manifest(job: EvalJob, out_dir: "str | Path") -> Path:
    """Write ``out_dir/run.json`` (what the summary needs besides the rows)."""
    path = Path(out_dir) / "run.json"
    tmp = path.with_name("run.json.tmp")
    tmp.write_text(json.dumps(job.manifest(), indent=2, default=str))
    os.replace(tmp, path)
    return path


def run_indices(
    job: EvalJob,
    indices: Sequence[int],
    out_dir: "str | Path",
    resume: bool = True,
    rank: Union[int, str] = 0,
    after_batch: Optional[Callable[[int], None]] = None,
) -> None:
    """Evaluate the images ``indices`` and write their rows, one file per batch.

    Args:
        job (EvalJob): from :func:`build_job`.
        indices (sequence of int): dataset indices (this process's shard).
        out_dir (str or Path): the output folder; rows go to ``out_dir/rows/<rank>-<n>.csv``
            (``.parquet`` when pyarrow is installed), ``n`` counting up from the last file of
            this ``rank``; the first ``grid_images`` images' maps to ``out_dir/maps/<index>.pt``;
            ``rank`` 0 also writes ``out_dir/run.json``.
        resume (bool): skip indices whose rows exist for every method. Default True.
        rank (int or str): the writer's tag (a rank, a shard or actor name). Default 0.
        after_batch (callable, optional): called with the number of batches written so far
            after each batch (a test hook, e.g. to interrupt the run).

    The model's state and the global RNG are restored when it returns or raises.
    """
    out = Path(out_dir)
    (out / "rows").mkdir(parents=True, exist_ok=True)
    tag = str(rank)
    if "/" in tag or tag != tag.strip() or not tag:
        raise ValueError(f"`rank` must be a plain name, got {rank!r}")
    if rank in (0, "0"):
        write_manifest(job, out)
    known = set(job.indices)
    bad = [i for i in indices if i not in known]
    if bad:
        raise ValueError(f"`indices` outside the run's {len(job.indices)} images: {bad[:5]}")
    done = completed_indices(out, job.method_names) if resume else set()
    todo = [int(i) for i in indices if int(i) not in done]
    number = _next_file_number(out, tag)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), unit="image", desc=f"evaluate[{tag}]", disable=not job.config.progress,
               dynamic_ncols=True)
    batches = 0
    try:
        with preserved_model_state(job.model, rng=True):
            job.model.eval()
            for start in range(0, len(todo), job.config.batch_size):
                batch = todo[start:start + job.config.batch_size]
                rows = _evaluate_batch(job, batch, out)
                bar.update(len(batch))
                _write_rows(out / "rows" / f"{tag}-{number:05d}", rows)
                number += 1
                batches += 1
                if after_batch is not None:
                    after_batch(batches)
    finally:
        bar.close()
