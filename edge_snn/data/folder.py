"""Any segmentation data set laid out as a folder of images and a folder of index-PNG labels.

Layout (``split=None`` reads ``root`` itself; ``split="train"`` reads ``root/train``)::

    root[/split]/images/<stem>.{png,jpg,jpeg}
    root[/split]/labels/<stem>.png        # index PNG: pixel value = class id, 255 = void
    root[/split]/classes.txt              # optional, one class name per line
                                          # (root/classes.txt is also looked for)

This is the way to bring your own data without writing a loader: images pair
with labels by file stem, and the number of classes comes from ``classes.txt``
(preferred), from ``num_classes=``, or, failing both, is inferred as
``1 + the largest non-void label value`` in the first ``infer_from`` label files
(sorted by name). Inference is a convenience: a class that never occurs in
those files is not counted, so write ``classes.txt`` for real work.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_snn.data.augment import Augment
from edge_snn.data.pixels import (
    ImagePairDataset,
    IGNORE_INDEX,
    check_normalization,
    check_size,
    read_index_label,
    require_dir,
)
from edge_snn.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_LAYOUT = "<root>[/<split>]/images/<stem>.{png,jpg,jpeg} with <root>[/<split>]/labels/<stem>.png, optional classes.txt"


class ImageFolderSegmentation(ImagePairDataset):
    """Images + index-PNG labels paired by stem.

    Args:
        root: the data folder.
        split: sub-folder of ``root`` to read, or None to read ``root`` (default None).
        size: ``(height, width)`` to resize to, or None for native size (default).
        augment: joint geometric augmentation, applied after resizing (default None).
        normalize: "reference" (default) or "symmetric"; see
            :func:`edge_snn.data.pixels.normalize_rgb`.
        num_classes: class count when there is no ``classes.txt`` (default None: infer).
        infer_from: how many label files to scan when inferring (default 64).

    Items are ``(x float32 [3, H, W], label int64 [H, W])``; label values at or
    above ``num_classes`` become 255 (void).
    """

    ignore_index = IGNORE_INDEX
    kind = "image"

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        *,
        size: tuple[int, int] | None = None,
        augment: Augment | None = None,
        normalize: str = "reference",
        num_classes: int | None = None,
        infer_from: int = 64,
    ) -> None:
        self.root = Path(root).expanduser()
        self.split = split
        base = require_dir(self.root if split is None else self.root / split, _LAYOUT)
        self.size = check_size(size)
        self.augment = augment
        self.normalize = check_normalization(normalize)
        self.samples = _pair_by_stem(require_dir(base / "images", _LAYOUT), require_dir(base / "labels", _LAYOUT))
        names = _read_class_names(base, self.root)
        if names is not None:
            if num_classes is not None and num_classes != len(names):
                raise UserError(
                    f"num_classes={num_classes} conflicts with {len(names)} names in classes.txt; drop one of them"
                )
        else:
            if num_classes is None:
                num_classes = _infer_num_classes([label for _, label in self.samples[:infer_from]])
            if num_classes < 1:
                raise UserError(f"num_classes must be >= 1, got {num_classes}")
            names = tuple(f"class{i}" for i in range(num_classes))
        self.class_names: tuple[str, ...] = names
        self.num_classes: int = len(names)


def _pair_by_stem(images_dir: Path, labels_dir: Path) -> list[tuple[Path, Path]]:
    images: dict[str, Path] = {}
    for path in sorted(images_dir.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if path.stem in images:
            raise UserError(f"two images share the stem {path.stem!r} in {images_dir}; keep one of them")
        images[path.stem] = path
    if not images:
        raise UserError(f"no .png/.jpg/.jpeg images in {images_dir}. Expected layout: {_LAYOUT}")
    unlabeled = [stem for stem in images if not (labels_dir / f"{stem}.png").is_file()]
    if unlabeled:
        raise UserError(
            f"{len(unlabeled)} image(s) in {images_dir} have no label, e.g. {labels_dir / (unlabeled[0] + '.png')} "
            "is missing. Add the labels or move those images out."
        )
    return [(image, labels_dir / f"{stem}.png") for stem, image in images.items()]


def _read_class_names(base: Path, root: Path) -> tuple[str, ...] | None:
    for path in (base / "classes.txt", root / "classes.txt"):
        if path.is_file():
            names = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
            if not names:
                raise UserError(f"{path} is empty; write one class name per line or delete it")
            return names
    return None


def _infer_num_classes(label_paths: list[Path]) -> int:
    """1 + the largest label value other than 255 in ``label_paths``."""
    largest = -1
    for path in label_paths:
        values = np.unique(read_index_label(path))
        values = values[values != IGNORE_INDEX]
        if values.size:
            largest = max(largest, int(values.max()))
    if largest < 0:
        raise UserError(
            f"cannot infer the number of classes: the first {len(label_paths)} labels hold only void (255). "
            "Write classes.txt (one name per line) or pass num_classes."
        )
    return largest + 1
