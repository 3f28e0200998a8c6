"""Noise robustness: corrupt the input before encoding, score SNNs and ANN twins alike.

The paper reports that its SNNs degrade less than the ANN twins under
Gaussian and salt-and-pepper input noise (PAPER.md, "Results"). Here every
corruption acts on a batch *as the dataset gives it*, before the rate code
(images) or the event frames (events) reach the network, so a spiking model
and its ANN twin see the same corrupted input.

Each corruption works within the value range ``[lo, hi]`` of the input:
images use the fixed ``[-1, 1]`` of the signed rate code; event frames use
each sample's own minimum and maximum (0..max count for the synthetic
events, [-0.5, 0.5] for DDD17). Outputs are clipped to that range.

``gaussian(level)``     add N(0, sigma^2), ``sigma = level * (hi - lo) / 2`` (= level for images).
``salt_pepper(level)``  a fraction ``level`` of entries set to ``hi`` or ``lo`` (half each).
                        Images: whole pixels (all channels), the classic form.
                        Events: single (step, polarity, pixel) entries, i.e.
                        spurious bursts (hot pixels) and dropped events.
``blur(level)``         Gaussian blur of each channel (and each event frame),
                        ``sigma = level`` pixels, reflected borders.

A corruption is deterministic given its seed; :func:`sweep` derives one seed
per batch, the same for every checkpoint it scores.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from edge_snn.errors import UserError

NOISES = ("gaussian", "salt-pepper", "blur")
DEFAULT_LEVELS = {"gaussian": (0.05, 0.1, 0.2, 0.4), "salt-pepper": (0.01, 0.05, 0.1, 0.2), "blur": (0.5, 1.0, 2.0)}
_NOISE_STREAM = 1 << 30  # batch seeds for noise live apart from those of the Poisson code


@dataclass(frozen=True)
class Corruption:
    """One input corruption at one level; call it on a batch (``[B, C, H, W]`` images or ``[B, T, P, H, W]`` events)."""

    noise: str
    level: float

    def __post_init__(self):
        if self.noise not in NOISES:
            raise UserError(f"unknown noise {self.noise!r}; choose one of {', '.join(NOISES)}")
        if not (math.isfinite(self.level) and self.level >= 0):
            raise UserError(f"noise level must be a number >= 0, got {self.level!r}")
        if self.noise == "salt-pepper" and self.level > 1:
            raise UserError(f"salt-pepper level is a fraction of pixels, at most 1; got {self.level}")

    def __call__(self, x: torch.Tensor, *, seed: int, events: bool = False) -> torch.Tensor:
        if self.level == 0:
            return x
        lo, hi = _value_range(x, events)
        g = torch.Generator().manual_seed(int(seed))
        if self.noise == "gaussian":
            noisy = x + self.level * (hi - lo) / 2 * torch.randn(x.shape, generator=g)
        elif self.noise == "salt-pepper":
            shape = x.shape if events else (x.shape[0], 1, *x.shape[2:])
            hit = torch.rand(shape, generator=g) < self.level
            salt = torch.rand(shape, generator=g) < 0.5
            noisy = torch.where(hit, torch.where(salt, hi, lo), x)
        else:
            noisy = _gaussian_blur(x, self.level)
        return torch.maximum(torch.minimum(noisy, hi), lo)


def gaussian(level: float) -> Corruption:
    """Additive Gaussian noise, std ``level`` (in [-1, 1] image units; relative half-range for events)."""
    return Corruption("gaussian", float(level))


def salt_pepper(level: float) -> Corruption:
    """Salt-and-pepper: a fraction ``level`` of entries forced to the range's ends."""
    return Corruption("salt-pepper", float(level))


def blur(level: float) -> Corruption:
    """Gaussian blur with ``sigma = level`` pixels."""
    return Corruption("blur", float(level))


