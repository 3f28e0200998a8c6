"""PyTorch datasets over the built-in synthetic scenes (:mod:`edge_snn.data.synthetic`).

Samples are rendered on the fly from ``(seed, split, index)``, so a dataset of
any size costs no disk and every machine sees the same data.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

import torch
from torch.utils.data import Dataset

from edge_snn.data import synthetic


class SyntheticSegmentation(Dataset):
    """Synthetic drone-camera scenes as event frames (``kind="events"``) or images (``kind="image"``).

    events: ``x`` float32 ``[T, 2, H, W]``, ON/OFF counts clipped at
    ``EVENT_CLIP`` and scaled to [0, 1] (a fast dark vehicle can fire 20
    events per pixel in one bin; unclipped, those few pixels dominate the
    first layer's batch norm); image: ``x`` float32 ``[3, H, W]`` in [-1, 1].
    ``label`` int64 ``[H, W]``.
    """

    EVENT_CLIP = 4.0

    ignore_index = 255
    class_names = synthetic.CLASS_NAMES
    num_classes = len(synthetic.CLASS_NAMES)

    def __init__(self, split: str, *, kind: str = "events", size: tuple[int, int] = (64, 64), timesteps: int = 20,
                 num_samples: int = 256, seed: int = 0):
        if kind not in ("events", "image"):
            raise ValueError(f"kind must be 'events' or 'image', got {kind!r}")
        self.split, self.kind, self.num_samples = split, kind, num_samples
        self.config = replace(synthetic.SceneConfig(), height=size[0], width=size[1], timesteps=timesteps, seed=seed)
        self.in_channels = 2 if kind == "events" else 3
        self.input_range = (0.0, 1.0) if kind == "events" else (-1.0, 1.0)

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int):
        render = synthetic.render_event_sample if self.kind == "events" else synthetic.render_image_sample
        x, label = render(index, self.config, split=self.split)
        if self.kind == "events":
            x = np.minimum(x, self.EVENT_CLIP) / self.EVENT_CLIP
        return torch.from_numpy(x), torch.from_numpy(label.astype("int64"))
