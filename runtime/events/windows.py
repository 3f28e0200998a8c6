"""Cut a recording into fixed windows, and fit a recording's sensor to the one a model was trained on.

Windows are ``[t_first + start + k * window, t_first + start + (k + 1) * window)``
in microseconds, ``k = 0 .. ceil(span / window) - 1``, where ``span`` runs to the
last event (or ``start + duration``); the last window may be partial (it is
flagged). Each window is read from the file when it is reached, so memory
stays flat in the recording's length.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from edge_snn.errors import UserError
from edge_snn.runtime.events.binning import Events
from edge_snn.runtime.events.readers.base import EventReader


@dataclass(frozen=True)
class Window:
    """One window: its index, ``[t_start, t_end)`` in microseconds, its events, and whether it is cut short."""

    index: int
    t_start: int
    t_end: int
    events: Events
    partial: bool = False


@dataclass(frozen=True)
class WindowPlan:
    """Which windows of a recording to run: ``count`` windows of ``window_us`` from ``t_start``; ``t_stop`` exclusive."""

    t_start: int
    t_stop: int
    window_us: int

    @property
    def count(self) -> int:
        return max(0, math.ceil((self.t_stop - self.t_start) / self.window_us))


def plan_windows(reader: EventReader, window_us: int, *, start_us: int = 0, duration_us: int | None = None) -> WindowPlan:
    """Windows from ``start_us`` after the first event, for ``duration_us`` (default: to the last event)."""
    if window_us <= 0:
        raise UserError(f"the window must be longer than 0 ms, got {window_us / 1000} ms")
    if start_us < 0 or (duration_us is not None and duration_us <= 0):
        raise UserError("--start must be >= 0 and --duration > 0 (seconds)")
    if reader.t_first is None:
        raise UserError(f"{reader.path} holds no events")
    t_start = reader.t_first + start_us
    end_of_recording = reader.t_last + 1
    if t_start >= end_of_recording:
        raise UserError(f"--start {start_us / 1e6:g} s is past the end of {reader.path}, which spans "
                        f"{(end_of_recording - reader.t_first) / 1e6:.3f} s")
    t_stop = end_of_recording if duration_us is None else min(end_of_recording, t_start + duration_us)
    return WindowPlan(t_start, t_stop, int(window_us))


def iter_windows(reader: EventReader, plan: WindowPlan) -> Iterator[Window]:
    """The planned windows in time order, each read when reached."""
    for k in range(plan.count):
        t0 = plan.t_start + k * plan.window_us
        t1 = t0 + plan.window_us
        yield Window(k, t0, t1, reader.read(t0, min(t1, plan.t_stop)), partial=t1 > plan.t_stop)


@dataclass(frozen=True)
class SensorFit:
    """Map events of a ``source`` sensor onto the ``target`` sensor a model was trained on.

    crop: ``(top, left)`` of a target-sized region of the source (events outside are dropped);
    otherwise the source is scaled: pixel ``(y, x)`` goes to ``(y * H_t // H_s, x * W_t // W_s)``
    (each target pixel collects the events of the source pixels it covers).
    """

    source: tuple[int, int]
    target: tuple[int, int]
    crop: tuple[int, int] | None = None

    def apply(self, events: Events) -> Events:
        if self.crop is not None:
            top, left = self.crop
            h, w = self.target
            keep = (events.y >= top) & (events.y < top + h) & (events.x >= left) & (events.x < left + w)
            return Events(events.x[keep] - left, events.y[keep] - top, events.t[keep], events.p[keep])
        (hs, ws), (ht, wt) = self.source, self.target
        return Events(events.x * wt // ws, events.y * ht // hs, events.t, events.p)

    def describe(self) -> dict:
        return {"source": list(self.source), "target": list(self.target),
                "mode": "crop" if self.crop is not None else "resize", "crop": None if self.crop is None else list(self.crop)}


def parse_crop(text: str) -> str | tuple[int, int]:
    """``"center"`` or ``"TOP,LEFT"`` (pixels) from the command line."""
    if text.strip().lower() == "center":
        return "center"
    try:
        top, left = (int(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--crop takes TOP,LEFT in pixels (e.g. 20,147) or 'center', got {text!r}") from None
    if top < 0 or left < 0:
        raise UserError(f"--crop offsets must be >= 0, got {text!r}")
    return top, left


def fit_sensor(source: tuple[int, int] | None, target: tuple[int, int], *, crop=None,
               resize: bool = False) -> SensorFit | None:
    """How to fit a recording of sensor ``source`` (None: unknown) to ``target``; None when nothing is needed.

    A mismatch without ``crop`` or ``resize`` is one error that names both.
    """
    if crop is not None and resize:
        raise UserError("give --crop or --resize, not both")
    want = f"{target[0]}x{target[1]}"
    if source is None:
        if crop is not None or resize:
            raise UserError(f"the recording does not state its sensor size, so it cannot be cropped or resized to "
                            f"{want}; store it (e.g. sensor_size=[height, width] in the .npz)")
        return None  # the binning checks every event against the model's sensor
    source = (int(source[0]), int(source[1]))
    have = f"{source[0]}x{source[1]}"
    if crop is None and not resize:
        if source != target:
            raise UserError(f"the recording's sensor is {have} but the model was trained on a {want} sensor; "
                            f"pass --crop TOP,LEFT (or --crop center) to take a {want} region, or --resize to scale "
                            f"the recording to {want}, or use a model trained on this camera")
        return None
    if crop is not None:
        if source[0] < target[0] or source[1] < target[1]:
            raise UserError(f"cannot crop a {want} region out of the {have} recording; use --resize")
        if crop == "center":
            crop = ((source[0] - target[0]) // 2, (source[1] - target[1]) // 2)
        top, left = crop
        if top + target[0] > source[0] or left + target[1] > source[1]:
            raise UserError(f"--crop {top},{left} takes rows {top}..{top + target[0] - 1} and columns "
                            f"{left}..{left + target[1] - 1}, outside the {have} recording")
        return SensorFit(source, target, (int(top), int(left)))
    if target[0] > source[0] or target[1] > source[1]:
        raise UserError(f"--resize only shrinks: the {have} recording is smaller than the {want} sensor of the "
                        f"model; use a model trained at this size")
    return SensorFit(source, target)

