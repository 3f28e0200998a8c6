"""Reading image and label files, and resizing/normalizing them, the same way for every dataset.

Every loader in ``edge_snn.data`` returns ``(x, label)`` with ``x`` float32 and
``label`` int64 ``[H, W]`` whose values are class ids ``0..C-1`` or 255 (void).
This module holds the few pixel rules they share so the rules live in one place:

* labels are *index* PNGs (palette "P" or gray "L"); a colour PNG is refused,
  because guessing a colour -> class map silently would corrupt training;
* any label value ``>= num_classes`` becomes 255, as Ev-SegNet's loader did
  (Shathe/Ev-SegNet ``utils/Loader.py``: ``label >= n_classes`` is ignored);
* inputs resize bilinearly (antialiased when shrinking, like the reference's
  ``skimage.transform.resize``), labels with nearest neighbour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from edge_snn.errors import UserError

IGNORE_INDEX = 255

# Per-channel RGB means of the reference VOC loader (Caffe/VGG means, there in
# BGR order: 104.01, 116.67, 122.68), from SNN-Segmentation data/voc2012/dataset.py.
CAFFE_MEAN_RGB = (122.67892, 116.66877, 104.00699)
NORMALIZATIONS = ("reference", "symmetric")


def read_rgb(path: Path) -> np.ndarray:
    """``uint8 [H, W, 3]`` from a JPEG/PNG (gray or palette images are expanded to RGB)."""
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"), dtype=np.uint8)
    except OSError as e:
        raise UserError(f"cannot read image {path}: {e}. Replace or remove the file.") from e


def read_index_label(path: Path) -> np.ndarray:
    """``int64 [H, W]`` class ids from an index PNG (palette or 8-bit gray)."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L", "I", "I;16"):
                raise UserError(
                    f"label {path} is a {im.mode} image; labels must be index PNGs (palette or gray) "
                    "whose pixel values are class ids (255 = void). Convert colour masks to ids first."
                )
            # For mode "P" the array holds palette indices, which are the class ids.
            return np.array(im, dtype=np.int64)
    except OSError as e:
        raise UserError(f"cannot read label {path}: {e}. Replace or remove the file.") from e


def normalize_rgb(rgb: np.ndarray, mode: str = "reference") -> torch.Tensor:
    """``uint8 [H, W, 3]`` -> float32 ``[3, H, W]`` with ``|x| <= 1`` for the signed rate code.

    * ``"reference"`` (default): ``x = (v - mean_rgb) / 255`` with the Caffe VGG
      means, as the authors' VOC loader does; range about [-0.48, 0.59], so
      zero (no spikes) means "average colour".
    * ``"symmetric"``: ``x = (v / 255 - 0.5) * 2``, the full [-1, 1].

    The result is clipped to [-1, 1] either way: the Poisson code reads ``|x|``
    as a firing probability.
    """
    v = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).to(torch.float32)
    if mode == "reference":
        x = (v - torch.tensor(CAFFE_MEAN_RGB).view(3, 1, 1)) / 255.0
    elif mode == "symmetric":
        x = (v / 255.0 - 0.5) * 2.0
    else:
        check_normalization(mode)
    return x.clamp_(-1.0, 1.0)


def check_normalization(mode: str) -> str:
    """``mode`` if it names a normalization of :func:`normalize_rgb`, else a UserError."""
    if mode not in NORMALIZATIONS:
        raise UserError(f"unknown image normalization {mode!r}; use one of {', '.join(NORMALIZATIONS)}")
    return mode


def void_out_of_range(label: np.ndarray, num_classes: int) -> torch.Tensor:
    """int64 tensor with every value outside ``0..num_classes-1`` set to 255."""
    t = torch.from_numpy(np.ascontiguousarray(label)).to(torch.int64)
    t[(t < 0) | (t >= num_classes)] = IGNORE_INDEX
    return t


def check_size(size: tuple[int, int] | None) -> tuple[int, int] | None:
    """Validate a ``(height, width)`` resize target; None means native size."""
    if size is None:
        return None
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise UserError(f"size must be (height, width), got {size!r}") from None
    if h <= 0 or w <= 0:
        raise UserError(f"size must be positive (height, width), got {size!r}")
    return h, w


def resize_input(x: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """Bilinear resize of ``[..., H, W]`` to ``size`` (antialiased when shrinking)."""
    if size is None or tuple(x.shape[-2:]) == tuple(size):
        return x
    lead = x.shape[:-2]
    flat = x.reshape(1, -1, *x.shape[-2:])
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    out = F.interpolate(flat, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return out.reshape(*lead, *size)


def resize_label(label: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """Nearest-neighbour resize of an int64 ``[H, W]`` label (void stays 255)."""
    if size is None or tuple(label.shape) == tuple(size):
        return label
    out = F.interpolate(label[None, None].to(torch.float32), size=size, mode="nearest")
    return out[0, 0].to(torch.int64)


def load_image_pair(
    image_path: Path, label_path: Path, *, num_classes: int, normalize: str, size: tuple[int, int] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read, normalize and resize one image and its index label (shared by the image loaders)."""
    rgb = read_rgb(image_path)
    label = read_index_label(label_path)
    if label.shape != rgb.shape[:2]:
        raise UserError(f"label {label_path} is {label.shape}, image {image_path} is {rgb.shape[:2]}; sizes must match")
    x = resize_input(normalize_rgb(rgb, normalize), size)
    return x, resize_label(void_out_of_range(label, num_classes), size)


def read_list_file(path: Path, layout_hint: str) -> list[list[str]]:
    """Non-empty lines of a split list, each split on whitespace."""
    if not path.is_file():
        raise UserError(f"split list {path} not found. Expected layout: {layout_hint}")
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise UserError(f"split list {path} is empty; it should name one sample per line.")
    return rows


def require_dir(path: Path, layout_hint: str) -> Path:
    """``path`` if it is a folder, else a UserError that shows the expected layout."""
    if not path.is_dir():
        raise UserError(f"folder {path} not found. Expected layout: {layout_hint}")
    return path


class ImagePairDataset(Dataset):
    """Base of the image datasets: ``samples`` is a list of (image path, label path) pairs.

    Subclasses set ``samples``, ``num_classes``, ``normalize``, ``size`` and ``augment``.
    """

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_path, label_path = self.samples[index]
        x, y = load_image_pair(
            image_path, label_path, num_classes=self.num_classes, normalize=self.normalize, size=self.size
        )
        if self.augment is not None:
            x, y = self.augment(x, y)
        return x, y
