"""The one binning, stage by stage, on events placed by hand; the spec's strict serialization."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge_snn.errors import UserError
from edge_snn.runtime.events.binning import BinningSpec, Events, bin_events, count_events, frames_from_counts

SPEC = BinningSpec(window_us=1000, bins=4, timesteps=4, sensor=(3, 4), normalize="none")


def ev(*rows) -> Events:
    """Events from (x, y, t, p) rows."""
    x, y, t, p = zip(*rows) if rows else ((), (), (), ())
    return Events.of(np.array(x), np.array(y), np.array(t), np.array(p))


def test_window_bins_split_the_window_evenly_and_polarity_picks_the_channel():
    # window [10_000, 11_000), 4 bins of 250 us: t - t0 = 0, 249, 250, 999 -> bins 0, 0, 1, 3; 1000 is outside
    events = ev((0, 0, 10_000, 1), (1, 0, 10_249, 0), (1, 0, 10_250, 0), (3, 2, 10_999, 1), (3, 2, 11_000, 1))
    frames = bin_events(events, SPEC, 10_000)
    assert frames.shape == (4, 2, 3, 4) and frames.dtype == np.float32
    assert frames[0, 0, 0, 0] == 1 and frames[0, 1, 0, 1] == 1 and frames[1, 1, 0, 1] == 1 and frames[3, 0, 2, 3] == 1
    assert frames.sum() == 4
    merged = bin_events(events, dataclasses.replace(SPEC, polarity="sum"), 10_000)
    assert merged.shape == (4, 1, 3, 4) and merged[0, 0, 0, 1] == 1 and merged.sum() == 4


def test_event_span_bins_split_first_to_last_event():
    # span 100..199 (100 us): t = 100, 149, 150, 199 -> bins 0, 1, 2, 3 (4 bins of 25 us)
    events = ev((0, 0, 100, 1), (0, 0, 149, 1), (0, 0, 150, 1), (0, 0, 199, 1))
    frames = bin_events(events, dataclasses.replace(SPEC, time_bins="event_span"), 0)
    assert frames[:, 0, 0, 0].tolist() == [1, 1, 1, 1] and frames.sum() == 4
    assert bin_events(ev(), dataclasses.replace(SPEC, time_bins="event_span"), 0).sum() == 0


def test_crop_then_area_resize_then_clip_scale():
    spec = BinningSpec(window_us=1000, bins=1, timesteps=2, sensor=(6, 8), crop=(2, 0, 4, 8), resize=(2, 4),
                       clip=4, scale=0.25)
    # rows 0-1 are cropped away; the crop's 4x8 maps 2x2 source pixels to one (area factor 1/4)
    events = ev(*[(0, 2, 0, 1)] * 20, (1, 3, 5, 1), (7, 5, 5, 0), (7, 0, 5, 0))
    frames = bin_events(events, spec, 0)
    assert frames.shape == (2, 2, 2, 4)  # 1 bin shown for both of the 2 steps
    np.testing.assert_array_equal(frames[0], frames[1])
    # ON at (0, 0): (20 + 1) / 4 = 5.25 counts per pixel, clipped at 4, times 1/4 = 1
    assert frames[0, 0, 0, 0] == 1.0
    assert frames[0, 1, 1, 3] == np.float32(0.25 * 0.25)  # one OFF event: 1/4 per pixel, times 1/4
    assert frames.sum() == 2 * (1.0 + 0.0625)  # the row-0 event was cropped
    assert spec.input_range == (0.0, 1.0) and spec.output_size == (2, 4)


def test_minmax_half_scales_each_plane_and_constant_planes_go_to_minus_half():
    spec = dataclasses.replace(SPEC, bins=1, timesteps=1, normalize="minmax_half")
    frames = bin_events(ev((0, 0, 0, 1), (0, 0, 1, 1), (1, 0, 2, 1)), spec, 0)
    assert frames[0, 0, 0, 0] == 0.5 and frames[0, 0, 0, 1] == 0.0 and frames[0, 0, 1, 1] == -0.5
    assert (frames[0, 1] == -0.5).all()


def test_the_histogram_path_equals_the_event_path():
    spec = BinningSpec(window_us=900, bins=3, timesteps=6, sensor=(10, 14), crop=(1, 2, 9, 12), resize=(4, 5))
    rng = np.random.default_rng(0)
    events = Events.of(rng.integers(0, 14, 3000), rng.integers(0, 10, 3000), np.sort(rng.integers(0, 900, 3000)),
                       rng.integers(0, 2, 3000))
    np.testing.assert_array_equal(bin_events(events, spec, 0), frames_from_counts(count_events(events, spec, 0), spec))


def test_events_off_the_sensor_name_crop_and_resize():
    with pytest.raises(UserError, match="outside the 3x4 sensor.*--crop.*--resize"):
        bin_events(ev((4, 0, 0, 1)), SPEC, 0)


def test_spec_round_trips_and_refuses_damage():
    spec = BinningSpec(window_us=50_000, bins=5, timesteps=20, sensor=(480, 640), crop=(0, 0, 440, 640),
                       resize=(220, 320), rectify=True)
    assert BinningSpec.from_dict(spec.to_dict()) == spec
    assert BinningSpec.from_dict(__import__("json").loads(__import__("json").dumps(spec.to_dict()))) == spec
    good = spec.to_dict()
    for damage in ({"bins": 3}, {"bins": 0}, {"window_us": -5}, {"window_us": "50"}, {"polarity": "both"},
                   {"normalize": "zscore"}, {"clip": float("nan")}, {"sensor": [480]}, {"crop": [0, 0, 500, 640]},
                   {"resize": [880, 1280]}, {"rectify": "yes"}, {"version": 9}, {"colour": "red"}, {"sensor": None}):
        with pytest.raises(UserError, match="binning"):
            BinningSpec.from_dict({**good, **damage})
    missing = dict(good)
    del missing["timesteps"]
    with pytest.raises(UserError, match="missing"):
        BinningSpec.from_dict(missing)
    with pytest.raises(UserError):
        BinningSpec.from_dict([1, 2])
