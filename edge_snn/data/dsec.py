"""DSEC-Semantic (ESS, Sun et al. 2022): DSEC event sequences with per-timestamp semantic labels, 11 or 19 classes.

Layout, as the ESS README documents it (uzh-rpg/ess, "Datasets / DSEC-Semantic";
nothing is downloaded)::

    <root>/train/<sequence>/events/left/events.h5          DSEC events (blosc)
    <root>/train/<sequence>/events/left/rectify_map.h5     DSEC rectification map
    <root>/train/<sequence>/semantic/left/11classes/data/000000.png ...
    <root>/train/<sequence>/semantic/left/19classes/data/000000.png ...
    <root>/train/<sequence>/semantic/timestamps.txt        one int64 (us) per label
    <root>/test/<sequence>/...                             (the official test split)

ESS's own loader reads ``semantic/11classes/data`` (no ``left``) and the
official zips unpack to ``<sequence>/11classes/`` with
``<sequence>_semantic_timestamps.txt``; those places are read too. Labels
sort by name and pair with the timestamps in order; they are index PNGs of
640 x 440 (the top 440 rows of the 480-row sensor; ESS drops the bottom 40),
255 = void. The 11 classes are ESS's ``labels_11_Cityscapes`` train ids
(0 = background, i.e. sky and unlabelled), the 19 the Cityscapes train ids.

Each label at time ``ts`` gets the events of ``[ts - window, ts)`` (default
50 ms, ESS's ``delta_t_per_data``), read through the runtime's DSEC reader
(``ms_to_idx``, rectified with ``rectify_map.h5``) and binned by the
runtime's :func:`~edge_snn.runtime.events.binning.bin_events` with
``self.binning``: T bins, ON/OFF counts clipped at 4 and scaled by 1/4,
cropped to 440 rows, area-resized to ``size``. So ``edge-snn run`` on a DSEC
``events.h5`` makes exactly these frames. Labels whose window starts before
the sequence's first event are skipped (ESS skips the first 250 ms); windows
never cross a sequence boundary, each sequence has its own reader. Unlike
ESS, which trains on every second label, every label is used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from edge_snn.data.augment import Augment
from edge_snn.data.ddd17 import check_timesteps
from edge_snn.data.pixels import IGNORE_INDEX, check_size, read_index_label, resize_label, void_out_of_range
from edge_snn.errors import UserError
from edge_snn.runtime.events.binning import BinningSpec, bin_events
from edge_snn.runtime.events.readers.dsec import DSEC_SENSOR, DsecReader

DSEC_11_CLASSES = ("background", "building", "fence", "person", "pole", "road", "sidewalk", "vegetation", "car",
                   "wall", "traffic-sign")
CITYSCAPES_19_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic-light", "traffic-sign",
                         "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
                         "motorcycle", "bicycle")
LABEL_SIZE = (440, 640)
SPLITS = ("train", "test")
_LAYOUT = ("<root>/{train,test}/<sequence>/events/left/{events.h5,rectify_map.h5}, "
           "<sequence>/semantic/left/<N>classes/data/*.png and <sequence>/semantic/timestamps.txt")


def dsec_binning(timesteps: int, size: tuple[int, int] | None, window_ms: float = 50.0) -> BinningSpec:
    """The frames DSEC-Semantic trains on: rectified, top 440 rows, T bins of ON/OFF counts (clip 4, x 1/4)."""
    return BinningSpec(window_us=int(round(window_ms * 1000)), bins=timesteps, timesteps=timesteps,
                       sensor=DSEC_SENSOR, crop=(0, 0, *LABEL_SIZE), resize=size, rectify=True,
                       polarity="on_off", normalize="clip_scale", clip=4.0, scale=0.25)


def _first(candidates: list[Path], kind: str, sequence: Path) -> Path:
    for path in candidates:
        if path.exists():
            return path
    raise UserError(f"no {kind} found for DSEC-Semantic sequence {sequence} (looked for "
                    f"{', '.join(str(p.relative_to(sequence)) for p in candidates)}). Expected layout: {_LAYOUT}")


class _Sequence:
    """One sequence: its label files, timestamps and event file (opened on first use, per process)."""

    def __init__(self, folder: Path, classes: int):
        self.folder = folder
        name = folder.name
        sem = folder / "semantic"
        label_dir = _first([sem / "left" / f"{classes}classes" / "data", sem / f"{classes}classes" / "data",
                            sem / "left" / f"{classes}classes", folder / f"{classes}classes"],
                           f"{classes}classes label folder", folder)
        stamps = _first([sem / "timestamps.txt", sem / "left" / "timestamps.txt",
                         folder / f"{name}_semantic_timestamps.txt", sem / "left" / f"{name}_semantic_timestamps.txt"],
                        "timestamps file", folder)
        self.events_path = _first([folder / "events" / "left" / "events.h5"], "events.h5", folder)
        self.labels = sorted(label_dir.glob("*.png"))
        try:
            self.timestamps = np.loadtxt(stamps, dtype=np.int64, ndmin=1, comments="#", delimiter=None)
        except ValueError as err:
            raise UserError(f"{stamps} should hold one integer timestamp (us) per line ({err})") from None
        if len(self.labels) != len(self.timestamps):
            raise UserError(f"{label_dir} has {len(self.labels)} labels but {stamps} has {len(self.timestamps)} "
                            "timestamps; they pair one to one, in order")
        self._reader: DsecReader | None = None

    def reader(self) -> DsecReader:
        if self._reader is None:
            self._reader = DsecReader(self.events_path, rectify=True)
        return self._reader

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_reader"] = None  # an h5py file handle belongs to one process
        return state


class DSECSemantic(Dataset):
    """DSEC-Semantic, 11 classes (``--dataset dsec-semantic``).

    Args:
        root: the folder holding ``train/`` and ``test/``.
        split: "train" or "test" (the official split; "val" is read as "test").
        size: ``(height, width)`` to shrink to, or None for the native 440 x 640 (default).
        augment: joint geometric augmentation after binning (default None).
        timesteps: T, the time bins per window (default 20).
        window_ms: the window before each label (default 50).

    Items are ``(x float32 [T, 2, H, W] in [0, 1], label int64 [H, W])``.
    """

    num_classes = 11
    class_names = DSEC_11_CLASSES
    ignore_index = IGNORE_INDEX
    kind = "events"

    def __init__(self, root: str | Path, split: str = "train", *, size: tuple[int, int] | None = None,
                 augment: Augment | None = None, timesteps: int = 20, window_ms: float = 50.0) -> None:
        self.root = Path(root).expanduser()
        self.split = {"val": "test"}.get(split, split)
        if self.split not in SPLITS:
            raise UserError(f"unknown DSEC-Semantic split {split!r}; use train or test")
        self.size = check_size(size)
        self.augment = augment
        self.timesteps = check_timesteps(timesteps)
        self.binning = dsec_binning(self.timesteps, self.size, window_ms)
        self.input_range = self.binning.input_range
        split_dir = self.root / self.split
        if not split_dir.is_dir():
            raise UserError(f"DSEC-Semantic split folder {split_dir} not found. Expected layout: {_LAYOUT}")
        folders = sorted(p for p in split_dir.iterdir() if p.is_dir())
        if not folders:
            raise UserError(f"no sequences in {split_dir}. Expected layout: {_LAYOUT}")
        self.sequences = [_Sequence(f, self.num_classes) for f in folders]
        self.samples: list[tuple[int, int]] = []  # (sequence, label index)
        window = self.binning.window_us
        for s, seq in enumerate(self.sequences):
            with DsecReader(seq.events_path) as reader:
                first, last = reader.t_first, reader.t_last
            if first is None:
                continue
            self.samples += [(s, i) for i, ts in enumerate(seq.timestamps.tolist())
                             if first <= ts - window <= last]
        if not self.samples:
            raise UserError(f"no label of {split_dir} has a full {window / 1000:g} ms of events before it; "
                            "check that timestamps.txt and events.h5 belong together")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        s, i = self.samples[index]
        seq = self.sequences[s]
        label = read_index_label(seq.labels[i])
        if label.shape != LABEL_SIZE:
            raise UserError(f"label {seq.labels[i]} is {label.shape[1]}x{label.shape[0]}; DSEC-Semantic labels "
                            f"are {LABEL_SIZE[1]}x{LABEL_SIZE[0]}")
        t1 = int(seq.timestamps[i])
        t0 = t1 - self.binning.window_us
        x = torch.from_numpy(bin_events(seq.reader().read(t0, t1), self.binning, t0))
        y = resize_label(void_out_of_range(label, self.num_classes), self.size)
        if self.augment is not None:
            x, y = self.augment(x, y)
        return x, y


class DSECSemantic19(DSECSemantic):
    """DSEC-Semantic with the 19 Cityscapes classes (``--dataset dsec-semantic-19``)."""

    num_classes = 19
    class_names = CITYSCAPES_19_CLASSES
