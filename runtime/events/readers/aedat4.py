"""iniVation AEDAT4 (``.aedat4``) through iniVation's own ``dv-processing`` (``dv_processing`` on PyPI).

Chosen over the smaller ``aedat`` decoder because it reads a time range
directly (``MonoCameraRecording.getEventsTimeRange``, through the file's
packet table: no scan, no whole-file load), gives the sensor resolution,
and can also *write* AEDAT4, which the tests use for real fixture files.
Both install from wheels for CPython 3.10 on aarch64 (the Jetson).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime.events.binning import Events
from edge_snn.runtime.events.readers.base import EventReader, optional_import

AEDAT4_SUFFIXES = (".aedat4",)


class Aedat4Reader(EventReader):
    """Windows of the event stream of an AEDAT4 file (one camera)."""

    def __init__(self, path: str | Path):
        super().__init__(path)
        dv = optional_import("dv_processing", "reading AEDAT4 recordings")
        if not self.path.is_file():
            raise UserError(f"recording {self.path} does not exist")
        try:
            self._recording = dv.io.MonoCameraRecording(str(self.path))
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0][:200]
            raise UserError(f"cannot read {self.path} as AEDAT4 ({first}); pass a .aedat4 file from a DV camera") from None
        if not self._recording.isEventStreamAvailable():
            raise UserError(f"{self.path} holds no event stream (frames or IMU only); record with events enabled")
        width, height = self._recording.getEventResolution()
        self.sensor_size = (int(height), int(width))
        first, last = self._recording.getTimeRange()
        self.t_first, self.t_last = int(first), int(last)

    def read(self, t0: int, t1: int) -> Events:
        store = self._recording.getEventsTimeRange(int(t0), int(t1))
        if store is None or len(store) == 0:
            return Events.empty()
        a = store.numpy()
        return Events.of(a["x"], a["y"], np.asarray(a["timestamp"], dtype=np.int64), a["polarity"])

    def close(self) -> None:
        self._recording = None
