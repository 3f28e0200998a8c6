"""Specification of the built-in synthetic event-camera segmentation dataset."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest

import edge_snn.data.synthetic as synthetic
from edge_snn.data.synthetic import dvs, exact_math, render, scene
from edge_snn.data.synthetic import (
    CLASS_NAMES,
    LOG_EPS,
    SceneConfig,
    events_from_frames,
    render_event_sample,
    render_image_sample,
    render_intensity_frames,
)
from edge_snn.errors import UserError

C = 0.15
NO_NOISE = SceneConfig(noise_rate=0.0, threshold_jitter=0.0)


def _frames_from_log(log_intensity: np.ndarray) -> np.ndarray:
    """Intensities whose ``log(I + LOG_EPS)`` is the given array."""
    return np.exp(log_intensity) - LOG_EPS


def _rng() -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(1234))


# --- the DVS pixel model on hand-made input ----------------------------------

def test_ramp_of_three_and_a_half_thresholds_gives_three_on_events():
    # log intensity rises by 0.7 C per frame over 5 transitions (3.5 C in all):
    # cumulative 0.7, 1.4, 2.1, 2.8, 3.5 -> whole crossings at transitions 2, 3, 5.
    log_i = np.log(0.3) + 0.7 * C * np.arange(6)
    frames = _frames_from_log(np.broadcast_to(log_i[:, None, None], (6, 3, 4)).copy())
    events = events_from_frames(frames, contrast_threshold=C, timesteps=5, rng=_rng())
    assert events.shape == (5, 2, 3, 4) and events.dtype == np.float32
    assert np.all(events[:, 0].sum(0) == 3)
    assert np.all(events[:, 1] == 0)
    np.testing.assert_array_equal(events[:, 0, 0, 0], [0, 1, 1, 0, 1])


def test_falling_ramp_gives_off_events_binned_unevenly():
    log_i = np.log(0.8) - 0.7 * C * np.arange(10)  # falls 6.3 C over 9 transitions
    frames = _frames_from_log(log_i[:, None, None])
    events = events_from_frames(frames, contrast_threshold=C, timesteps=4, rng=_rng())
    assert events[:, 0].sum() == 0
    # crossings at transitions 2, 3, 5, 6, 8, 9; transition k goes to bin (k - 1) * 4 // 9
    np.testing.assert_array_equal(events[:, 1, 0, 0], [2, 1, 1, 2])


def test_constant_frames_emit_nothing_without_noise():
    frames = np.full((9, 5, 7), 0.42, dtype=np.float32)
    events = events_from_frames(frames, contrast_threshold=C, timesteps=4, rng=_rng(), threshold_jitter=0.1)
    assert not events.any()


def test_moving_edge_emits_on_events_only_where_it_passed():
    # A bright half-plane advancing one column per frame over a dark one.
    frames = np.full((6, 4, 12), 0.1, dtype=np.float64)
    for k in range(6):
        frames[k, :, : 3 + k] = 0.9
    events = events_from_frames(frames, contrast_threshold=C, timesteps=5, rng=_rng())
    on = events[:, 0].sum(0)
    assert events[:, 1].sum() == 0
    assert np.all(on[:, 3:8] > 0) and not on[:, :3].any() and not on[:, 8:].any()
    # column 3 + k brightens at transition k + 1, i.e. in bin k
    for k in range(5):
        assert events[k, 0, :, 3 + k].all() and events[k, 0].sum() == events[k, 0, :, 3 + k].sum()


def test_threshold_jitter_keeps_whole_crossings_and_noise_has_its_rate():
    log_i = np.log(0.3) + 0.7 * C * np.arange(6)
    frames = _frames_from_log(np.broadcast_to(log_i[:, None, None], (6, 20, 20)).copy())
    jittered = events_from_frames(frames, contrast_threshold=C, timesteps=5, rng=_rng(), threshold_jitter=0.1)
    assert np.all(jittered[:, 0].sum(0) == 3)  # 3.5 C / (1 +- 0.1) C still crosses 3 times

    flat = np.full((41, 40, 40), 0.5)
    noisy = events_from_frames(flat, contrast_threshold=C, timesteps=40, rng=_rng(), noise_rate=0.2)
    per_pixel_frame = noisy.sum(1).mean()
    assert 0.18 < per_pixel_frame < 0.22
    assert abs(noisy[:, 0].mean() - noisy[:, 1].mean()) < 0.01
    again = events_from_frames(flat, contrast_threshold=C, timesteps=40, rng=_rng(), noise_rate=0.2)
    np.testing.assert_array_equal(noisy, again)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(frames=np.zeros((1, 4, 4)), timesteps=1),  # no transition
        dict(frames=np.zeros((5, 4, 4)), timesteps=5),  # more bins than transitions
        dict(frames=np.full((5, 4, 4), -0.5), timesteps=2),  # negative intensity
        dict(frames=np.zeros((5, 4)), timesteps=2),  # no time axis
        dict(frames=np.zeros((5, 4, 4)), timesteps=2, contrast_threshold="0.15"),
        dict(frames=np.zeros((5, 4, 4)), timesteps=2, noise_rate=1.5),
    ],
)
def test_events_from_frames_rejects_bad_input(kwargs):
    kwargs = {"contrast_threshold": C, **kwargs}
    with pytest.raises(UserError):
        events_from_frames(rng=_rng(), **kwargs)


# --- determinism ----------------------------------------------------------------

def test_same_index_is_bit_identical_and_indices_differ():
    cfg = SceneConfig()
    e1, l1 = render_event_sample(3, cfg)
    e2, l2 = render_event_sample(3, cfg)
    assert e1.tobytes() == e2.tobytes() and l1.tobytes() == l2.tobytes()
    i1, _ = render_image_sample(3, cfg)
    i2, _ = render_image_sample(3, cfg)
    assert i1.tobytes() == i2.tobytes()
    e3, _ = render_event_sample(4, cfg)
    assert not np.array_equal(e1, e3)
    e4, _ = render_event_sample(3, dataclasses.replace(cfg, seed=1))
    assert not np.array_equal(e1, e4)


def test_splits_never_share_a_scene():
    images = {
        split: [render_image_sample(i, SceneConfig(height=16, width=16), split=split)[0] for i in range(20)]
        for split in ("train", "val", "test")
    }
    seen = {}
    for split, items in images.items():
        for i, image in enumerate(items):
            key = image.tobytes()
            assert key not in seen, f"{split}[{i}] repeats {seen.get(key)}"
            seen[key] = (split, i)


# Golden digests pin the generator: they change only when the dataset changes
# on purpose (then update them and say so), never between machines.
GOLDEN = {
    "events": "2dfb43f6b86f4f18",
    "image": "627652e9f767eb7d",
}


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()[:16]


def test_golden_digests():
    cfg = SceneConfig(height=48, width=40, timesteps=6, substeps=3)
    assert _digest(*render_event_sample(7, cfg, split="val")) == GOLDEN["events"]
    assert _digest(*render_image_sample(7, cfg, split="val")) == GOLDEN["image"]


# --- shapes and value ranges ----------------------------------------------------

@pytest.mark.parametrize("size", [(64, 64), (200, 346), (37, 53)])
def test_shapes_dtypes_and_ranges(size):
    cfg = SceneConfig(height=size[0], width=size[1], timesteps=5, substeps=2)
    events, label = render_event_sample(0, cfg)
    assert events.shape == (5, 2, *size) and events.dtype == np.float32
    assert events.min() >= 0 and np.array_equal(events, np.round(events)) and events.sum() > 0
    assert label.shape == size and label.dtype == np.int64
    assert label.min() >= 0 and label.max() < len(CLASS_NAMES)

    frames, frame_label = render_intensity_frames(0, cfg)
    assert frames.shape == (11, *size) and frames.dtype == np.float32
    assert 0 <= frames.min() and frames.max() <= 1
    np.testing.assert_array_equal(frame_label, label)

    image, image_label = render_image_sample(0, cfg)
    assert image.shape == (3, *size) and image.dtype == np.float32
    assert -1 <= image.min() and image.max() <= 1 and image.std() > 0.05
    np.testing.assert_array_equal(image_label, label)


def test_every_class_appears_across_fifty_samples():
    cfg = SceneConfig(height=32, width=32, timesteps=2, substeps=1)
    counts = np.zeros(len(CLASS_NAMES), dtype=np.int64)
    for i in range(50):
        label = render_image_sample(i, cfg)[1]
        counts += np.bincount(label.ravel(), minlength=len(CLASS_NAMES))
    assert np.all(counts > 0), dict(zip(CLASS_NAMES, counts))
    assert counts[0] > counts[1:].max()  # background is the largest class, as in aerial data


def test_event_sample_is_the_dvs_model_applied_to_the_frames():
    cfg = dataclasses.replace(NO_NOISE, height=24, width=30, timesteps=4, substeps=3)
    events, label = render_event_sample(5, cfg, split="test")
    frames, frame_label = render_intensity_frames(5, cfg, split="test")
    again = events_from_frames(frames, contrast_threshold=cfg.contrast_threshold, timesteps=4, rng=_rng())
    np.testing.assert_array_equal(events, again)
    np.testing.assert_array_equal(label, frame_label)


# --- the events carry the segmentation --------------------------------------------

def test_a_static_scene_emits_no_events():
    """Events come from motion only: freeze the camera and the objects."""
    rng = scene.sample_rng(NO_NOISE, "train", 2)
    drawn = scene.sample_scene(rng, NO_NOISE)
    assert drawn.objects
    still = dataclasses.replace(drawn, ego=(0.0, 0.0), objects=tuple(
        dataclasses.replace(o, velocity=(0.0, 0.0), start_scale=1.0) for o in drawn.objects))
    log_frames = exact_math.log_table()[render.gray_codes(still, NO_NOISE)]
    assert len(dvs.dvs_events(log_frames, C, NO_NOISE.timesteps, rng, 0.0, unit_us=625)) == 0
    moving = exact_math.log_table()[render.gray_codes(drawn, NO_NOISE)]
    assert len(dvs.dvs_events(moving, C, NO_NOISE.timesteps, rng, 0.0, unit_us=625)) > 100


def test_classes_have_distinct_event_statistics():
    """Per class, how many of the T frames a pixel is active in: objects far above
    the background and each class clearly apart (ordered background < building <
    person < vehicle by design: slow ground, coarse windows, fine speckle, fast stripes)."""
    cfg = SceneConfig()
    active = np.zeros(len(CLASS_NAMES))
    pixels = np.zeros(len(CLASS_NAMES))
    for i in range(30):
        events, label = render_event_sample(i, cfg)
        frames_active = (events.sum(1) > 0).sum(0)
        active += np.bincount(label.ravel(), weights=frames_active.ravel(), minlength=len(CLASS_NAMES))
        pixels += np.bincount(label.ravel(), minlength=len(CLASS_NAMES))
    rate = dict(zip(CLASS_NAMES, active / pixels))
    order = ["background", "building", "person", "vehicle"]
    for low, high in zip(order, order[1:]):
        assert rate[high] > 1.15 * rate[low], rate
    assert rate["building"] > 2 * rate["background"], rate


# --- configuration errors and module hygiene ------------------------------------

@pytest.mark.parametrize(
    "bad",
    [dict(height=4), dict(width=0), dict(timesteps=0), dict(substeps=0), dict(contrast_threshold=0.0),
     dict(noise_rate=-0.1), dict(max_objects=-1), dict(seed=-3), dict(threshold_jitter=1.0), dict(height=6.5),
     dict(contrast_threshold="0.15"), dict(noise_rate=float("nan"))],
)
def test_bad_config_is_a_user_error(bad):
    with pytest.raises(UserError):
        SceneConfig(**bad)


def test_bad_split_or_index_is_a_user_error():
    with pytest.raises(UserError, match="split"):
        render_event_sample(0, split="training")
    with pytest.raises(UserError, match="index"):
        render_image_sample(-1)


def test_background_only_scenes_are_allowed():
    events, label = render_event_sample(0, SceneConfig(height=20, width=20, max_objects=0, timesteps=3))
    assert not label.any() and events.shape == (3, 2, 20, 20)


def test_deterministic_math_matches_numpy():
    x = np.geomspace(1e-3, 10, 2001)
    np.testing.assert_allclose(exact_math.log(x), np.log(x), rtol=0, atol=1e-14)
    t = np.linspace(-2, 2, 4001)
    assert np.abs(exact_math.wave(t) - np.cos(2 * np.pi * t)).max() < 0.03


def test_package_does_not_import_torch():
    imported = set()
    for module in Path(synthetic.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert "torch" not in imported and "numpy" in imported
