"""DDD17 driving events with Ev-SegNet's semantic labels, in the release format the paper used.

Format facts (public sources; nothing is downloaded):

* Files: one ``.npy`` event image and one label PNG per labelled frame, named
  ``rec<recording>_export_<frame>`` (SNN-Segmentation ``data/ddd17/README.md``),
  paired by that name. Ev-SegNet's ``generate_dataset.py`` writes
  ``events/<split>/`` and ``labels/<split>/`` (splits train, test, other);
  its ``utils/Loader.py`` documents ``<split>/events``, ``<split>/labels``.
  Both orders are read here.
* Events: float ``H x W x 6`` with ``H x W = 200 x 346`` (the bottom rows of the
  260-row sensor are cropped). Channels, per Ev-SegNet ``show_events.py``:
  0 = ON histogram, 1 = OFF histogram, 2/3 = ON mean/std timestamp,
  4/5 = OFF mean/std timestamp.
* Labels: 8-bit gray PNGs, ``flat:0, construction+sky:1, object:2, nature:3,
  human:4, vehicle:5, ignore:255`` (Ev-SegNet README).
* The authors' SNN loader (SNN-Segmentation ``data/ddd17/dataset.py``) keeps
  channels 0 and 1 (ON/OFF counts), augments and resizes, then min-max scales
  each channel to [-0.5, 0.5]. It does so with sklearn's ``MinMaxScaler`` on an
  ``H x W`` array, which in fact scales each *column* separately; we scale each
  channel over the whole frame, which is what the comment there says it means.
  A constant channel maps to -0.5, as ``MinMaxScaler`` does.

Binning: the event images are already histograms, so only the later stages of
the runtime's binning apply (:mod:`edge_snn.runtime.events.binning`: resize
by area, ``minmax_half``, repeat to T); ``self.binning`` records them with
the raw-event stages a recording needs: the 260 x 346 DAVIS sensor cropped to
its top 200 rows, ON/OFF counts over 50 ms windows (Ev-SegNet's default window,
from its paper; not re-checked here). ``frames="consecutive"`` assumes the
files are consecutive 50 ms windows, so it records ``T`` bins over ``T * 50`` ms.

Timesteps: ``frames="repeat"`` (default, the reference's normal mode) gives the
one labelled frame at every one of the ``timesteps`` steps;
``frames="consecutive"`` (the reference's ``thl`` mode) gives the ``timesteps``
files of the same recording that end at the labelled frame, padding the start
of a recording with its first frame (the reference instead let windows run
across recordings and dropped the last ``T`` samples).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from edge_snn.data.augment import Augment
from edge_snn.data.pixels import IGNORE_INDEX, check_size, read_index_label, resize_label, void_out_of_range
from edge_snn.errors import UserError
from edge_snn.runtime.events.binning import BinningSpec, expand_steps, normalize_frames, resize_counts

DDD17_CLASSES = ("flat", "construction+sky", "object", "nature", "human", "vehicle")
DAVIS346_SENSOR = (260, 346)
LABELLED_SIZE = (200, 346)  # the top rows of the sensor; the car's hood fills the rest
WINDOW_US = 50_000
EVSEGNET_CHANNELS = (0, 1)  # ON and OFF event histograms
FRAME_MODES = ("repeat", "consecutive")
_LAYOUT = "<root>/<split>/{events,labels}/ or <root>/{events,labels}/<split>/ with <name>.npy (200x346x6) and <name>.png"
_NAME = re.compile(r"^(?P<recording>.*)_(?P<frame>\d+)$")


def check_timesteps(timesteps: int) -> int:
    if int(timesteps) != timesteps or timesteps < 1:
        raise UserError(f"timesteps must be a positive integer, got {timesteps!r}")
    return int(timesteps)


def evsegnet_binning(timesteps: int, frames: str, size: tuple[int, int] | None) -> BinningSpec:
    """How the Ev-SegNet event images become the model's frames, as a recording run must redo it."""
    bins = 1 if frames == "repeat" else timesteps
    return BinningSpec(window_us=bins * WINDOW_US, bins=bins, timesteps=timesteps, sensor=DAVIS346_SENSOR,
                       crop=(0, 0, *LABELLED_SIZE), resize=size, polarity="on_off", normalize="minmax_half")


def _split_dirs(root: Path, split: str) -> tuple[Path, Path]:
    for events, labels in (
        (root / split / "events", root / split / "labels"),
        (root / "events" / split, root / "labels" / split),
    ):
        if events.is_dir() and labels.is_dir():
            return events, labels
    raise UserError(f"DDD17 split {split!r} not found under {root}. Expected layout: {_LAYOUT}")


