"""PASCAL VOC2012 segmentation, and its SBD-augmented "train_aug" variant, read from disk.

On-disk formats (public; nothing is downloaded):

* VOC2012 devkit: ``VOCdevkit/VOC2012/JPEGImages/<id>.jpg``,
  ``SegmentationClass/<id>.png`` (palette PNGs whose *indices* are class ids
  0..20, 255 = the void border around objects) and
  ``ImageSets/Segmentation/{train,val,trainval}.txt`` (one id per line).
* SBD augmentation, as used by DeepLab and by the authors
  (SNN-Segmentation ``data/voc2012``): gray index PNGs in
  ``SegmentationClassAug/<id>.png`` beside ``JPEGImages`` and a list
  ``ImageSets/Segmentation/train_aug.txt``. Its lines are either an id, or two
  paths relative to ``VOC2012`` such as
  ``/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png``
  (the DeepLab list form the authors' ``txtlists.py`` parses); both are read.

Unlike the reference loader, void (255) is kept as 255 in every split; the
reference turned it into background for train_aug.
"""

from __future__ import annotations

from pathlib import Path


from edge_snn.data.augment import Augment
from edge_snn.data.pixels import (
    ImagePairDataset,
    IGNORE_INDEX,
    check_normalization,
    check_size,
    read_list_file,
)
from edge_snn.errors import UserError

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip

_LAYOUT = (
    "<root>/VOCdevkit/VOC2012/ (or <root> = VOC2012 itself) holding JPEGImages/<id>.jpg, "
    "{label_dir}/<id>.png and ImageSets/Segmentation/<split>.txt"
)


def find_voc2012(root: str | Path, label_dir: str) -> Path:
    """The ``VOC2012`` folder under ``root`` (root itself, root/VOC2012 or root/VOCdevkit/VOC2012)."""
    root = Path(root).expanduser()
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (candidate / "ImageSets" / "Segmentation").is_dir():
            return candidate
    raise UserError(
        f"no PASCAL VOC2012 tree found at {root} (looked for ImageSets/Segmentation there, in VOC2012/ "
        f"and in VOCdevkit/VOC2012/). Expected layout: {_LAYOUT.format(label_dir=label_dir)}"
    )


class VOCSegmentation(ImagePairDataset):
    """VOC2012 with the official ``SegmentationClass`` labels.

    Args:
        root: folder holding ``VOCdevkit/VOC2012`` (or that folder itself).
        split: a list name in ``ImageSets/Segmentation`` ("train", "val", "trainval").
        size: ``(height, width)`` to resize to, or None for native size (default).
        augment: joint geometric augmentation, applied after resizing (default None).
        normalize: "reference" (default) or "symmetric"; see
            :func:`edge_snn.data.pixels.normalize_rgb`.

    Items are ``(x float32 [3, H, W], label int64 [H, W])``, labels 0..20 or 255.
    """

    num_classes = 21
    class_names = VOC_CLASSES
    ignore_index = IGNORE_INDEX
    kind = "image"
    label_dir = "SegmentationClass"
    split_aliases: dict[str, str] = {}

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        size: tuple[int, int] | None = None,
        augment: Augment | None = None,
        normalize: str = "reference",
    ) -> None:
        self.root = find_voc2012(root, self.label_dir)
        self.split = self.split_aliases.get(split, split)
        self.size = check_size(size)
        self.augment = augment
        self.normalize = check_normalization(normalize)
        self.samples = self._read_split()

    def _read_split(self) -> list[tuple[Path, Path]]:
        list_path = self.root / "ImageSets" / "Segmentation" / f"{self.split}.txt"
        rows = read_list_file(list_path, _LAYOUT.format(label_dir=self.label_dir))
        samples = []
        for row in rows:
            if len(row) == 1:
                image = self.root / "JPEGImages" / f"{row[0]}.jpg"
                label = self.root / self.label_dir / f"{row[0]}.png"
            elif len(row) == 2:
                image, label = (self.root / p.lstrip("/") for p in row)
            else:
                raise UserError(f"{list_path}: line {' '.join(row)!r} should be '<id>' or '<image path> <label path>'")
            samples.append((image, label))
        missing = [str(p) for pair in samples for p in pair if not p.is_file()]
        if missing:
            raise UserError(
                f"{len(missing)} file(s) named by {list_path} are missing, e.g. {missing[0]}. "
                f"Expected layout: {_LAYOUT.format(label_dir=self.label_dir)}"
            )
        return samples


class VOCAugSegmentation(VOCSegmentation):
    """VOC2012 + SBD ("train_aug", 10582 images), labels from ``SegmentationClassAug``.

    ``split="train"`` reads ``train_aug.txt``; "val" reads the official ``val.txt``
    (its labels are in ``SegmentationClassAug`` too). Other arguments as
    :class:`VOCSegmentation`.
    """

    label_dir = "SegmentationClassAug"
    split_aliases = {"train": "train_aug"}
