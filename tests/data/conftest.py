"""Writers of small data trees in the exact public on-disk formats, as pytest fixtures.

Every writer encodes the sample's identity in its pixel values, so a test can
tell whether an input was paired with the right label.
"""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

VOC_H, VOC_W = 24, 32
DDD_H, DDD_W = 200, 346


def voc_palette() -> list[int]:
    """The standard VOC colour map (bit-interleaved), 256 entries, flattened."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def sample_color(k: int) -> tuple[int, int, int]:
    """Flat image colour of sample ``k`` (far apart, so JPEG keeps them apart)."""
    return (20 + 40 * k, 230 - 40 * k, 128)


def voc_label(cls: int) -> np.ndarray:
    """Class 0 on the left quarter, ``cls`` elsewhere, 255 (void) on a 2-pixel border."""
    label = np.full((VOC_H, VOC_W), cls, dtype=np.uint8)
    label[:, : VOC_W // 4] = 0
    label[:2, :] = label[-2:, :] = 255
    label[:, :2] = label[:, -2:] = 255
    return label


def write_voc(root: Path, splits: dict[str, list[int]], *, aug_splits: dict[str, list[int]] | None = None) -> Path:
    """``root/VOCdevkit/VOC2012`` with samples ``2007_00000<k>``.

    SegmentationClass labels (palette PNGs) carry class ``k + 1``;
    SegmentationClassAug labels (gray PNGs) carry class ``k + 11``, so a test
    can tell which folder a label came from. ``aug_splits`` lists are written
    in the DeepLab two-path form.
    """
    voc = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationClassAug", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    all_ids = sorted({k for ks in [*splits.values(), *(aug_splits or {}).values()] for k in ks})
    for k in all_ids:
        name = f"2007_{k:06d}"
        Image.new("RGB", (VOC_W, VOC_H), sample_color(k)).save(voc / "JPEGImages" / f"{name}.jpg", quality=95)
        label = Image.frombytes("P", (VOC_W, VOC_H), voc_label(k + 1).tobytes())
        label.putpalette(voc_palette())
        label.save(voc / "SegmentationClass" / f"{name}.png")
        Image.fromarray(voc_label(k + 11)).save(voc / "SegmentationClassAug" / f"{name}.png")
    for split, ks in splits.items():
        (voc / "ImageSets/Segmentation" / f"{split}.txt").write_text("".join(f"2007_{k:06d}\n" for k in ks))
    for split, ks in (aug_splits or {}).items():
        lines = [f"/JPEGImages/2007_{k:06d}.jpg /SegmentationClassAug/2007_{k:06d}.png\n" for k in ks]
        (voc / "ImageSets/Segmentation" / f"{split}.txt").write_text("".join(lines))
    return root


def write_folder(root: Path, stems: list[str], *, classes: list[str] | None = None, max_class: int = 2) -> Path:
    """``root/images/<stem>.png`` (colour of sample k) + ``root/labels/<stem>.png``.

    Label k holds ``min(k, max_class)`` on the right half, 0 on the left, 255 in the first row.
    """
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for k, stem in enumerate(stems):
        suffix = ".jpg" if k % 2 else ".png"
        Image.new("RGB", (VOC_W, VOC_H), sample_color(k)).save(root / "images" / f"{stem}{suffix}", quality=95)
        label = np.zeros((VOC_H, VOC_W), dtype=np.uint8)
        label[:, VOC_W // 2 :] = min(k, max_class)
        label[0, :] = 255
        Image.fromarray(label).save(root / "labels" / f"{stem}.png")
    if classes is not None:
        (root / "classes.txt").write_text("\n".join(classes) + "\n")
    return root


def evsegnet_events(frame: int) -> np.ndarray:
    """float32 200 x 346 x 6: ch0 a left-to-right ramp times ``frame + 1``, ch1 equal to
    ``frame`` except one hot pixel, ch2..5 huge values that must never be read."""
    ev = np.zeros((DDD_H, DDD_W, 6), dtype=np.float32)
    ev[:, :, 0] = np.arange(DDD_W, dtype=np.float32)[None, :] * (frame + 1)
    ev[:, :, 1] = frame
    ev[frame % DDD_H, 7, 1] = frame + 10
    ev[:, :, 2:] = 1e6
    return ev


def evsegnet_label(frame: int) -> np.ndarray:
    """Class ``frame % 6`` everywhere, 255 on the top 10 rows."""
    label = np.full((DDD_H, DDD_W), frame % 6, dtype=np.uint8)
    label[:10] = 255
    return label


def write_evsegnet(root: Path, splits: dict[str, list[str]], *, split_first: bool = True) -> Path:
    """Ev-SegNet release tree; names like ``rec1487417411_export_<frame>``.

    ``split_first`` picks ``<split>/{events,labels}`` (Loader.py) over
    ``{events,labels}/<split>`` (generate_dataset.py).
    """
    for split, names in splits.items():
        ev_dir = root / split / "events" if split_first else root / "events" / split
        lb_dir = root / split / "labels" if split_first else root / "labels" / split
        ev_dir.mkdir(parents=True)
        lb_dir.mkdir(parents=True)
        for name in names:
            frame = int(name.rsplit("_", 1)[1])
            np.save(ev_dir / f"{name}.npy", evsegnet_events(frame))
            Image.fromarray(evsegnet_label(frame)).save(lb_dir / f"{name}.png")
    return root


def write_ess_recording(folder: Path, events: np.ndarray, index: np.ndarray, masks: dict[int, np.ndarray]) -> None:
    """One ESS ``dir*``: ``events`` rows are (t_ns, x, y, p); ``masks`` maps frame n -> label."""
    (folder / "index").mkdir(parents=True)
    (folder / "segmentation_masks").mkdir()
    np.ascontiguousarray(events[:, 0], dtype=np.int64).tofile(folder / "events.dat.t")
    np.ascontiguousarray(events[:, 1:4], dtype=np.int16).tofile(folder / "events.dat.xyp")
    np.save(folder / "index" / "index_50ms.npy", index.astype(np.int64))
    for n, label in masks.items():
        Image.fromarray(label.astype(np.uint8)).save(folder / "segmentation_masks" / f"segmentation_{n:08d}.png")


def write_ess(root: Path) -> Path:
    """Seven recordings ``dir0..dir6``; recording ``r`` has 3 frames and masks for frames 2 and 3.

    Events of recording ``r``, frame window ``j`` (index row j, 50 ms before frame j + 1):
    at pixel (x = 10 + r, y = 5) ON events at t = 0, 10, 20 ms after the window start
    and one OFF event at 49 ms; plus one ON event at y = 230 (below the labelled
    200 rows, must be dropped). Mask of frame n is class ``(r + n) % 6`` with 255
    on row 0.
    """
    ms = 1_000_000
    for r in range(7):
        rows, index = [], []
        for j in range(3):
            t0 = (100 + 50 * j) * ms
            start = len(rows)
            rows += [(t0, 10 + r, 5, 1), (t0 + 10 * ms, 10 + r, 5, 1), (t0 + 20 * ms, 10 + r, 5, 1)]
            rows += [(t0 + 30 * ms, 3, 230, 1), (t0 + 49 * ms, 10 + r, 5, 0)]
            index.append((t0 + 50 * ms, len(rows), start))
        masks = {}
        for n in (2, 3):
            label = np.full((DDD_H, DDD_W), (r + n) % 6, dtype=np.uint8)
            label[0] = 255
            masks[n] = label
        write_ess_recording(root / f"dir{r}", np.array(rows, dtype=np.int64), np.array(index), masks)
    return root


@pytest.fixture
def trees():
    """This module's names, so tests reach the constants and encoders without importing a conftest.

    (Several conftest modules share the name ``conftest``; ``sys.modules`` may hold another one.)
    """
    return types.SimpleNamespace(**globals())


@pytest.fixture
def make_voc(tmp_path):
    return lambda splits, **kw: write_voc(tmp_path / "voc", splits, **kw)


@pytest.fixture
def make_folder(tmp_path):
    return lambda stems, **kw: write_folder(tmp_path / "folder", stems, **kw)


@pytest.fixture
def make_evsegnet(tmp_path):
    return lambda splits, **kw: write_evsegnet(tmp_path / "ddd17", splits, **kw)


@pytest.fixture
def ess_root(tmp_path):
    return write_ess(tmp_path / "ess")
