"""How a window of events becomes the event frames a model reads: one implementation, training and drone alike.

A model trained on events learned one particular way of turning ``(x, y, t, p)``
into frames. :class:`BinningSpec` records it (it travels in the ONNX metadata
as ``edge_snn.binning``) and :func:`bin_events` applies it. Every event
dataset (the synthetic scenes, DDD17, DSEC-Semantic) builds its training
frames through the same functions, so a recording binned on the drone gives
exactly the frames the model was trained on.

The stages, in order, for the events of one window ``[t0, t0 + window_us)``:

1. **sensor**: every event must lie on the ``sensor = (H, W)`` grid the model
   was trained on (else a UserError that names ``--crop`` / ``--resize``);
2. **crop**: keep ``top <= y < top + h``, ``left <= x < left + w`` and shift
   to the crop's origin (DDD17 keeps the 200 labelled rows of 260, DSEC the
   top 440 of 480);
3. **time bins**: ``time_bins="window"``: bin ``b = (t - t0) * bins // window_us``
   (equal slices of the window); ``"event_span"``: equal slices of
   ``[t_first, t_last]`` of the window's kept events, ``b = (t - t_first) * bins
   // (t_last - t_first + 1)`` (ESS's DDD17 rule); integer arithmetic, t in us;
4. **count** per bin, channel and pixel: ``polarity="on_off"`` gives channel 0
   = ON (``p > 0``) and 1 = OFF, ``"sum"`` one channel of all events;
5. **resize** (only shrinks): pixel ``(y, x)`` of the crop goes to
   ``(y * H' // h, x * W' // w)`` and the sums are multiplied by
   ``H' W' / (h w)``, an area average that keeps events per pixel comparable;
6. **normalize**: ``"clip_scale"``: ``min(n, clip) * scale`` (the synthetic
   scenes: clip 4, scale 1/4, so [0, 1]); ``"minmax_half"``: each ``[H, W]``
   plane to [-0.5, 0.5], a constant plane to -0.5 (the Ev-SegNet DDD17
   loader); ``"none"``: raw counts;
7. **steps**: ``bins`` may be a divisor of ``timesteps`` (T); each bin is then
   shown ``T / bins`` consecutive steps (``bins=1``: the one frame repeated).

The result is float32 ``[timesteps, channels, H', W']``. Sums are exact
integers in float64 before the one cast to float32, so the event path and
the pre-binned-histogram path (:func:`frames_from_counts`) agree bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from edge_snn.errors import UserError

POLARITIES = ("on_off", "sum")
TIME_BINS = ("window", "event_span")
NORMALIZATIONS = ("none", "clip_scale", "minmax_half")
SPEC_VERSION = 1


@dataclass(frozen=True)
class Events:
    """A batch of events as four equal-length 1-D arrays.

    x: column, y: row (int64 pixels); t: int64 microseconds; p: int8 polarity,
    ON when ``p > 0`` (files store {0, 1}, {-1, 1} or booleans).
    """

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    p: np.ndarray

    @classmethod
    def of(cls, x, y, t, p) -> Events:
        x, y, t, p = (np.asarray(a).reshape(-1) for a in (x, y, t, p))
        if not len(x) == len(y) == len(t) == len(p):
            raise UserError(f"event arrays differ in length: x {len(x)}, y {len(y)}, t {len(t)}, p {len(p)}")
        return cls(x.astype(np.int64, copy=False), y.astype(np.int64, copy=False), t.astype(np.int64, copy=False),
                   (p > 0).astype(np.int8) if p.dtype == np.bool_ else p.astype(np.int8, copy=False))

    @classmethod
    def empty(cls) -> Events:
        return cls.of(*(np.zeros(0, np.int64) for _ in range(4)))

    @classmethod
    def concat(cls, parts: list[Events]) -> Events:
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(e, f) for e in parts]) for f in ("x", "y", "t", "p")))

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def select(self, mask_or_slice) -> Events:
        return Events(self.x[mask_or_slice], self.y[mask_or_slice], self.t[mask_or_slice], self.p[mask_or_slice])


def _pair(value, name: str) -> tuple[int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(_is_int(v) and v > 0 for v in value):
        raise UserError(f"binning: {name} must be [height, width] of positive integers, got {value!r}")
    return int(value[0]), int(value[1])


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class BinningSpec:
    """How the frames of one window are made (see the module docstring for each stage).

    window_us: window length in microseconds (default 50 ms).
    bins: time bins per window; a divisor of ``timesteps``.
    timesteps: frames handed to the model per window (its trained T).
    sensor: ``(height, width)`` of the event camera the training data came from.
    polarity: ``"on_off"`` (2 channels, default) or ``"sum"`` (1 channel).
    time_bins: ``"window"`` (default) or ``"event_span"``.
    normalize: ``"clip_scale"`` (default), ``"minmax_half"`` or ``"none"``.
    clip, scale: for ``clip_scale``: ``min(count, clip) * scale`` (defaults 4, 1/4).
    crop: ``(top, left, height, width)`` kept of the sensor, or None (all of it).
    resize: ``(height, width)`` of the frames, or None (the crop's size); only shrinks.
    rectify: events are first mapped through the recording's rectification
        map (DSEC's ``rectify_map.h5``; default False).
    """

    window_us: int
    bins: int
    timesteps: int
    sensor: tuple[int, int]
    polarity: str = "on_off"
    time_bins: str = "window"
    normalize: str = "clip_scale"
    clip: float = 4.0
    scale: float = 0.25
    crop: tuple[int, int, int, int] | None = None
    resize: tuple[int, int] | None = None
    rectify: bool = False

    def __post_init__(self) -> None:
        for name in ("window_us", "bins", "timesteps"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise UserError(f"binning: {name} must be a positive integer, got {value!r}")
        if self.timesteps % self.bins:
            raise UserError(f"binning: bins ({self.bins}) must divide timesteps ({self.timesteps})")
        object.__setattr__(self, "sensor", _pair(self.sensor, "sensor"))
        for name, allowed in (("polarity", POLARITIES), ("time_bins", TIME_BINS), ("normalize", NORMALIZATIONS)):
            if getattr(self, name) not in allowed:
                raise UserError(f"binning: {name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if not (_is_real(self.clip) and self.clip > 0 and _is_real(self.scale) and self.scale > 0):
            raise UserError(f"binning: clip and scale must be positive numbers, got {self.clip!r}, {self.scale!r}")
        object.__setattr__(self, "clip", float(self.clip))
        object.__setattr__(self, "scale", float(self.scale))
        if not isinstance(self.rectify, bool):
            raise UserError(f"binning: rectify must be true or false, got {self.rectify!r}")
        if self.crop is not None:
            crop = self.crop
            if not isinstance(crop, (list, tuple)) or len(crop) != 4 or not all(_is_int(v) and v >= 0 for v in crop):
                raise UserError(f"binning: crop must be [top, left, height, width] of integers >= 0, got {crop!r}")
            top, left, h, w = (int(v) for v in crop)
            if h < 1 or w < 1 or top + h > self.sensor[0] or left + w > self.sensor[1]:
                raise UserError(f"binning: crop {list(crop)} does not fit the {self.sensor[0]}x{self.sensor[1]} sensor")
            object.__setattr__(self, "crop", (top, left, h, w))
        if self.resize is not None:
            size = _pair(self.resize, "resize")
            region = self.region_size
            if size[0] > region[0] or size[1] > region[1]:
                raise UserError(f"binning: resize {list(size)} is larger than the {region[0]}x{region[1]} region; "
                                "resizing only shrinks")
            object.__setattr__(self, "resize", None if size == region else size)

    # --- derived -----------------------------------------------------------
    @property
    def channels(self) -> int:
        return 2 if self.polarity == "on_off" else 1

    @property
    def region_size(self) -> tuple[int, int]:
        """``(h, w)`` of the sensor region kept by the crop."""
        return self.sensor if self.crop is None else self.crop[2:]

    @property
    def output_size(self) -> tuple[int, int]:
        """``(H, W)`` of the frames."""
        return self.resize or self.region_size

    @property
    def input_range(self) -> tuple[float, float]:
        if self.normalize == "clip_scale":
            return 0.0, float(self.clip * self.scale)
        if self.normalize == "minmax_half":
            return -0.5, 0.5
        return 0.0, float("inf")

    @property
    def window_ms(self) -> float:
        return self.window_us / 1000

    # --- serialization -----------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("sensor", "crop", "resize"):
            d[key] = None if d[key] is None else list(d[key])
        return {"version": SPEC_VERSION, **d}

    @classmethod
    def from_dict(cls, d, *, source: str = "binning") -> BinningSpec:
        """The spec in ``d`` (what :meth:`to_dict` wrote); unknown, missing or damaged values are a UserError."""
        if not isinstance(d, dict):
            raise UserError(f"{source}: the binning must be a JSON object, got {type(d).__name__}; re-export the model")
        d = dict(d)
        version = d.pop("version", None)
        if version != SPEC_VERSION:
            raise UserError(f"{source}: binning version {version!r} is not {SPEC_VERSION}; "
                            "re-export the model or upgrade edge-snn")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        required = [name for name in ("window_us", "bins", "timesteps", "sensor") if name not in d]
        if unknown or required:
            raise UserError(f"{source}: damaged binning (unknown {unknown}, missing {required}); re-export the model")
        try:
            return cls(**d)
        except UserError as err:
            raise UserError(f"{source}: {err}; re-export the model") from None


# --- the stages ------------------------------------------------------------------

def _pixel_map(src: tuple[int, int], dst: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, float]:
    """Row and column of the destination pixel each source pixel falls in, and the area factor."""
    rows = np.arange(src[0], dtype=np.int64) * dst[0] // src[0]
    cols = np.arange(src[1], dtype=np.int64) * dst[1] // src[1]
    return rows, cols, (dst[0] * dst[1]) / (src[0] * src[1])


def _on_sensor(events: Events, spec: BinningSpec, t0: int) -> Events:
    height, width = spec.sensor
    outside = (events.x < 0) | (events.x >= width) | (events.y < 0) | (events.y >= height)
    if outside.any():
        bad = events.select(outside)
        raise UserError(
            f"{int(outside.sum())} event(s) of the window at t={t0} us lie outside the {height}x{width} sensor the "
            f"model was trained on (x up to {int(bad.x.max())}, y up to {int(bad.y.max())}); the recording comes "
            "from another sensor: pass --crop TOP,LEFT or --resize to fit it, or use a model trained at its size")
    return events


def _time_bin(events: Events, spec: BinningSpec, t0: int) -> np.ndarray:
    if spec.time_bins == "window":
        return (events.t - t0) * spec.bins // spec.window_us
    if not len(events):
        return np.zeros(0, np.int64)
    first = int(events.t.min())
    return (events.t - first) * spec.bins // (int(events.t.max()) - first + 1)


def count_events(events: Events, spec: BinningSpec, t0: int) -> np.ndarray:
    """Stages 1-4: float32 ``[bins, channels, h, w]`` event counts at the crop's size.

    ``t0`` is the window's start in microseconds (events outside the window are dropped).
    """
    size = spec.region_size
    return _finish(_counts(events, spec, t0, size, None), 1.0).reshape(spec.bins, spec.channels, *size)


def _counts(events: Events, spec: BinningSpec, t0: int, size, pixel_map) -> np.ndarray:
    """int64 flat counts ``[bins * channels * size]`` of the window's events (stages 1-4, 5's mapping)."""
    events = _on_sensor(events, spec, t0)
    if spec.crop is not None:
        top, left, h, w = spec.crop
        keep = (events.y >= top) & (events.y < top + h) & (events.x >= left) & (events.x < left + w)
        events = Events(events.x[keep] - left, events.y[keep] - top, events.t[keep], events.p[keep])
    b = _time_bin(events, spec, t0)
    inside = (b >= 0) & (b < spec.bins)
    events, b = events.select(inside), b[inside]
    y, x = events.y, events.x
    if pixel_map is not None:
        y, x = pixel_map[0][y], pixel_map[1][x]
    channel = (events.p <= 0).astype(np.int64) if spec.channels == 2 else np.zeros_like(b)
    flat = ((b * spec.channels + channel) * size[0] + y) * size[1] + x
    return np.bincount(flat, minlength=spec.bins * spec.channels * size[0] * size[1])


def _finish(total: np.ndarray, factor: float) -> np.ndarray:
    """Sums (exact integers) times the area factor, cast once to float32."""
    out = total.astype(np.float64)
    if factor != 1.0:
        out *= factor
    return out.astype(np.float32)


def resize_counts(counts: np.ndarray, spec: BinningSpec) -> np.ndarray:
    """Stage 5 on count frames ``[n, c, h, w]`` (h, w = the crop's size): area-averaged to ``output_size``."""
    src, dst = spec.region_size, spec.output_size
    if tuple(counts.shape[-2:]) != tuple(src):
        raise UserError(f"event frames are {counts.shape[-2]}x{counts.shape[-1]}, the binning expects {src[0]}x{src[1]}")
    if dst == src:
        return counts.astype(np.float32, copy=False)
    rows, cols, factor = _pixel_map(src, dst)
    lead = counts.shape[:-2]
    planes = int(np.prod(lead))
    index = (np.arange(planes)[:, None, None] * dst[0] + rows[None, :, None]) * dst[1] + cols[None, None, :]
    total = np.bincount(index.ravel(), weights=counts.reshape(planes, -1).ravel().astype(np.float64),
                        minlength=planes * dst[0] * dst[1])
    return _finish(total, factor).reshape(*lead, *dst)


def normalize_frames(frames: np.ndarray, spec: BinningSpec) -> np.ndarray:
    """Stage 6 on float32 frames ``[n, c, H, W]``."""
    if spec.normalize == "clip_scale":
        return np.minimum(frames, np.float32(spec.clip)) * np.float32(spec.scale)
    if spec.normalize == "minmax_half":
        lo = frames.min(axis=(-2, -1), keepdims=True)
        span = frames.max(axis=(-2, -1), keepdims=True) - lo
        span = np.where(span > 0, span, np.float32(1))
        return ((frames - lo) / span - np.float32(0.5)).astype(np.float32)
    return frames


def expand_steps(frames: np.ndarray, spec: BinningSpec) -> np.ndarray:
    """Stage 7: ``[bins, ...]`` -> ``[timesteps, ...]``, each bin repeated ``timesteps / bins`` times."""
    repeat = spec.timesteps // spec.bins
    return frames if repeat == 1 else np.repeat(frames, repeat, axis=0)


def frames_from_counts(counts: np.ndarray, spec: BinningSpec) -> np.ndarray:
    """Stages 5-7 on pre-binned count frames ``[bins, c, h, w]`` (a dataset shipped as histograms)."""
    return expand_steps(normalize_frames(resize_counts(counts, spec), spec), spec)


def bin_events(events: Events, spec: BinningSpec, t0: int) -> np.ndarray:
    """All stages: the float32 ``[timesteps, channels, H, W]`` frames of the window starting at ``t0`` (us)."""
    size = spec.output_size
    if size == spec.region_size:
        counts = _finish(_counts(events, spec, t0, size, None), 1.0)
    else:
        rows, cols, factor = _pixel_map(spec.region_size, size)
        counts = _finish(_counts(events, spec, t0, size, (rows, cols)), factor)
    counts = counts.reshape(spec.bins, spec.channels, *size)
    return expand_steps(normalize_frames(counts, spec), spec)
