"""The public samplers: one event window, its grey frames, a colour still, or a recording of several windows."""

from __future__ import annotations

import dataclasses

import numpy as np

from edge_snn.data.synthetic.config import ADC_LEVELS, IMAGE_LEVELS, SceneConfig
from edge_snn.data.synthetic.dvs import dvs_events, synthetic_binning, thresholds, transition_us
from edge_snn.data.synthetic.exact_math import log_table
from edge_snn.data.synthetic.render import gray_codes, label, render
from edge_snn.data.synthetic.scene import sample_rng, sample_scene
from edge_snn.errors import UserError
from edge_snn.runtime.events.binning import Events, count_events


def render_event_stream(index: int, config: SceneConfig = SceneConfig(), *,
                        split: str = "train") -> tuple[Events, np.ndarray]:
    """The events of sample ``index`` as a stream: ``(Events over [0, window_us), label int64 [H, W])``.

    Binned with :func:`~edge_snn.data.synthetic.dvs.synthetic_binning` they are
    exactly the frames the synthetic dataset trains on.
    """
    rng = sample_rng(config, split, index)
    scene = sample_scene(rng, config)
    log_frames = log_table()[gray_codes(scene, config)]
    limits = thresholds(config.contrast_threshold, config.threshold_jitter, (config.height, config.width), rng)
    transitions = config.timesteps * config.substeps
    events = dvs_events(log_frames, limits, config.timesteps, rng, config.noise_rate, transition_us(transitions))
    return events, label(scene)


def render_event_sample(index: int, config: SceneConfig = SceneConfig(), *,
                        split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """One event-camera sample.

    Returns ``(events, label)``: events float32 [T, 2, H, W] (ON, OFF counts per
    event frame, >= 0), label int64 [H, W] with values in ``0..len(CLASS_NAMES)-1``
    at the end of the window. Equals :func:`events_from_frames` applied to
    :func:`render_intensity_frames` when noise and jitter are 0.
    """
    events, scene_label = render_event_stream(index, config, split=split)
    return count_events(events, dataclasses.replace(synthetic_binning(config), normalize="none"), 0), scene_label


def render_intensity_frames(index: int, config: SceneConfig = SceneConfig(), *,
                            split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The grey frames behind :func:`render_event_sample` (for panels and debugging).

    Returns ``(frames, label)``: frames float32 [T * substeps + 1, H, W] in
    [0, 1] (12-bit levels), label int64 [H, W] at the last frame.
    """
    rng = sample_rng(config, split, index)
    scene = sample_scene(rng, config)
    frames = gray_codes(scene, config).astype(np.float32) / np.float32(ADC_LEVELS)
    return frames, label(scene)


def render_image_sample(index: int, config: SceneConfig = SceneConfig(), *,
                        split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """A colour still of the same scene as event sample ``index``, at the end of its window.

    For Poisson rate coding. Returns ``(image, label)``: image float32
    [3, H, W] in [-1, 1] (8-bit levels, ``2 * rgb - 1``), label int64 [H, W],
    identical to the label of :func:`render_event_sample` for the same index.
    """
    rng = sample_rng(config, split, index)
    scene = sample_scene(rng, config)
    rgb = render(scene, np.ones(1), rgb=True)[0]
    codes = np.rint(rgb * np.float32(IMAGE_LEVELS))
    image = codes / np.float32(IMAGE_LEVELS / 2) - np.float32(1)
    return np.clip(image, -1, 1).astype(np.float32), label(scene)


def render_recording(index: int, config: SceneConfig = SceneConfig(), *, windows: int = 8,
                     split: str = "test") -> tuple[Events, np.ndarray]:
    """A continuous recording of scene ``index`` over ``windows`` consecutive windows.

    The scene's motion is the sample's (same pixels per window), continued
    over the whole recording and centred on it (the sample's window is the
    middle one); the zoom is held at 1 so objects keep their size. The DVS
    pixels carry their state across windows, as a real camera does.
    Returns ``(events over [0, windows * window_us), labels int64 [windows, H, W])``,
    label ``k`` at the end of window ``k``.
    """
    if not isinstance(windows, int) or windows < 1:
        raise UserError(f"a recording needs windows >= 1, got {windows!r}")
    rng = sample_rng(config, split, index)
    scene = sample_scene(rng, config)
    scene = dataclasses.replace(scene, objects=tuple(dataclasses.replace(o, start_scale=1.0) for o in scene.objects))
    transitions = config.timesteps * config.substeps
    offset = 0.5 - windows / 2  # scene time of the recording's start: the middle window is the sample's
    times = offset + np.arange(windows * transitions + 1, dtype=np.float64) / transitions
    log_frames = log_table()[gray_codes(scene, config, times)]
    limits = thresholds(config.contrast_threshold, config.threshold_jitter, (config.height, config.width), rng)
    events = dvs_events(log_frames, limits, windows * config.timesteps, rng, config.noise_rate,
                        transition_us(transitions))
    labels = np.stack([label(scene, offset + k + 1) for k in range(windows)])
    return events, labels
