"""Exported event models whose metadata carries a binning spec, and recordings in the public formats."""

from __future__ import annotations

import pytest

from dsec_fixtures import random_events, write_dsec_events, write_npz_events
from event_model_fixtures import RECORDING_SPEC, write_event_checkpoint


@pytest.fixture(scope="session")
def event_models(tmp_path_factory):
    """``{"fresh": path, "carry": path}``: the same checkpoint exported with --bn-beyond error and last."""
    from edge_snn.export.exporter import ExportOptions, export_checkpoint

    folder = tmp_path_factory.mktemp("event_model")
    ckpt = write_event_checkpoint(folder / "model.pt", RECORDING_SPEC)
    models = {"fresh": folder / "fresh.onnx", "carry": folder / "carry.onnx"}
    export_checkpoint(ckpt, models["fresh"], ExportOptions(timesteps=4))
    export_checkpoint(ckpt, models["carry"], ExportOptions(timesteps=4, bn_beyond="last"))
    return models


@pytest.fixture(scope="session")
def recordings(tmp_path_factory):
    """400 ms of DSEC-sensor events as a blosc DSEC events.h5 and as an .npz (same events)."""
    folder = tmp_path_factory.mktemp("recordings")
    x, y, t, p = random_events(400_000, 40, seed=3)
    t[0] = 0
    return {"h5": write_dsec_events(folder / "events.h5", x, y, t + 5_000_000, p, t_offset=5_000_000),
            "npz": write_npz_events(folder / "events.npz", x, y, t, p, sensor_size=(480, 640)),
            "events": (x, y, t, p)}
