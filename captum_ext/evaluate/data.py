"""Image folders for ``captum-ext evaluate``: labels, ground-truth masks or boxes, preprocessing.

Layouts:

- torchvision ``ImageFolder``: ``DIR/<class>/<image>``; class indices are the sorted class
  folder names (torchvision's rule);
- a flat folder (images anywhere below ``DIR``) with ``labels``: a CSV ``file,label`` (the file
  relative to ``DIR``, the label an integer; a header row is allowed).

Ground truth (optional): ``masks``, a folder with the same relative names and a ``.png``
suffix (non-zero = object), or ``boxes``, a CSV ``file,x0,y0,x1,y1`` in pixels of the original
image, ``x0 <= x < x1``, several rows per image allowed. Masks and boxes go through the same
resize and crop as the image (nearest neighbour), so they stay aligned exactly.

Preprocessing: ``resize`` (the shorter side, as ``torchvision.transforms.Resize(int)``),
``crop`` (a centre square). Images stay in [0, 1]; the model's normalisation (``mean`` / ``std``)
is applied inside the model wrapper (:class:`captum_ext.evaluate.models.Normalized`), so the
fill of removed pixels and the figures work in image space.

Everything is validated by :meth:`ImageFolderDataset.validate` (headers only) before any
long work; errors are ``ValueError`` naming the file and the argument.
"""

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.utils.data import Dataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm")

