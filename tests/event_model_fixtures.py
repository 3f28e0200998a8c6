"""Small event models whose checkpoints record a binning spec (a plain module: tests import it by name)."""

from __future__ import annotations

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
    config = TrainConfig(arch="dl-vgg9", width_mult=0.125, timesteps=spec.timesteps, dataset="synthetic-events",
                         height=height, width=width, epochs=1, batch_size=2)
    save_checkpoint(path, model, data={"dataset": "synthetic-events", "encoding": "events", "height": height,
                                       "width": width, "class_names": CLASS_NAMES,
                                       "input_range": list(spec.input_range), "binning": spec.to_dict()},
                    train_config=config.to_dict(), epoch=1, step_in_epoch=0)
    return path
