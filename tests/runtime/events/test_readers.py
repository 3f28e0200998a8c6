"""Readers return exactly the events of a time range, from real files of each format."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from dsec_fixtures import random_events, write_dsec_events, write_npz_events, write_rectify_map
from edge_snn.errors import UserError
from edge_snn.runtime.events.readers import open_recording
from edge_snn.runtime.events.readers import numpy_files

WINDOWS = [(0, 50_000), (50_000, 50_001), (123_456, 199_999), (380_000, 500_000), (600_000, 700_000)]


@pytest.fixture(scope="module")
def events():
    x, y, t, p = random_events(400_000, 20, seed=7)
    t[100:110] = t[100]  # equal timestamps are common in real data
    t[200:203] = [50_000, 123_456, 199_999]  # events right on window edges: the start is in, the end out
    return x, y, np.sort(t), p


def _expected(events, t0, t1, offset=0):
    x, y, t, p = events
    keep = (t + offset >= t0) & (t + offset < t1)
    return x[keep], y[keep], t[keep] + offset, p[keep]


def _check(reader, events, offset=0):
    for t0, t1 in WINDOWS:
        got = reader.read(t0 + offset, t1 + offset)
        want = _expected(events, t0 + offset, t1 + offset, offset)
        for a, b in zip((got.x, got.y, got.t, got.p), want):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("ms_to_idx", [True, False])
def test_dsec_h5_with_and_without_ms_to_idx(events, tmp_path, ms_to_idx):
    path = write_dsec_events(tmp_path / "events.h5", *events[:2], events[2] + 7_000_000, events[3], t_offset=7_000_000)
    if not ms_to_idx:
        import h5py

        with h5py.File(path, "a") as f:
            del f["ms_to_idx"]
    with open_recording(path) as reader:
        assert reader.sensor_size == (480, 640) and reader.t_first == events[2][0] + 7_000_000
        _check(reader, events, offset=7_000_000)


def test_dsec_rectification_moves_and_drops_events(events, tmp_path):
    path = write_dsec_events(tmp_path / "events.h5", *events)
    with pytest.raises(UserError, match="rectify_map.h5"):
        open_recording(path, rectify=True)
    write_rectify_map(tmp_path / "rectify_map.h5", shift_x=1.4)
    with open_recording(path, rectify=True) as reader:
        got = reader.read(0, 400_000)
    x = events[0]
    assert len(got) == int((x < 639).sum())  # 1.4 rounds to 1: column 639 leaves the sensor
    np.testing.assert_array_equal(got.x, x[x < 639] + 1)


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_arrays_stream_in_chunks(events, tmp_path, monkeypatch, compressed):
    monkeypatch.setattr(numpy_files, "CHUNK", 1000)  # many chunks per window
    path = write_npz_events(tmp_path / "e.npz", *events, sensor_size=(480, 640), compressed=compressed)
    with open_recording(path) as reader:
        assert reader.sensor_size == (480, 640) and reader.forward_only
        _check(reader, events)
        _check(reader, events)  # going back restarts the stream


def test_npz_structured_and_npy_structured(events, tmp_path):
    array = np.zeros(len(events[2]), dtype=[("x", "<u2"), ("y", "<u2"), ("t", "<i8"), ("p", "i1")])
    array["x"], array["y"], array["t"], array["p"] = events
    np.savez(tmp_path / "s.npz", events=array)
    np.save(tmp_path / "s.npy", array)
    for name in ("s.npz", "s.npy"):
        with open_recording(tmp_path / name) as reader:
            assert reader.sensor_size is None
            _check(reader, events)


def test_aedat4_through_dv_processing(events, tmp_path):
    import dv_processing as dv

    path = tmp_path / "r.aedat4"
    writer = dv.io.MonoCameraWriter(str(path), dv.io.MonoCameraWriter.EventOnlyConfig("test", (640, 480)))
    store = dv.EventStore()
    for x, y, t, p in zip(*(a.tolist() for a in events)):
        store.push_back(t, x, y, bool(p))
    writer.writeEvents(store)
    del writer
    with open_recording(path) as reader:
        assert reader.sensor_size == (480, 640)
        _check(reader, events)


def test_bad_files_are_one_line_errors(events, tmp_path):
    x, y, t, p = events
    unsorted = write_npz_events(tmp_path / "u.npz", x, y, t[::-1], p)
    with pytest.raises(UserError, match="not sorted"):
        open_recording(unsorted)
    with zipfile.ZipFile(tmp_path / "o.npz", "w") as z:
        z.writestr("a.npy", b"not numpy")
    with pytest.raises(UserError, match="expected"):
        open_recording(tmp_path / "o.npz")
    np.savez(tmp_path / "short.npz", x=x, y=y[:-1], t=t, p=p)
    with pytest.raises(UserError, match="differ in length"):
        open_recording(tmp_path / "short.npz")
    (tmp_path / "bad.aedat4").write_bytes(b"garbage" * 20)
    with pytest.raises(UserError, match="AEDAT4"):
        open_recording(tmp_path / "bad.aedat4")
    (tmp_path / "bad.h5").write_bytes(b"garbage" * 20)
    with pytest.raises(UserError, match="HDF5"):
        open_recording(tmp_path / "bad.h5")
    with pytest.raises(UserError, match="does not exist"):
        open_recording(tmp_path / "missing.h5")
    (tmp_path / "o.txt").write_text("x")
    with pytest.raises(UserError, match="not a recording"):
        open_recording(tmp_path / "o.txt")
    with pytest.raises(UserError, match="rectified"):
        open_recording(tmp_path / "short.npz", rectify=True)
