"""DDD17 as re-released with ESS: raw event streams per recording, Ev-SegNet labels, 50 ms windows.

Format facts, from uzh-rpg/ess ``datasets/ddd17_events_loader.py`` and
``datasets/extract_data_tools/example_loader_ddd17.py`` (nothing is downloaded):

* ``<root>/dir*/`` one folder per recording; sorted, folders 0, 2, 3, 5, 6 are
  "train", 1 is "valid" and 4 is "test".
* ``events.dat.t``: raw int64 timestamps in ns, one per event (count = size / 8).
* ``events.dat.xyp``: raw int16 ``(x, y, p)`` triples, ``p`` in {0, 1}.
  (The comment there says uint8; the code reads int16, and so do we.)
* ``index/index_50ms.npy``: one row per frame ``j``, ``(t_ns, end, start)``:
  events ``[start, end)`` are those of the 50 ms before frame ``j + 1``.
* ``segmentation_masks/segmentation_<n>.png``: the Ev-SegNet label of frame
  ``n``, so its window is index row ``n - 1``. The release ships them as
  ``segmentation_masks.zip``, to unzip first.
* Labels are 200 x 346, the top of the 260 x 346 sensor; events with
  ``y >= 200`` are dropped, as ESS's example loader does.

Each item bins the window's events with the runtime's binning
(:func:`edge_snn.runtime.events.binning.bin_events`, spec in ``self.binning``):
``timesteps`` equal time bins between the window's first and last event
(``time_bins="event_span"``, ESS's fixed-duration binning), events counted per
pixel and polarity: ``x[t, 0]`` counts ON (p = 1) and ``x[t, 1]`` OFF (p = 0)
events, the channel order of Ev-SegNet's event images. Counts are not rescaled.
Timestamps are floored to microseconds, the runtime's unit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from edge_snn.data.augment import Augment
from edge_snn.data.ddd17 import DAVIS346_SENSOR, DDD17_CLASSES, LABELLED_SIZE, WINDOW_US, check_timesteps
from edge_snn.data.pixels import IGNORE_INDEX, check_size, read_index_label, resize_label, void_out_of_range
from edge_snn.errors import UserError
from edge_snn.runtime.events.binning import BinningSpec, Events, bin_events

SPLIT_RECORDINGS = {"train": (0, 2, 3, 5, 6), "valid": (1,), "test": (4,)}
_ALIASES = {"val": "valid"}
_LAYOUT = (
    "<root>/dir0 .. dir6/ each with events.dat.t, events.dat.xyp, index/index_50ms.npy "
    "and segmentation_masks/segmentation_<n>.png"
)


class _Recording:
    """One ``dir*`` folder: sizes checked up front, event files memory-mapped on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.t_path = folder / "events.dat.t"
        self.xyp_path = folder / "events.dat.xyp"
        index_path = folder / "index" / "index_50ms.npy"
        for path in (self.t_path, self.xyp_path, index_path):
            if not path.is_file():
                raise UserError(f"ESS file {path} not found. Expected layout: {_LAYOUT}")
        self.num_events = self.t_path.stat().st_size // 8
        if self.xyp_path.stat().st_size != 6 * self.num_events:
            raise UserError(
                f"{self.xyp_path} should hold 3 int16 per event of {self.t_path} ({self.num_events} events); "
                "the two files do not match - re-extract the recording"
            )
        self.index = np.asarray(np.load(index_path), dtype=np.int64)
        if self.index.ndim != 2 or self.index.shape[1] != 3:
            raise UserError(f"{index_path} has shape {self.index.shape}; expected N x 3 rows of (t_ns, end, start)")
        self._maps: tuple[np.memmap, np.memmap] | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_maps"] = None  # a memmap would be pickled as a full copy
        return state

    def events(self, frame_row: int) -> tuple[np.ndarray, np.ndarray]:
        """``(t int64 [n], xyp int64 [n, 3])`` of the 50 ms window of index row ``frame_row``."""
        if self._maps is None:
            n = self.num_events
            self._maps = (
                np.memmap(self.t_path, dtype=np.int64, mode="r", shape=(n,)),
                np.memmap(self.xyp_path, dtype=np.int16, mode="r", shape=(n, 3)),
            )
        _, end, start = (int(v) for v in self.index[frame_row])
        start = max(start, 0)
        if not start <= end <= self.num_events:
            raise UserError(
                f"{self.folder}/index/index_50ms.npy row {frame_row} points at events [{start}, {end}) "
                f"but there are {self.num_events}; the index does not belong to these event files"
            )
        t_map, xyp_map = self._maps
        return np.asarray(t_map[start:end], dtype=np.int64), np.asarray(xyp_map[start:end], dtype=np.int64)


