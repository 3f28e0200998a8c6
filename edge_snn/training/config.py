"""Training configuration: one frozen record, saved inside every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

DEFAULT_RUN = Path("runs/train")  # where `edge-snn train` writes without -o


@dataclass(frozen=True)
class TrainConfig:
    """Defaults follow PAPER.md ("Training"); the demo overrides size and width.

    width_mult: channel width multiplier (1.0 = the paper's network).
    height / width: input size in pixels (the same names as ``edge-snn export --height/--width``).

    dataset: ``synthetic-events`` / ``synthetic-images`` (built in) or a
        registry name (``voc2012``, ``ddd17``, ...) read from ``data_root``.
    encoding: how images become spikes (``poisson`` or ``direct``); event
        datasets always use ``events``.
    milestones: fractions of ``epochs`` where the learning rate drops x0.1.
    checkpoint_every: also save ``last.pt`` every this many optimizer steps
        (0: only at epoch ends), so a killed run loses little.
    val_split: the split scored after each epoch (DDD17 ships only train/test: "test").
    """

    arch: str = "dl-vgg9"
    width_mult: float = 1.0
    timesteps: int = 20
    leak: float = 0.99
    threshold: float = 1.0
    surrogate: str = "linear"
    dataset: str = "synthetic-events"
    data_root: str = ""
    encoding: str = "poisson"
    height: int = 64
    width: int = 64
    train_samples: int = 512
    val_samples: int = 64
    epochs: int = 60
    batch_size: int = 16
    optimizer: str = "sgd"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    milestones: tuple[float, ...] = (0.5, 0.8)
    seed: int = 0
    checkpoint_every: int = 20
    val_split: str = "val"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in upgrade_legacy_keys(d).items() if k in known}
        if "milestones" in values:
            values["milestones"] = tuple(values["milestones"])
        return cls(**values)


def upgrade_legacy_keys(values: dict) -> dict:
    """Configs written before edge-snn 0.2 (checkpoints, TOML files) named the channel multiplier ``width``
    and the pixel width ``width_px``; today ``width_mult`` and ``width``. Returns the values in today's names."""
    if "width_px" not in values:
        return dict(values)
    values = dict(values)
    pixels = values.pop("width_px")
    if "width" in values and "width_mult" not in values:
        values["width_mult"] = values.pop("width")
    values["width"] = pixels
    return values
