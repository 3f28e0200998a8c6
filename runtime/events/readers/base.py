"""What every recording reader gives the windowing: a sensor size, a time span, and events by time range."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path

from edge_snn.errors import UserError
from edge_snn.runtime.events.binning import Events

EXTRA_HINT = "pip install 'edge-snn[events]'"


def optional_import(module: str, purpose: str):
    """Import ``module`` or raise one line saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{purpose} needs the Python package {module.split('.')[0]!r}, which is not installed: "
                        f"{EXTRA_HINT}") from None


class EventReader(ABC):
    """A recording opened for reading in time windows, without loading it whole.

    sensor_size: ``(height, width)`` if the file says it, else None.
    t_first, t_last: first and last event time in microseconds (None if empty).
    forward_only: :meth:`read` must be called with non-decreasing windows
        (readers of compressed streams); the windowing does so anyway.
    """

    forward_only = False

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.sensor_size: tuple[int, int] | None = None
        self.t_first: int | None = None
        self.t_last: int | None = None

    @abstractmethod
    def read(self, t0: int, t1: int) -> Events:
        """The events with ``t0 <= t < t1`` (microseconds), in time order."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"
