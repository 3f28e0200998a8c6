"""A recording binned by the runtime gives exactly the frames the model was trained on (bit for bit).

For each event dataset the same events go two ways: through the dataset's
``__getitem__`` (training) and through a recording file, the runtime reader
and :func:`~edge_snn.runtime.events.run.window_frames` with the spec read back
from its serialized form (the ONNX metadata's ``edge_snn.binning``).
"""

from __future__ import annotations

import numpy as np
import pytest

from dsec_fixtures import write_dsec_semantic, write_npz_events
from edge_snn.runtime.events.binning import BinningSpec, Events, bin_events, frames_from_counts
from edge_snn.runtime.events.readers import open_recording
from edge_snn.runtime.events.run import window_frames


def _as_on_the_drone(spec: BinningSpec) -> BinningSpec:
    return BinningSpec.from_dict(spec.to_dict())


def _write_structured_npy(path, events: Events):
    array = np.zeros(len(events), dtype=[("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "i1")])
    array["t"], array["x"], array["y"], array["p"] = events.t, events.x, events.y, events.p
    np.save(path, array)
    return path


def _write_aedat4(path, events: Events, sensor):
    import dv_processing as dv

    writer = dv.io.MonoCameraWriter(str(path), dv.io.MonoCameraWriter.EventOnlyConfig("test", (sensor[1], sensor[0])))
    store = dv.EventStore()
    for t, x, y, p in zip(events.t.tolist(), events.x.tolist(), events.y.tolist(), events.p.tolist()):
        store.push_back(t + 1_000_000, x, y, bool(p > 0))  # AEDAT4 clocks are absolute: shift by 1 s
    writer.writeEvents(store)
    del writer
    return path


@pytest.mark.parametrize("fmt", ["npz", "npy", "aedat4"])
def test_synthetic_scenes(tmp_path, fmt):
    from edge_snn.data import synthetic
    from edge_snn.data.synthetic_dataset import SyntheticSegmentation

    ds = SyntheticSegmentation("test", size=(40, 48), timesteps=5, num_samples=3, seed=2)
    spec = _as_on_the_drone(ds.binning)
    for index in range(3):
        events, _ = synthetic.render_event_stream(index, ds.config, split="test")
        offset = 0
        if fmt == "npz":
            path = write_npz_events(tmp_path / f"s{index}.npz", events.x, events.y, events.t, events.p,
                                    sensor_size=(40, 48), compressed=True)
        elif fmt == "npy":
            path = _write_structured_npy(tmp_path / f"s{index}.npy", events)
        else:
            path, offset = _write_aedat4(tmp_path / f"s{index}.aedat4", events, (40, 48)), 1_000_000
        with open_recording(path) as reader:
            assert reader.sensor_size in (None, (40, 48))
            frames = window_frames(reader.read(offset, offset + spec.window_us), spec, offset)
        trained = ds[index][0].numpy()
        assert frames.dtype == trained.dtype == np.float32 and trained.any()
        np.testing.assert_array_equal(frames, trained)


def test_dsec_semantic_rectified_cropped_and_resized(tmp_path):
    from edge_snn.data.dsec import DSECSemantic
    from dsec_fixtures import write_rectify_map

    root = write_dsec_semantic(tmp_path / "dsec")
    seq = root / "train" / "zurich_city_00_a" / "events" / "left"
    write_rectify_map(seq / "rectify_map.h5", shift_x=1.4)  # rectification moves every event 1 column right
    ds = DSECSemantic(root, "train", timesteps=4, size=(110, 160))
    spec = _as_on_the_drone(ds.binning)
    with open_recording(seq / "events.h5", rectify=spec.rectify) as reader:
        for index in (0, 5):
            s, k = ds.samples[index]
            t1 = int(ds.sequences[s].timestamps[k])
            frames = window_frames(reader.read(t1 - spec.window_us, t1), spec, t1 - spec.window_us)
            np.testing.assert_array_equal(frames, ds[index][0].numpy())
        unrectified = open_recording(seq / "events.h5")
        t1 = int(ds.sequences[0].timestamps[0])
        plain = window_frames(unrectified.read(t1 - 50_000, t1), spec, t1 - 50_000)
        assert not np.array_equal(plain, ds[0][0].numpy())  # the map matters, and both sides apply it


def test_ddd17_ess_event_span_bins(tmp_path):
    import importlib.util
    from pathlib import Path

    from edge_snn.data.ddd17_ess import DDD17ESS

    source = Path(__file__).parents[2] / "data" / "conftest.py"  # the ESS release writer of the data tests
    spec_ = importlib.util.spec_from_file_location("data_trees", source)
    trees = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(trees)
    root = trees.write_ess(tmp_path / "ess")
    ds = DDD17ESS(root, "test", timesteps=5, size=(100, 173))
    spec = _as_on_the_drone(ds.binning)
    folder = root / "dir4"
    t_ns = np.fromfile(folder / "events.dat.t", dtype=np.int64)
    xyp = np.fromfile(folder / "events.dat.xyp", dtype=np.int16).reshape(-1, 3)
    path = write_npz_events(tmp_path / "dir4.npz", xyp[:, 0], xyp[:, 1], t_ns // 1000, xyp[:, 2],
                            sensor_size=(260, 346))
    index = np.load(folder / "index" / "index_50ms.npy")
    with open_recording(path) as reader:
        for item, (_, mask, row) in enumerate(ds.samples):
            t1 = int(index[row][0]) // 1000
            frames = window_frames(reader.read(t1 - 50_000, t1), spec, t1 - 50_000)
            np.testing.assert_array_equal(frames, ds[item][0].numpy())


def test_evsegnet_histograms_equal_binning_their_events():
    """Ev-SegNet ships 50 ms ON/OFF histograms; binning the raw events of such a window gives the same frames."""
    from edge_snn.data.ddd17 import evsegnet_binning

    spec = _as_on_the_drone(evsegnet_binning(6, "repeat", (100, 173)))
    rng = np.random.default_rng(1)
    n = 20_000
    events = Events.of(rng.integers(0, 346, n), rng.integers(0, 260, n), np.sort(rng.integers(0, 50_000, n)),
                       rng.integers(0, 2, n))
    top = events.y < 200
    histogram = np.zeros((1, 2, 200, 346), np.float32)
    np.add.at(histogram, (0, (events.p[top] <= 0).astype(int), events.y[top], events.x[top]), 1)
    np.testing.assert_array_equal(bin_events(events, spec, 0), frames_from_counts(histogram, spec))