def _value_range(x: torch.Tensor, events: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if not events:
        return torch.tensor(-1.0), torch.tensor(1.0)
    dims = tuple(range(1, x.dim()))
    shape = (-1,) + (1,) * (x.dim() - 1)
    return x.amin(dim=dims).view(shape), x.amax(dim=dims).view(shape)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur over the last two dimensions, radius ceil(3 sigma), reflected borders."""
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma) ** 2)
    taps = taps / taps.sum()
    h, w = x.shape[-2:]
    planes = x.reshape(-1, 1, h, w).float()
    # reflect padding needs radius < size; replicate covers tiny images
    mode = "reflect" if radius < min(h, w) else "replicate"
    planes = F.conv2d(F.pad(planes, (radius, radius, 0, 0), mode=mode), taps.view(1, 1, 1, -1))
    planes = F.conv2d(F.pad(planes, (0, 0, radius, radius), mode=mode), taps.view(1, 1, -1, 1))
    return planes.reshape(x.shape).to(x.dtype)


def corruption(noise: str, level: float) -> Corruption:
    """The corruption named ``noise`` (``gaussian``, ``salt-pepper``, ``blur``) at ``level``."""
    return Corruption(noise.replace("_", "-"), float(level))


def parse_levels(values: Sequence[str]) -> list[float]:
    """``["0.1,0.2", "0.3"]`` -> ``[0.1, 0.2, 0.3]`` (repeatable options and comma lists)."""
    levels = []
    for value in values:
        for part in str(value).split(","):
            if part.strip():
                try:
                    levels.append(float(part))
                except ValueError:
                    raise UserError(f"--level takes numbers (e.g. 0.1,0.2), got {part.strip()!r}") from None
    return levels


# --- scoring ----------------------------------------------------------------------
@torch.no_grad()
def score(model, dataset, *, encoding: str, noise: Corruption | None = None, batch_size: int = 16,
          seed: int = 12345) -> dict:
    """mIoU and pixel accuracy of ``model`` on ``dataset`` with ``noise`` applied before encoding."""
    from torch.utils.data import DataLoader

    from edge_snn.runtime.encoding import frame_seed
    from edge_snn.runtime.metrics import confusion_matrix, segmentation_scores
    from edge_snn.training.datasets import dataset_kind
    from edge_snn.training.evaluate import predict_batch

    model.eval()
    events = dataset_kind(dataset) == "events"
    k = model.num_classes
    confusion = np.zeros((k, k), dtype=np.int64)
    for i, (x, label) in enumerate(DataLoader(dataset, batch_size=batch_size, shuffle=False)):
        if noise is not None:
            x = noise(x, seed=frame_seed(seed, _NOISE_STREAM + i), events=events)
        logits = predict_batch(model, x, encoding=encoding, seed=frame_seed(seed, i))
        confusion += confusion_matrix(label.numpy(), logits.argmax(1).numpy(), k)
    scores = segmentation_scores(confusion)
    return {"miou": scores["miou"], "pixel_accuracy": scores["pixel_accuracy"]}


def checkpoint_dataset(checkpoint: str | os.PathLike, *, split: str = "test", samples: int = 128, data_root: str = ""):
    """The evaluation dataset a checkpoint was trained for (as ``edge-snn eval`` builds it)."""
    from edge_snn.training.checkpoint import open_checkpoint

    return open_checkpoint(checkpoint).dataset(split, samples=samples, data_root=data_root,
                                               hint="a noise sweep scores labelled data")


def sweep(checkpoints: Sequence[str | os.PathLike] | Mapping[str, str | os.PathLike], dataset,
          noises: Sequence[str], levels: Sequence[float] | None = None, *, batch_size: int = 16,
          seed: int = 12345) -> list[dict]:
    """mIoU of every checkpoint (SNN or ANN twin) under every noise and level.

    ``checkpoints``: paths, or ``{label: path}``. ``levels``: used for every
    noise (default: :data:`DEFAULT_LEVELS` per noise); the clean score (level
    0) is always included, computed once per checkpoint. Returns rows
    ``{checkpoint, model ("snn"/"ann"), noise, level, miou, pixel_accuracy}``.
    """
    from edge_snn.training.checkpoint import open_checkpoint

    named = dict(checkpoints) if isinstance(checkpoints, Mapping) else {str(p): p for p in checkpoints}
    for noise in noises:
        corruption(noise, 0.0)  # validate names before any work
    rows = []
    for label, path in named.items():
        ckpt = open_checkpoint(path)
        model = ckpt.model()
        kind = "snn" if model.spiking else "ann"
        encoding = ckpt.encoding_for(dataset)
        clean = score(model, dataset, encoding=encoding, batch_size=batch_size, seed=seed)
        for noise in noises:
            wanted = sorted({0.0, *(DEFAULT_LEVELS[noise.replace("_", "-")] if levels is None else levels)})
            for level in wanted:
                scores = clean if level == 0 else score(model, dataset, encoding=encoding, batch_size=batch_size,
                                                        seed=seed, noise=corruption(noise, level))
                rows.append({"checkpoint": label, "model": kind, "noise": noise, "level": level, **scores})
    return rows


def format_table(rows: list[dict]) -> str:
    """One line per (noise, level), one mIoU column per checkpoint."""
    labels = list(dict.fromkeys(r["checkpoint"] for r in rows))
    kinds = {r["checkpoint"]: r["model"] for r in rows}
    cells = {(r["noise"], r["level"], r["checkpoint"]): r["miou"] for r in rows}
    keys = list(dict.fromkeys((r["noise"], r["level"]) for r in rows))
    heads = [f"{kinds[label]}:{os.path.basename(str(label))}" for label in labels]
    width = max([10, *map(len, heads)])
    lines = [f"{'noise':<12s}{'level':>7s}  " + "  ".join(f"{h:>{width}s}" for h in heads)]
    for noise, level in keys:
        values = [cells.get((noise, level, label)) for label in labels]
        lines.append(f"{noise:<12s}{level:>7.3g}  " + "  ".join(
            f"{'-' if v is None else f'{v:.4f}':>{width}s}" for v in values))
    return "\n".join(lines)


def plot(rows: list[dict], path: str | os.PathLike) -> bool:
    """mIoU against level, one panel per noise; False (and nothing written) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    noises = list(dict.fromkeys(r["noise"] for r in rows))
    fig, axes = plt.subplots(1, len(noises), figsize=(4 * len(noises), 3.2), squeeze=False)
    for ax, noise in zip(axes[0], noises):
        for label in dict.fromkeys(r["checkpoint"] for r in rows):
            mine = [r for r in rows if r["noise"] == noise and r["checkpoint"] == label]
            ax.plot([r["level"] for r in mine], [r["miou"] for r in mine], marker="o",
                    label=f"{mine[0]['model']}: {os.path.basename(str(label))}")
        ax.set_title(noise)
        ax.set_xlabel("level")
        ax.set_ylabel("mIoU")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
