"""Events in NumPy files: ``.npy`` structured arrays, ``.npz`` with ``x, y, t, p`` arrays or one structured array.

Accepted forms (``t`` in microseconds, sorted; ``p`` ON when > 0):

* ``.npy``: a 1-D structured array with fields ``x, y, t, p`` (``np.save``);
  memory-mapped, windows found by binary search on ``t``.
* ``.npz``: arrays ``x, y, t, p`` of equal length, or one 1-D structured array
  with those fields; optional ``sensor_size`` (``[height, width]``). Members
  are streamed in chunks straight out of the zip (stored or deflated, as
  ``np.savez`` / ``np.savez_compressed`` write them), never loaded whole;
  windows must come in time order, as the windowing asks for them.

Files are read with ``allow_pickle=False``: an object array is refused.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime.events.binning import Events
from edge_snn.runtime.events.readers.base import EventReader

NUMPY_SUFFIXES = (".npz", ".npy")
FIELDS = ("x", "y", "t", "p")
CHUNK = 1 << 18  # events per read from a zip member
_FORMS = ("a structured array with fields x, y, t, p (.npy or .npz), or .npz arrays x, y, t, p")


def _header(fh, where: str) -> tuple[np.dtype, int]:
    """dtype and length of the 1-D array whose ``.npy`` header starts at ``fh``."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        reader = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
        if reader is None:
            raise ValueError(f"npy format version {version}")
        shape, fortran, dtype = reader(fh)
    except ValueError as err:
        raise UserError(f"{where} is not a readable .npy array ({err})") from None
    if dtype.hasobject:
        raise UserError(f"{where} holds Python objects; events must be plain numbers ({_FORMS})")
    if len(shape) != 1:
        raise UserError(f"{where} has shape {shape}; event columns must be 1-D ({_FORMS})")
    return dtype, int(shape[0])


def is_event_npy(path: Path) -> bool:
    """True if ``path`` is an ``.npy`` of structured events (not pre-binned frames)."""
    try:
        with open(path, "rb") as fh:
            fmt = np.lib.format
            version = fmt.read_magic(fh)
            reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            _, _, dtype = reader(fh)
    except (OSError, ValueError):
        return False
    return dtype.names is not None and set(FIELDS) <= set(dtype.names)


class _MemberStream:
    """Sequential chunks of one 1-D array stored as a member of a zip (``.npz``)."""

    def __init__(self, archive: zipfile.ZipFile, name: str, where: str):
        self._fh = archive.open(name)
        self.dtype, self.length = _header(self._fh, where)
        self.where = where

    def read(self, n: int) -> np.ndarray:
        data = self._fh.read(n * self.dtype.itemsize)
        if len(data) % self.dtype.itemsize:
            raise UserError(f"{self.where} ends in the middle of an element; the file is truncated")
        return np.frombuffer(data, dtype=self.dtype)

    def close(self) -> None:
        self._fh.close()