def _frame_key(stem: str) -> tuple[str, int]:
    match = _NAME.match(stem)
    return (match["recording"], int(match["frame"])) if match else (stem, -1)


class DDD17EvSegNet(Dataset):
    """DDD17 as released with Ev-SegNet (and used by the paper).

    Args:
        root: the unpacked release folder.
        split: "train" or "test" (or any split folder present, e.g. "other").
        size: ``(height, width)`` to resize to, or None for native 200 x 346 (default).
        augment: joint geometric augmentation, applied after resizing and before
            scaling, with fill 0 as in the reference (default None).
        timesteps: T, the number of frames in each item (default 20).
        frames: "repeat" (default) or "consecutive"; see the module docstring.

    Items are ``(x float32 [T, 2, H, W] in [-0.5, 0.5], label int64 [H, W])``.
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
        frames: str = "repeat",
    ) -> None:
        if frames not in FRAME_MODES:
            raise UserError(f"unknown frames mode {frames!r}; use one of {', '.join(FRAME_MODES)}")
        self.root = Path(root).expanduser()
        self.split = split
        self.size = check_size(size)
        self.augment = augment
        self.timesteps = check_timesteps(timesteps)
        self.frames = frames
        self.binning = evsegnet_binning(self.timesteps, frames, self.size)
        self.input_range = self.binning.input_range
        if not self.root.is_dir():
            raise UserError(f"DDD17 folder {self.root} not found. Expected layout: {_LAYOUT}")
        events_dir, labels_dir = _split_dirs(self.root, split)
        events = sorted(events_dir.glob("*.npy"), key=lambda p: _frame_key(p.stem))
        if not events:
            raise UserError(f"no .npy event files in {events_dir}. Expected layout: {_LAYOUT}")
        unlabeled = [p for p in events if not (labels_dir / f"{p.stem}.png").is_file()]
        if unlabeled:
            raise UserError(
                f"{len(unlabeled)} event file(s) in {events_dir} have no label in {labels_dir}, "
                f"e.g. {labels_dir / (unlabeled[0].stem + '.png')}"
            )
        self.samples = [(p, labels_dir / f"{p.stem}.png") for p in events]
        self._previous = self._link_previous_frames()

    def _link_previous_frames(self) -> list[int]:
        """Index of the directly preceding frame of the same recording, or -1."""
        keys = [_frame_key(events.stem) for events, _ in self.samples]
        previous = [-1] * len(keys)
        for i in range(1, len(keys)):
            (rec, frame), (prev_rec, prev_frame) = keys[i], keys[i - 1]
            if rec == prev_rec and frame >= 0 and frame == prev_frame + 1:
                previous[i] = i - 1
        return previous

    def _history(self, index: int) -> list[int]:
        """``timesteps`` sample indices ending at ``index``, padded with the earliest one."""
        chain = [index]
        while len(chain) < self.timesteps and self._previous[chain[0]] >= 0:
            chain.insert(0, self._previous[chain[0]])
        return [chain[0]] * (self.timesteps - len(chain)) + chain

    def __len__(self) -> int:
        return len(self.samples)

    def _load_events(self, index: int, label_shape: tuple[int, int]) -> np.ndarray:
        path = self.samples[index][0]
        try:
            array = np.load(path)
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read event file {path}: {e}") from e
        if array.ndim != 3 or array.shape[2] <= max(EVSEGNET_CHANNELS) or array.shape[:2] != label_shape:
            raise UserError(
                f"event file {path} has shape {array.shape}; expected H x W x 6 matching its label "
                f"({label_shape[0]} x {label_shape[1]})"
            )
        return np.ascontiguousarray(array[:, :, list(EVSEGNET_CHANNELS)].transpose(2, 0, 1), dtype=np.float32)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        label_path = self.samples[index][1]
        label = read_index_label(label_path)
        shape = label.shape
        if shape != LABELLED_SIZE:
            raise UserError(f"label {label_path} is {shape[0]}x{shape[1]}; the Ev-SegNet release is "
                            f"{LABELLED_SIZE[0]}x{LABELLED_SIZE[1]}")
        history = [index] if self.frames == "repeat" else self._history(index)
        counts = np.stack([self._load_events(i, shape) for i in history])  # [bins, 2, H, W]
        x = torch.from_numpy(resize_counts(counts, self.binning))
        y = resize_label(void_out_of_range(label, self.num_classes), self.size)
        if self.augment is not None:
            x, y = self.augment(x, y)
        frames = expand_steps(normalize_frames(x.numpy(), self.binning), self.binning)
        return torch.from_numpy(np.ascontiguousarray(frames)), y
