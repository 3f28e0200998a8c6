"""The DVS pixel model: log-intensity frames in, an event stream ``(x, y, t, p)`` out.

Time base: the ``n`` transitions between rendered frames are ``unit`` microseconds
apart, ``unit = ceil(50 ms / transitions per window)``, so a window of
``T * substeps`` transitions lasts ``T * substeps * unit`` us (50 ms for the
default 20 x 4) and transition ``k`` (1-based) happens at ``t = (k - 1) * unit``.
The runtime's binning (:func:`edge_snn.runtime.events.binning.bin_events`,
``b = t * T // window``) then puts transition ``k`` in bin ``(k - 1) * T // n``,
the rule this model has always used: the counts are unchanged, but they are now
made by the same function that bins a recording on the drone.
Background-noise events of bin ``b`` sit at the bin's first microsecond,
``ceil(b * window / T)``.
"""

from __future__ import annotations

import math

import numpy as np

from edge_snn.data.synthetic.config import LOG_EPS, SceneConfig, check_dvs_parameters
from edge_snn.data.synthetic.exact_math import log
from edge_snn.errors import UserError
from edge_snn.runtime.events.binning import BinningSpec, Events, count_events

WINDOW_TARGET_US = 50_000
EVENT_CLIP = 4.0
"""Synthetic frames clip counts at 4 and scale by 1/4 into [0, 1]: a fast dark
vehicle can fire 20 events per pixel in one bin, and unclipped those few pixels
dominate the first layer's batch norm."""


def transition_us(transitions_per_window: int) -> int:
    """Microseconds between two rendered frames when a window holds ``transitions_per_window`` transitions."""
    return math.ceil(WINDOW_TARGET_US / transitions_per_window)


def window_us(config: SceneConfig) -> int:
    """Length of one synthetic window in microseconds (50 ms, rounded up to whole transitions)."""
    transitions = config.timesteps * config.substeps
    return transitions * transition_us(transitions)


def synthetic_binning(config: SceneConfig) -> BinningSpec:
    """How the built-in synthetic event frames are made (recorded in checkpoints and ONNX files)."""
    return BinningSpec(window_us=window_us(config), bins=config.timesteps, timesteps=config.timesteps,
                       sensor=(config.height, config.width), polarity="on_off", time_bins="window",
                       normalize="clip_scale", clip=EVENT_CLIP, scale=1 / EVENT_CLIP)


def dvs_events(log_frames: np.ndarray, thresholds, bins: int, rng: np.random.Generator, noise_rate: float,
               unit_us: int) -> Events:
    """Events from log-intensity frames [n, H, W] (float32), time-sorted; see :func:`events_from_frames`.

    bins: noise bins over the whole sequence (T for one window); unit_us: time between frames.
    """
    n, h, w = log_frames.shape
    reference = log_frames[0].copy()
    pixels, times, polarity = [], [], []
    for k in range(1, n):  # the one sequential part: the reference depends on the past
        crossings = np.trunc((log_frames[k] - reference) / thresholds)  # signed whole crossings
        reference += crossings * thresholds
        flat = crossings.ravel()
        where = np.flatnonzero(flat)
        if where.size:
            count = np.abs(flat[where]).astype(np.int64)
            pixels.append(np.repeat(where, count))
            polarity.append(np.repeat(flat[where] > 0, count))
            times.append(np.full(int(count.sum()), (k - 1) * unit_us, dtype=np.int64))
    if noise_rate > 0:
        noise = rng.random((bins, 2, h, w), dtype=np.float32) < np.float32(noise_rate / 2)
        b, channel, y, x = np.nonzero(noise)
        total_us = (n - 1) * unit_us
        pixels.append(y * w + x)
        polarity.append(channel == 0)
        times.append(-(-b * total_us // bins))
    if not pixels:
        return Events.empty()
    pixel, t, p = np.concatenate(pixels), np.concatenate(times), np.concatenate(polarity)
    order = np.argsort(t, kind="stable")
    pixel, t, p = pixel[order], t[order], p[order]
    return Events.of(pixel % w, pixel // w, t, p)


def thresholds(contrast_threshold: float, jitter: float, shape, rng: np.random.Generator):
    if jitter == 0:
        return np.float32(contrast_threshold)
    return (contrast_threshold * (1 + jitter * (2 * rng.random(shape) - 1))).astype(np.float32)


def events_from_frames(frames: np.ndarray, *, contrast_threshold: float, timesteps: int,
                       rng: np.random.Generator, noise_rate: float = 0.0,
                       threshold_jitter: float = 0.0) -> np.ndarray:
    """ON/OFF event counts from intensity frames with an idealised DVS pixel.

    Each pixel keeps a reference ``r`` (initially ``L[0]``) of its log intensity
    ``L = log(I + LOG_EPS)``. At every new frame ``k`` it emits
    ``n = trunc((L[k] - r) / C)`` events (ON if n > 0, OFF if n < 0, i.e. one per
    whole threshold crossed since the last event) and moves ``r += n C``. The
    ``n_frames - 1`` frame transitions are binned evenly into ``timesteps``
    event frames: transition ``k`` (1-based) goes to ``(k - 1) * T // (n_frames - 1)``
    (through the runtime's binning, see the module docstring).
    The log is computed in float64 (our own, machine-independent) and the pixel
    state is kept in float32, exactly as :func:`render_event_sample` does.

    Args:
        frames: intensities [n_frames, H, W] in [0, 1] (any float dtype),
            ``n_frames - 1 >= timesteps``.
        contrast_threshold: C, in log-intensity units (> 0).
        timesteps: number of event frames T.
        rng: generator for threshold jitter and noise (not drawn from when both are 0).
        noise_rate: background-activity noise, events per pixel per event frame,
            split evenly between ON and OFF (default 0).
        threshold_jitter: per-pixel relative spread of C, uniform in
            ``C * (1 +- jitter)`` (default 0).

    Returns:
        float32 [T, 2, H, W]: channel 0 = ON counts, 1 = OFF counts (>= 0).
    """
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.shape[0] < 2:
        raise UserError(f"events_from_frames: frames must be [n_frames >= 2, H, W], got shape {frames.shape}")
    if not isinstance(timesteps, (int, np.integer)) or not 1 <= timesteps <= frames.shape[0] - 1:
        raise UserError(f"events_from_frames: timesteps must be an integer in 1..n_frames-1 "
                        f"(= {frames.shape[0] - 1}), got {timesteps!r}")
    check_dvs_parameters("events_from_frames", contrast_threshold, noise_rate, threshold_jitter)
    frames = frames.astype(np.float64)
    if not np.all(np.isfinite(frames)) or frames.min() < 0:
        raise UserError("events_from_frames: frames must be finite intensities >= 0 (scale them to [0, 1])")
    transitions = frames.shape[0] - 1
    unit = transition_us(transitions)
    limits = thresholds(float(contrast_threshold), threshold_jitter, frames.shape[1:], rng)
    events = dvs_events(log(frames + LOG_EPS).astype(np.float32), limits, int(timesteps), rng, noise_rate, unit)
    spec = BinningSpec(window_us=transitions * unit, bins=int(timesteps), timesteps=int(timesteps),
                       sensor=frames.shape[1:], normalize="none")
    return count_events(events, spec, 0)