class NpzReader(EventReader):
    """Forward-only windows of an ``.npz`` recording, streamed from the zip in chunks of :data:`CHUNK` events."""

    forward_only = True

    def __init__(self, path: str | Path):
        super().__init__(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile) as err:
            raise UserError(f"cannot read {self.path} as .npz ({err}); save events with numpy.savez") from None
        members = {n[:-4]: n for n in self._zip.namelist() if n.endswith(".npy")}
        if set(FIELDS) <= set(members):
            self._layout = {f: members[f] for f in FIELDS}
        else:
            structured = [k for k in members if k not in ("sensor_size",)]
            if len(structured) != 1:
                raise UserError(f"{self.path} has arrays {sorted(members)}; expected {_FORMS}")
            self._layout = {"events": members[structured[0]]}
        if "sensor_size" in members:
            with self._zip.open(members["sensor_size"]) as fh:
                size = np.lib.format.read_array(fh, allow_pickle=False).reshape(-1)
            if size.shape != (2,) or not np.all(size > 0):
                raise UserError(f"{self.path}: sensor_size must be [height, width], got {size.tolist()}")
            self.sensor_size = (int(size[0]), int(size[1]))
        self.t_first, self.t_last, self._length = self._scan_times()
        self._open_streams()

    def _open_streams(self) -> None:
        self._streams = {k: _MemberStream(self._zip, n, f"{self.path}:{n}") for k, n in self._layout.items()}
        if "events" in self._streams:
            names = self._streams["events"].dtype.names or ()
            if not set(FIELDS) <= set(names):
                raise UserError(f"{self.path}: the structured array has fields {names}; expected {_FORMS}")
        else:
            lengths = {k: s.length for k, s in self._streams.items()}
            if len(set(lengths.values())) != 1:
                raise UserError(f"{self.path}: arrays x, y, t, p differ in length {lengths}")
        self._pending = Events.empty()
        self._done = 0  # events taken out of the streams
        self._position = None  # the last window's end: windows must not go back

    def _scan_times(self) -> tuple[int | None, int | None, int]:
        """First and last ``t`` with one streamed pass over the ``t`` column (checks the order too)."""
        name = self._layout.get("t", self._layout.get("events"))
        stream = _MemberStream(self._zip, name, f"{self.path}:{name}")
        first = last = None
        try:
            while True:
                chunk = stream.read(CHUNK)
                if not len(chunk):
                    break
                t = np.asarray(chunk["t"] if chunk.dtype.names else chunk, dtype=np.int64)
                if (last is not None and t[0] < last) or np.any(np.diff(t) < 0):
                    raise UserError(f"{self.path}: events are not sorted by t; sort them (np.argsort(t, kind='stable'))")
                first = int(t[0]) if first is None else first
                last = int(t[-1])
        finally:
            stream.close()
        return first, last, stream.length

    def _next_chunk(self) -> Events | None:
        if self._done >= self._length:
            return None
        if "events" in self._streams:
            a = self._streams["events"].read(CHUNK)
            chunk = Events.of(a["x"], a["y"], a["t"], a["p"])
        else:
            chunk = Events.of(*(self._streams[f].read(CHUNK) for f in FIELDS))
        self._done += len(chunk)
        return chunk

    def read(self, t0: int, t1: int) -> Events:
        if self._position is not None and t0 < self._position:
            self.close_streams()
            self._open_streams()  # going back: start the stream again
        self._position = t1
        parts = [self._pending]
        while not len(parts[-1]) or parts[-1].t[-1] < t1:
            chunk = self._next_chunk()
            if chunk is None:
                break
            parts.append(chunk)
        events = Events.concat(parts)
        start, end = np.searchsorted(events.t, [t0, t1], side="left")
        self._pending = events.select(slice(end, None))
        return events.select(slice(start, end))

    def close_streams(self) -> None:
        for s in self._streams.values():
            s.close()

    def close(self) -> None:
        self.close_streams()
        self._zip.close()


class NpyReader(EventReader):
    """Windows of a structured ``.npy`` recording, memory-mapped."""

    def __init__(self, path: str | Path):
        super().__init__(path)
        try:
            self._array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as err:
            raise UserError(f"cannot read {self.path} as .npy events ({err}); expected {_FORMS}") from None
        names = self._array.dtype.names or ()
        if self._array.ndim != 1 or not set(FIELDS) <= set(names):
            raise UserError(f"{self.path} holds an array of shape {self._array.shape} and fields {names}; "
                            f"expected {_FORMS}")
        if len(self._array):
            self.t_first, self.t_last = int(self._array["t"][0]), int(self._array["t"][-1])

    def read(self, t0: int, t1: int) -> Events:
        t = self._array["t"]
        start, end = np.searchsorted(t, [t0, t1], side="left")
        part = np.asarray(self._array[start:end])
        if np.any(np.diff(part["t"].astype(np.int64)) < 0):
            raise UserError(f"{self.path}: events are not sorted by t; sort them (np.argsort(t, kind='stable'))")
        return Events.of(part["x"], part["y"], part["t"], part["p"])
