"""Small spiking models for tests: BN statistics that make every layer fire, saved as real checkpoints.

A plain module (not conftest) so test files can import it by a unique name.
"""

from __future__ import annotations

import torch

from edge_snn.models import build_model
from edge_snn.models.randomized import randomized
from edge_snn.training.checkpoint import save_checkpoint
from edge_snn.training.config import TrainConfig

__all__ = ["randomized", "write_small_checkpoint"]


def write_small_checkpoint(path, *, arch="dl-vgg9", timesteps=6, height=24, width=32, dataset="synthetic-events",
                           seed=0):
    torch.manual_seed(seed)
    in_channels = 2 if dataset == "synthetic-events" else 3
    model = randomized(build_model(arch, in_channels=in_channels, num_classes=4, timesteps=timesteps, width=0.125), seed)
    config = TrainConfig(arch=arch, width_mult=0.125, timesteps=timesteps, dataset=dataset, height=height, width=width,
                         train_samples=8, val_samples=8, epochs=1, batch_size=4)
    encoding = "events" if dataset == "synthetic-events" else "poisson"
    save_checkpoint(path, model, data={"dataset": dataset, "encoding": encoding, "height": height, "width": width,
                                       "class_names": ["background", "vehicle", "person", "building"]},
                    train_config=config.to_dict(), epoch=1, step_in_epoch=0)
    return model