def ess_binning(timesteps: int, size: tuple[int, int] | None) -> BinningSpec:
    """ESS's DDD17 binning: 50 ms windows, ``timesteps`` bins over the events' own span, raw counts."""
    return BinningSpec(window_us=WINDOW_US, bins=timesteps, timesteps=timesteps, sensor=DAVIS346_SENSOR,
                       crop=(0, 0, *LABELLED_SIZE), resize=size, polarity="on_off", time_bins="event_span",
                       normalize="none")


def window_events(t_ns: np.ndarray, xyp: np.ndarray) -> Events:
    """Events of the ESS files (ns timestamps, int16 x, y, p) in the runtime's form (us)."""
    return Events.of(xyp[:, 0], xyp[:, 1], t_ns // 1000, xyp[:, 2])


class DDD17ESS(Dataset):
    """DDD17 in the ESS re-release: T event-count frames from the 50 ms before each label.

    Args:
        root: folder holding ``dir0`` .. ``dir6``.
        split: "train", "valid" (alias "val") or "test".
        size: ``(height, width)`` to resize to, or None for native 200 x 346 (default).
        augment: joint geometric augmentation, applied after resizing (default None).
        timesteps: T, the number of time bins (default 20).

    Items are ``(x float32 [T, 2, H, W] event counts, label int64 [H, W])``.
    """

    num_classes = 6
    class_names = DDD17_CLASSES
    ignore_index = IGNORE_INDEX
    kind = "events"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        size: tuple[int, int] | None = None,
        augment: Augment | None = None,
        timesteps: int = 20,
    ) -> None:
        self.root = Path(root).expanduser()
        self.split = _ALIASES.get(split, split)
        if self.split not in SPLIT_RECORDINGS:
            raise UserError(f"unknown ESS DDD17 split {split!r}; use one of train, valid, test")
        self.size = check_size(size)
        self.augment = augment
        self.timesteps = check_timesteps(timesteps)
        self.binning = ess_binning(self.timesteps, self.size)
        self.input_range = self.binning.input_range
        if not self.root.is_dir():
            raise UserError(f"ESS DDD17 folder {self.root} not found. Expected layout: {_LAYOUT}")
        folders = sorted(p for p in self.root.glob("dir*") if p.is_dir())
        if len(folders) < 7:
            raise UserError(
                f"found {len(folders)} dir* folders in {self.root}; the ESS release has 7 (dir0 .. dir6), "
                f"and splits are chosen by their position. Expected layout: {_LAYOUT}"
            )
        self.recordings = [_Recording(folders[i]) for i in SPLIT_RECORDINGS[self.split]]
        self.samples = [s for r, rec in enumerate(self.recordings) for s in self._masks(r, rec)]
        if not self.samples:
            raise UserError(f"no segmentation masks in the {self.split} recordings of {self.root}")

    @staticmethod
    def _masks(r: int, rec: _Recording) -> list[tuple[int, Path, int]]:
        folder = rec.folder / "segmentation_masks"
        if not folder.is_dir():
            hint = " Unzip segmentation_masks.zip there first." if (rec.folder / "segmentation_masks.zip").is_file() else ""
            raise UserError(f"folder {folder} not found.{hint} Expected layout: {_LAYOUT}")
        samples = []
        for path in sorted(folder.glob("*.png")):
            try:
                row = int(path.stem.rsplit("_", 1)[-1]) - 1
            except ValueError:
                raise UserError(f"mask {path} should be named segmentation_<frame number>.png") from None
            if not 0 <= row < len(rec.index):
                raise UserError(f"mask {path} names frame {row + 1}, but index_50ms.npy has {len(rec.index)} frames")
            samples.append((r, path, row))
        return samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        r, mask_path, row = self.samples[index]
        label = read_index_label(mask_path)
        if label.shape != LABELLED_SIZE:
            raise UserError(f"mask {mask_path} is {label.shape[0]}x{label.shape[1]}, DDD17 labels are "
                            f"{LABELLED_SIZE[0]}x{LABELLED_SIZE[1]}")
        t, xyp = self.recordings[r].events(row)
        window_end_us = int(self.recordings[r].index[row][0]) // 1000
        x = torch.from_numpy(bin_events(window_events(t, xyp), self.binning, window_end_us - WINDOW_US))
        y = resize_label(void_out_of_range(label, self.num_classes), self.size)
        if self.augment is not None:
            x, y = self.augment(x, y)
        return x, y
