"""DSEC ``events.h5``: ``/events/{x,y,t,p}``, ``/ms_to_idx``, ``/t_offset``, blosc-compressed (h5py + hdf5plugin).

Format facts (uzh-rpg/DSEC README "Events" and ``scripts/utils/eventslicer.py``):
640x480 sensor; ``t`` in microseconds, to which ``t_offset`` (us) is added for
the synchronized clock; ``ms_to_idx[ms]`` is the first event index with
``t >= ms * 1000``. A window is read as the index range that ``ms_to_idx``
gives for its whole milliseconds, trimmed with a binary search on that slice,
so no more than a window (plus a millisecond each side) is ever read.
Without ``ms_to_idx`` the reader bisects ``t`` on the file itself.

Rectification: DSEC events are stored as recorded (distorted); ESS rectifies
them with ``rectify_map.h5`` (``rectify_map [480, 640, 2]``, beside
``events.h5``) before binning. ``rectify=True`` maps ``(x, y)`` through it,
rounds to the nearest pixel and drops events that land off the sensor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime.events.binning import Events
from edge_snn.runtime.events.readers.base import EventReader, optional_import

DSEC_SENSOR = (480, 640)
H5_SUFFIXES = (".h5", ".hdf5")


CHUNK_CACHE_BYTES = 1 << 20


def open_h5(path: Path):
    """An ``h5py.File``, with the blosc filter registered (hdf5plugin) before any read.

    The chunk cache is held at 1 MiB per dataset (h5py's default is 8 MiB):
    windows are read front to back, each chunk once, so a larger cache only
    grows the footprint (by up to 32 MiB over the four event columns).
    """
    h5py = optional_import("h5py", "reading DSEC .h5 recordings")
    optional_import("hdf5plugin", "reading blosc-compressed DSEC .h5 recordings")
    try:
        return h5py.File(str(path), "r", rdcc_nbytes=CHUNK_CACHE_BYTES)
    except OSError as err:
        raise UserError(f"cannot open {path} as HDF5 ({err}); pass a DSEC events.h5") from None


class DsecReader(EventReader):
    """Windows of a DSEC ``events.h5``; times are absolute (``t + t_offset``)."""

    def __init__(self, path: str | Path, *, rectify: bool = False):
        super().__init__(path)
        self._file = open_h5(self.path)
        try:
            group = self._file["events"]
            self._columns = {k: group[k] for k in ("x", "y", "t", "p")}
        except KeyError as err:
            self._file.close()
            raise UserError(f"{self.path} has no /events/{{x,y,t,p}} ({err}); it is not a DSEC events file") from None
        lengths = {k: c.shape[0] for k, c in self._columns.items()}
        if len(set(lengths.values())) != 1:
            self._file.close()
            raise UserError(f"{self.path}: /events columns differ in length {lengths}; the file is damaged")
        self._count = lengths["t"]
        self.t_offset = int(self._file["t_offset"][()]) if "t_offset" in self._file else 0
        self._ms_to_idx = np.asarray(self._file["ms_to_idx"], dtype=np.int64) if "ms_to_idx" in self._file else None
        self.sensor_size = DSEC_SENSOR
        if self._count:
            self.t_first = self._t(0, 1)[0] + self.t_offset
            self.t_last = self._t(self._count - 1, self._count)[0] + self.t_offset
        self._rectify_map = self._load_rectify_map() if rectify else None

    def _t(self, lo: int, hi: int) -> np.ndarray:
        try:
            return np.asarray(self._columns["t"][lo:hi], dtype=np.int64)
        except OSError as err:  # a compression filter that is not registered, a truncated file
            raise UserError(f"cannot read {self.path} ({err}); the file is damaged or needs hdf5plugin "
                            "(pip install 'edge-snn[events]')") from None

    def _load_rectify_map(self) -> np.ndarray:
        path = self.path.with_name("rectify_map.h5")
        if not path.is_file():
            raise UserError(f"the model was trained on rectified DSEC events, but {path} is missing; put DSEC's "
                            "rectify_map.h5 beside events.h5")
        with open_h5(path) as f:
            if "rectify_map" not in f:
                raise UserError(f"{path} has no /rectify_map dataset; use the rectify_map.h5 of this sequence")
            table = np.asarray(f["rectify_map"], dtype=np.float32)
        if table.shape != (*DSEC_SENSOR, 2):
            raise UserError(f"{path}: rectify_map is {table.shape}, expected {(*DSEC_SENSOR, 2)}")
        return table

    def _index(self, t_rel: int) -> int:
        """First event index with ``t >= t_rel`` (relative clock)."""
        if self._ms_to_idx is not None:
            ms = t_rel // 1000
            if ms < 0:
                return 0
            if ms >= len(self._ms_to_idx):
                lo = int(self._ms_to_idx[-1]) if len(self._ms_to_idx) else 0
                hi = self._count
            else:
                lo = int(self._ms_to_idx[ms])
                hi = int(self._ms_to_idx[ms + 1]) if ms + 1 < len(self._ms_to_idx) else self._count
            return lo + int(np.searchsorted(self._t(lo, hi), t_rel, side="left"))
        lo, hi = 0, self._count  # bisect the file: log2(N) single-value reads
        while lo < hi:
            mid = (lo + hi) // 2
            if self._t(mid, mid + 1)[0] < t_rel:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def read(self, t0: int, t1: int) -> Events:
        lo, hi = self._index(t0 - self.t_offset), self._index(t1 - self.t_offset)
        if hi <= lo:
            return Events.empty()
        columns = {k: np.asarray(c[lo:hi]) for k, c in self._columns.items()}
        events = Events.of(columns["x"], columns["y"], columns["t"].astype(np.int64) + self.t_offset, columns["p"])
        return events if self._rectify_map is None else self._rectified(events)

    def _rectified(self, events: Events) -> Events:
        h, w = DSEC_SENSOR
        on = (events.x >= 0) & (events.x < w) & (events.y >= 0) & (events.y < h)
        events = events.select(on)
        xy = self._rectify_map[events.y, events.x]
        x, y = np.rint(xy[:, 0]).astype(np.int64), np.rint(xy[:, 1]).astype(np.int64)
        keep = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        return Events(x[keep], y[keep], events.t[keep], events.p[keep])

    def close(self) -> None:
        self._file.close()
