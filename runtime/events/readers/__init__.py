"""Open an event recording by its file type: DSEC ``.h5``, AEDAT4, or NumPy ``.npz`` / structured ``.npy``.

Each reader is one module; the heavy libraries (h5py + hdf5plugin,
dv-processing) are imported only when a file of theirs is opened, and a
missing one is one line naming the ``events`` extra.
"""

from __future__ import annotations

from pathlib import Path

from edge_snn.errors import UserError
from edge_snn.runtime.events.readers.aedat4 import AEDAT4_SUFFIXES
from edge_snn.runtime.events.readers.base import EventReader
from edge_snn.runtime.events.readers.dsec import H5_SUFFIXES
from edge_snn.runtime.events.readers.numpy_files import NUMPY_SUFFIXES, is_event_npy

RECORDING_SUFFIXES = H5_SUFFIXES + AEDAT4_SUFFIXES + NUMPY_SUFFIXES

__all__ = ["EventReader", "RECORDING_SUFFIXES", "is_recording", "open_recording"]


def is_recording(path: str | Path) -> bool:
    """True for a file of raw events; ``.npy`` only when it holds structured events (not pre-binned frames)."""
    path = Path(path)
    if not path.is_file():
        return False
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return is_event_npy(path)
    return suffix in RECORDING_SUFFIXES


def open_recording(path: str | Path, *, rectify: bool = False) -> EventReader:
    """The reader for ``path``; ``rectify`` applies DSEC's ``rectify_map.h5`` (other formats refuse it)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"recording {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in RECORDING_SUFFIXES:
        raise UserError(f"{path} is not a recording this runtime reads; use DSEC events.h5, .aedat4, "
                        f".npz or a structured .npy with fields x, y, t, p")
    if rectify and suffix not in H5_SUFFIXES:
        raise UserError(f"the model was trained on rectified DSEC events; {path} is not a DSEC .h5 with a "
                        "rectify_map.h5 beside it, so its events cannot be rectified the same way")
    if suffix in H5_SUFFIXES:
        from edge_snn.runtime.events.readers.dsec import DsecReader

        return DsecReader(path, rectify=rectify)
    if suffix in AEDAT4_SUFFIXES:
        from edge_snn.runtime.events.readers.aedat4 import Aedat4Reader

        return Aedat4Reader(path)
    from edge_snn.runtime.events.readers.numpy_files import NpyReader, NpzReader

    return NpzReader(path) if suffix == ".npz" else NpyReader(path)
