"""Training configuration: one frozen record, saved inside every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class TrainConfig:
    """Defaults follow PAPER.md ("Training"); the demo overrides size and width.

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
    width: float = 1.0
    timesteps: int = 20
    leak: float = 0.99
    threshold: float = 1.0
    surrogate: str = "linear"
    dataset: str = "synthetic-events"
    data_root: str = ""
    encoding: str = "poisson"
    height: int = 64
    width_px: int = 64
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
        values = {k: v for k, v in d.items() if k in known}
        if "milestones" in values:
            values["milestones"] = tuple(values["milestones"])
        return cls(**values)