#: Named normalisation presets for ``--mean/--std``.
NORMALIZATION_PRESETS: Dict[str, Tuple[Tuple[float, ...], Tuple[float, ...]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

Box = Tuple[float, float, float, float]


@dataclass(frozen=True)
class ImageRecord:
    """One image of a folder: its path, its id (path relative to the root, ``/``-separated), label."""

    path: Path
    image_id: str
    label: int


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _read_labels(labels: Path) -> Dict[str, int]:
    if not labels.is_file():
        raise ValueError(f"--labels: no such file: {labels}")
    out: Dict[str, int] = {}
    with open(labels, newline="") as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise ValueError(f"--labels: {labels}:{line_no}: expected 'file,label', got {row}")
            name, value = row[0].strip(), row[1].strip()
            try:
                out[Path(name).as_posix()] = int(value)
            except ValueError:
                if line_no == 1:
                    continue  # a header row
                raise ValueError(f"--labels: {labels}:{line_no}: label {value!r} is not an integer") from None
    return out


def _read_boxes(boxes: Path) -> Dict[str, List[Box]]:
    if not boxes.is_file():
        raise ValueError(f"--boxes: no such file: {boxes}")
    out: Dict[str, List[Box]] = {}
    with open(boxes, newline="") as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 5:
                raise ValueError(f"--boxes: {boxes}:{line_no}: expected 'file,x0,y0,x1,y1', got {row}")
            try:
                x0, y0, x1, y1 = (float(v) for v in row[1:])
            except ValueError:
                if line_no == 1:
                    continue  # a header row
                raise ValueError(f"--boxes: {boxes}:{line_no}: coordinates must be numbers, got {row[1:]}") from None
            if not (x1 > x0 and y1 > y0):
                raise ValueError(f"--boxes: {boxes}:{line_no}: need x0 < x1 and y0 < y1, got {row[1:]}")
            out.setdefault(Path(row[0].strip()).as_posix(), []).append((x0, y0, x1, y1))
    return out


def _image_size(path: Path, argument: str) -> Tuple[int, int]:
    """(height, width) from the header; ValueError naming the file if it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise ValueError(f"{argument}: cannot read image {path}: {error}") from None
    return height, width


def _load_rgb(path: Path) -> Tensor:
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except OSError as error:
        raise ValueError(f"--data: cannot read image {path}: {error}") from None
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)


def _load_mask(path: Path) -> Tensor:
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as image:
            array = np.asarray(image)
    except OSError as error:
        raise ValueError(f"--masks: cannot read mask {path}: {error}") from None
    nonzero = array.any(axis=-1) if array.ndim == 3 else array != 0
    return torch.from_numpy(np.ascontiguousarray(nonzero)).float()[None]


def boxes_to_mask(boxes: Sequence[Box], height: int, width: int) -> Tensor:
    """Rasterise boxes ``(x0, y0, x1, y1)`` (pixel ``(x, y)`` inside when ``x0 <= x + 0.5 < x1``).

    Examples::

        >>> boxes_to_mask([(1, 0, 3, 1)], 2, 4)[0].tolist()
        [[0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    """
    centers_y = torch.arange(height, dtype=torch.float64) + 0.5
    centers_x = torch.arange(width, dtype=torch.float64) + 0.5
    mask = torch.zeros(height, width, dtype=torch.bool)
    for x0, y0, x1, y1 in boxes:
        inside_y = (centers_y >= y0) & (centers_y < y1)
        inside_x = (centers_x >= x0) & (centers_x < x1)
        mask |= inside_y[:, None] & inside_x[None, :]
    return mask.float()[None]


def preprocess(
    image: Tensor, mask: Optional[Tensor], resize: Optional[int], crop: Optional[int]
) -> Tuple[Tensor, Optional[Tensor]]:
    """Resize the shorter side to ``resize`` and centre-crop ``crop``; the mask follows (nearest).

    Examples::

        >>> x, m = preprocess(torch.rand(3, 20, 40), torch.ones(1, 20, 40), resize=10, crop=8)
        >>> tuple(x.shape), tuple(m.shape)
        ((3, 8, 8), (1, 8, 8))
    """
    from torchvision.transforms.v2 import functional as F

    if resize is not None:
        image = F.resize(image, [resize], interpolation=F.InterpolationMode.BILINEAR, antialias=True)
        if mask is not None:
            mask = F.resize(mask, [resize], interpolation=F.InterpolationMode.NEAREST_EXACT)
    if crop is not None:
        image = F.center_crop(image, [crop, crop])
        if mask is not None:
            mask = F.center_crop(mask, [crop, crop])
    return image.clamp_(0.0, 1.0), mask


class ImageFolderDataset(Dataset):
    """An image folder as a dataset of ``(image, label)`` or ``(image, label, mask)``.

    Args:
        root (str or Path): the folder.
        labels (str or Path, optional): CSV ``file,label`` for a flat folder; without it the
            folder must have the ImageFolder layout.
        masks (str or Path, optional): folder of PNG masks with the images' relative names.
        boxes (str or Path, optional): CSV ``file,x0,y0,x1,y1``.
        resize (int, optional): shorter side after resizing.
        crop (int, optional): side of the centre crop.

    Examples::

        >>> import tempfile, numpy as np
        >>> from PIL import Image
        >>> root = Path(tempfile.mkdtemp())
        >>> (root / "cat").mkdir()
        >>> Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(root / "cat" / "a.png")
        >>> ds = ImageFolderDataset(root, resize=4)
        >>> ds.validate(); image, label = ds[0]
        >>> tuple(image.shape), label, ds.image_ids
        ((3, 4, 5), 0, ['cat/a.png'])
    """

    def __init__(
        self,
        root: "str | Path",
        labels: "str | Path | None" = None,
        masks: "str | Path | None" = None,
        boxes: "str | Path | None" = None,
        resize: Optional[int] = None,
        crop: Optional[int] = None,
    ) -> None:
        if masks is not None and boxes is not None:
            raise ValueError("--masks and --boxes: give one kind of ground truth, not both")
        for name, value in (("--resize", resize), ("--crop", crop)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"--data: no such folder: {self.root}")
        self.resize, self.crop = resize, crop
        self.masks_dir = None if masks is None else Path(masks)
        if self.masks_dir is not None and not self.masks_dir.is_dir():
            raise ValueError(f"--masks: no such folder: {self.masks_dir}")
        self.boxes = None if boxes is None else _read_boxes(Path(boxes))
        self.class_names: List[str] = []
        self.records = self._scan(None if labels is None else Path(labels))

    def _scan(self, labels: Optional[Path]) -> List[ImageRecord]:
        files = sorted(p for p in self.root.rglob("*") if _is_image(p))
        if not files:
            raise ValueError(f"--data: no images ({', '.join(IMAGE_SUFFIXES)}) found under {self.root}")
        if labels is not None:
            table = _read_labels(labels)
            records = []
            for path in files:
                image_id = path.relative_to(self.root).as_posix()
                if image_id not in table:
                    raise ValueError(f"--labels: no label for image {image_id} in {labels}")
                records.append(ImageRecord(path, image_id, table[image_id]))
            return records
        classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        if not classes:
            raise ValueError(
                f"--data: {self.root} has no class sub-folders; give --labels file.csv for a flat folder"
            )
        index = {name: i for i, name in enumerate(classes)}
        self.class_names = classes
        records = []
        for path in files:
            parts = path.relative_to(self.root).parts
            if len(parts) < 2:
                raise ValueError(f"--data: image {path} is outside the class sub-folders; give --labels")
            records.append(ImageRecord(path, path.relative_to(self.root).as_posix(), index[parts[0]]))
        return records

    @property
    def image_ids(self) -> List[str]:
        """Image ids (paths relative to the root), in dataset order."""
        return [r.image_id for r in self.records]

    @property
    def has_masks(self) -> bool:
        return self.masks_dir is not None or self.boxes is not None

    def mask_path(self, record: ImageRecord) -> Path:
        assert self.masks_dir is not None
        return (self.masks_dir / record.image_id).with_suffix(".png")

    def validate(self) -> None:
        """Read every image header (and mask header); raise ``ValueError`` naming the first bad file."""
        for record in self.records:
            size = _image_size(record.path, "--data")
            if self.masks_dir is not None:
                path = self.mask_path(record)
                if not path.is_file():
                    raise ValueError(f"--masks: no mask {path} for image {record.image_id}")
                mask_size = _image_size(path, "--masks")
                if mask_size != size:
                    raise ValueError(
                        f"--masks: mask {path} is {mask_size[1]}x{mask_size[0]} but image {record.image_id} "
                        f"is {size[1]}x{size[0]} (width x height)"
                    )
        if self.boxes is not None:
            unknown = sorted(set(self.boxes) - set(self.image_ids))
            if unknown:
                raise ValueError(f"--boxes: boxes for unknown image(s) {unknown[:3]}")

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int):
        record = self.records[index]
        image = _load_rgb(record.path)
        mask: Optional[Tensor] = None
        if self.masks_dir is not None:
            mask = _load_mask(self.mask_path(record))
            if mask.shape[1:] != image.shape[1:]:
                raise ValueError(f"--masks: mask {self.mask_path(record)} does not match the size of {record.path}")
        elif self.boxes is not None:
            mask = boxes_to_mask(self.boxes.get(record.image_id, []), image.shape[1], image.shape[2])
        image, mask = preprocess(image, mask, self.resize, self.crop)
        if mask is None:
            return image, record.label
        return image, record.label, mask


Normalization = Tuple[Tuple[float, ...], Tuple[float, ...]]


def parse_normalization(mean: Optional[str], std: Optional[str]) -> Optional[Normalization]:
    """``--mean/--std``: a preset name (``imagenet``) or comma-separated numbers; None = no normalisation.

    Examples::

        >>> parse_normalization("imagenet", None)[1]
        (0.229, 0.224, 0.225)
        >>> parse_normalization("0.5", "0.25")
        ((0.5,), (0.25,))
    """
    if mean is None and std is None:
        return None
    if mean in NORMALIZATION_PRESETS and std in (None, mean):
        return NORMALIZATION_PRESETS[mean]
    if mean is None or std is None:
        raise ValueError(f"--mean/--std: give both, or a preset name ({sorted(NORMALIZATION_PRESETS)}) as --mean")

    def numbers(name: str, text: str) -> Tuple[float, ...]:
        try:
            return tuple(float(v) for v in text.split(","))
        except ValueError:
            raise ValueError(f"{name}: expected numbers separated by commas or a preset "
                             f"{sorted(NORMALIZATION_PRESETS)}, got {text!r}") from None

    m, s = numbers("--mean", mean), numbers("--std", std)
    for name, values in (("--mean", m), ("--std", s)):
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{name}: must be finite numbers, got {mean if name == '--mean' else std!r}")
    if len(m) != len(s):
        raise ValueError(f"--mean/--std: {len(m)} means but {len(s)} standard deviations")
    if any(not v > 0 for v in s):
        raise ValueError(f"--std: must be positive, got {std!r}")
    return m, s
