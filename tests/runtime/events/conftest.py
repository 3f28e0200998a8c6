"""Exported event models whose metadata carries a binning spec, and recordings in the public formats."""

from __future__ import annotations

import pytest

from dsec_fixtures import random_events, write_dsec_events, write_npz_events
from edge_snn.runtime.events.binning import BinningSpec

CLASS_NAMES = ["background", "vehicle", "person", "building"]
# DSEC's 640x480 sensor, its top 440 rows, shrunk to a 24x32 model input; T = 4 bins of 12.5 ms.
RECORDING_SPEC = BinningSpec(window_us=50_000, bins=4, timesteps=4, sensor=(480, 640), crop=(0, 0, 440, 640),
                             resize=(24, 32))


def write_event_checkpoint(path, spec: BinningSpec, *, seed: int = 0):
    """A real checkpoint of a small randomized Spiking-DeepLab trained (so it says) with ``spec``."""
    import torch

    from edge_snn.models import build_model
    from edge_snn.training.checkpoint import save_checkpoint
    from edge_snn.training.config import TrainConfig
    from model_fixtures import randomized

    torch.manual_seed(seed)
    model = randomized(build_model("dl-vgg9", in_channels=spec.channels, num_classes=len(CLASS_NAMES),
                                   timesteps=spec.timesteps, width=0.125), seed)
    height, width = spec.output_size
    config = TrainConfig(arch="dl-vgg9", width=0.125, timesteps=spec.timesteps, dataset="synthetic-events",
                         height=height, width_px=width, epochs=1, batch_size=2)
    save_checkpoint(path, model, data={"dataset": "synthetic-events", "encoding": "events", "height": height,
                                       "width": width, "class_names": CLASS_NAMES,
                                       "input_range": list(spec.input_range), "binning": spec.to_dict()},
                    train_config=config.to_dict(), epoch=1, step_in_epoch=0)
    return path


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
