"""PyTorch datasets over the built-in synthetic scenes (:mod:`edge_snn.data.synthetic`).

Samples are rendered on the fly from ``(seed, split, index)``, so a dataset of
any size costs no disk and every machine sees the same data.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch.utils.data import Dataset

from edge_snn.data import synthetic
from edge_snn.runtime.events.binning import bin_events


class SyntheticSegmentation(Dataset):
    """Synthetic drone-camera scenes as event frames (``kind="events"``) or images (``kind="image"``).

    events: ``x`` float32 ``[T, 2, H, W]``: the scene's event stream binned by
    the runtime's :func:`~edge_snn.runtime.events.binning.bin_events` with
    ``self.binning`` (ON/OFF counts clipped at 4 and scaled to [0, 1], see
    :func:`~edge_snn.data.synthetic.synthetic_binning`), so a recording binned on
    the drone gives the same frames; image: ``x`` float32 ``[3, H, W]`` in [-1, 1].
    ``label`` int64 ``[H, W]``.
    """

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
        self.binning = synthetic.synthetic_binning(self.config) if kind == "events" else None
        self.input_range = self.binning.input_range if kind == "events" else (-1.0, 1.0)

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int):
        if self.kind == "events":
            events, label = synthetic.render_event_stream(index, self.config, split=self.split)
            x = bin_events(events, self.binning, 0)
        else:
            x, label = synthetic.render_image_sample(index, self.config, split=self.split)
        return torch.from_numpy(x), torch.from_numpy(label.astype("int64"))
