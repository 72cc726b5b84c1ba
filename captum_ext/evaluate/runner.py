"""The ``evaluate`` runner: a shard of image indices is the unit of work.

Stable API (used by ``captum-ext evaluate``, torchrun ranks and Ray actors)::

    job = build_job(config)                  # data, model, methods, metrics; validated
    run_indices(job, indices, out_dir, resume=True, rank=0)   # rows/<rank>-<n>.csv per batch
    done = completed_indices(out_dir, job.method_names)       # what a resume skips
    summarize(out_dir, reference="Saliency")                  # captum_ext.evaluate.summary

Every value of a row depends only on (seed, image index, method): each image is explained
and scored on its own (the perturbed copies of one image are batched), with the global torch
RNG seeded by ``derive_seed(seed, image_index)`` before each method and each metric, and the
method rebuilt for each image (so a method's own generator starts afresh). So rows do not
depend on the batch size, the order or the sharding, and a killed run resumed with
``resume=True`` gives exactly the rows of an uninterrupted one.
"""

import csv
import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass
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
    "build_job",
    "check_out_dir",
    "completed_indices",
    "read_rows",
    "run_indices",
]

Explainer = Callable[[Tensor, Tensor], Tensor]

#: Row fields before the metric values.
ID_FIELDS = ("index", "image_id", "method", "label", "target", "seconds", "metric_seconds")


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
                "reference": self.config.reference, "grid_images": self.config.grid_images, "config": config}


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
    return EvalJob(config, dataset, model, image_ids, methods, columns, mask is not None,
                   (int(image.shape[1]), int(image.shape[2])), indices)


def _model_device(model: nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def check_out_dir(out_dir: "str | Path", resume: bool) -> None:
    """The output folder can be written, and holds no rows unless resuming.

    Call it once per run before any rows are written (with several processes: on one of them,
    before the others start writing), not from every worker.

    Raises:
        ValueError: naming ``--out``.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {out} exists and is not a folder")
    if not resume and any(_row_files(out)):
        raise ValueError(f"--out: {out} holds rows of an earlier run; pass --resume to continue it or choose "
                         "another folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ValueError(f"--out: cannot write to {out}: {error}") from None


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


def _evaluate_image(job: EvalJob, index: int, out_dir: Path) -> List[Dict[str, Any]]:
    config = job.config
    image, label, mask = _split_item(job.dataset[index], index)
    device = _model_device(job.model)
    inputs = image[None].to(device)
    masks = None if mask is None else mask[None].to(device)
    if config.target == "predicted":
        with torch.no_grad():
            target = int(job.model(inputs).argmax(1).item())
    else:
        target = label
    target_t = torch.tensor([target], device=device)
    seed = derive_seed(config.seed, index)
    options = {"inpainter": config.inpainter, "max_examples_per_batch": config.max_examples_per_batch,
               "abs": config.abs}
    rows: List[Dict[str, Any]] = []
    maps: Dict[str, Tensor] = {}
    for name, factory in job.methods.items():
        torch.manual_seed(seed)
        explain = factory()
        start = time.perf_counter()
        with warnings.catch_warnings():  # Captum's note, once per image, would flood the output
            warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients")
            attributions = explain(inputs, target_t)
        seconds = time.perf_counter() - start
        if isinstance(attributions, tuple):
            attributions = attributions[0]
        attributions = attributions.detach()
        row: Dict[str, Any] = {"index": index, "image_id": job.image_ids[index], "method": name, "label": label,
                               "target": target, "seconds": seconds}
        context = ColumnContext(job.model, inputs, target_t, attributions, masks, explain, [seed], options)
        finite = bool(torch.isfinite(attributions).all())
        if not finite:
            warnings.warn(f"{name} gave a non-finite map for image {job.image_ids[index]}; its metrics are NaN",
                          RuntimeWarning, stacklevel=2)
        start = time.perf_counter()
        values: Dict[str, Any] = {}
        for column in job.columns:
            if not finite:
                values.update({v: math.nan for v in column.values})
                values.update({c: "" for c in column.curves})
                continue
            torch.manual_seed(seed)
            for key, value in column.fn(context).items():
                value = value.detach().cpu()
                values[key] = _curve_text(value[0]) if key in column.curves else float(value[0])
        row["metric_seconds"] = time.perf_counter() - start
        row.update(values)
        rows.append(row)
        if index < config.grid_images:
            maps[name] = attributions.cpu()[0]
    if index < config.grid_images:
        maps_dir = out_dir / "maps"
        maps_dir.mkdir(parents=True, exist_ok=True)
        tmp = maps_dir / f"{index}.pt.tmp"
        torch.save({"image": image, "mask": mask, "image_id": job.image_ids[index], "maps": maps}, tmp)
        os.replace(tmp, maps_dir / f"{index}.pt")
    return rows


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
                rows: List[Dict[str, Any]] = []
                for index in todo[start:start + job.config.batch_size]:
                    rows += _evaluate_image(job, index, out)
                    bar.update(1)
                _write_rows(out / "rows" / f"{tag}-{number:05d}", rows)
                number += 1
                batches += 1
                if after_batch is not None:
                    after_batch(batches)
    finally:
        bar.close()
