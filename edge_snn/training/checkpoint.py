"""Checkpoints: one file per save, written atomically, loaded without unpickling code.

A checkpoint is a ``torch.save`` of plain data only (tensors, numbers,
strings, lists, dicts)::

    {"format": "edge-snn-checkpoint", "version": 1,
     "model": {arch, in_channels, num_classes, timesteps, width, spiking, leak, threshold, surrogate},
     "data": {dataset, encoding, height, width, class_names, ...},
     "state_dict": {...}, "optimizer": {...} | None, "scheduler": {...} | None,
     "epoch": int, "step_in_epoch": int, "metrics": {...}, "history": [...],
     "seed": int, "rng": {...}, "versions": {...}}

It is read with ``torch.load(weights_only=True)``: a file holding a pickled
object that would run code is refused before anything runs. Writes go to a
temporary file next to the target, then ``os.replace``, so a kill never leaves
a half-written checkpoint.
"""

from __future__ import annotations

import io
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from edge_snn.errors import UserError
from edge_snn.runtime.files import write_bytes_atomic

FORMAT = "edge-snn-checkpoint"
VERSION = 1
MODEL_KEYS = ("arch", "in_channels", "num_classes", "timesteps", "width", "spiking", "leak", "threshold", "surrogate")


def library_versions() -> dict[str, str]:
    import numpy

    versions = {"python": platform.python_version(), "torch": str(torch.__version__), "numpy": numpy.__version__}
    from edge_snn import __version__

    versions["edge_snn"] = __version__
    return versions


def model_config(model) -> dict[str, Any]:
    """The builder arguments that recreate ``model`` (see :func:`edge_snn.models.build_model`)."""
    return dict(
        arch=model.arch, in_channels=model.in_channels, num_classes=model.num_classes,
        timesteps=model.timesteps, width=model.width, spiking=model.spiking,
        leak=model.lif.leak, threshold=model.lif.threshold, surrogate=model.lif.surrogate,
    )


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` into memory, then an atomic write (temp file in the same folder, rename)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def save_checkpoint(path, model, *, data: dict, **fields: Any) -> None:
    """Write a checkpoint of ``model`` plus training fields (epoch, optimizer, metrics, ...)."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model": model_config(model),
        "data": dict(data),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "versions": library_versions(),
    }
    if getattr(model, "quantization", None):
        payload["quantization"] = model.quantization
    payload.update(fields)
    atomic_torch_save(payload, path)


def safe_torch_load(path: str | os.PathLike) -> Any:
    """``torch.load(weights_only=True)`` with errors a user can act on."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; pass the path of a .pt file written by `edge-snn train`")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle.UnpicklingError, RuntimeError, EOFError, zip errors ...
        message = str(err)
        found = re.search(r"(?:unsupported|Unsupported) (?:global|GLOBAL)[: ]+(?:GLOBAL )?([\w.]+)", message)
        if found:
            raise UserError(
                f"refusing to load {path}: it holds a pickled Python object ({found.group(1)}) that could run code; "
                f"only plain tensors and numbers are accepted - re-save it as a plain state dict"
            ) from None
        reason = next((line.strip() for line in reversed(message.splitlines()) if line.strip() and "documentation" not in line), type(err).__name__)
        raise UserError(f"{path} is not a readable checkpoint ({reason[:160]}); is the file complete?") from None


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load and validate an edge-snn checkpoint (never runs code from the file)."""
    ckpt = safe_torch_load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(
            f"{path} is not an edge-snn checkpoint; for a checkpoint of the authors' SNN-Segmentation code "
            f"run `edge-snn import-checkpoint {path} -o model.pt` first"
        )
    if ckpt.get("version", 0) > VERSION:
        raise UserError(f"{path} was written by a newer edge-snn (checkpoint version {ckpt['version']}); upgrade edge-snn")
    missing = [k for k in MODEL_KEYS if k not in ckpt.get("model", {})]
    if missing:
        raise UserError(f"{path} lacks model fields {missing}; the checkpoint is damaged")
    return ckpt


def model_from_checkpoint(path_or_ckpt) -> tuple[Any, dict]:
    """Rebuild the model of a checkpoint with its weights, in eval mode."""
    from edge_snn.models import build_model

    ckpt = path_or_ckpt if isinstance(path_or_ckpt, dict) else load_checkpoint(path_or_ckpt)
    model = build_model(**{k: ckpt["model"][k] for k in MODEL_KEYS})
    if ckpt.get("quantization"):
        from edge_snn.quantize import quantize_structure

        q = ckpt["quantization"]
        quantize_structure(model, q["inputs"], weight_bits=q["weight_bits"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise UserError(f"checkpoint weights do not fit its own model config: {str(err).splitlines()[0]}") from None
    return model.eval(), ckpt


@dataclass(frozen=True)
class DataInfo:
    """What a checkpoint records of its input data, read with the one set of defaults.

    encoding: how inputs become spikes (poisson, direct, events).
    height / width: the training input size in pixels.
    input_range: the value range the model was trained on (default: :func:`default_input_range`).
    """

    dataset: str
    encoding: str
    height: int
    width: int
    class_names: tuple[str, ...]
    input_range: tuple[float, float]
    ignore_index: int = 255

    @classmethod
    def from_checkpoint(cls, ckpt: dict) -> DataInfo:
        from edge_snn.runtime.encoding import default_input_range

        data = ckpt.get("data", {})
        encoding = data.get("encoding", "poisson")
        classes = data.get("class_names") or [str(i) for i in range(int(ckpt["model"]["num_classes"]))]
        return cls(dataset=str(data.get("dataset", "")), encoding=encoding, height=int(data.get("height", 64)),
                   width=int(data.get("width", 64)), class_names=tuple(classes),
                   input_range=tuple(data.get("input_range") or default_input_range(encoding)),
                   ignore_index=int(data.get("ignore_index", 255)))


class Checkpoint:
    """An opened checkpoint: its record, the model it rebuilds, the dataset it was trained on.

    The one way from a checkpoint file to config, model and data, shared by
    eval, robustness, parity, quantize, convert and export.
    """

    def __init__(self, path: str | os.PathLike, raw: dict):
        from edge_snn.training.config import TrainConfig

        self.path = Path(path)
        self.raw = raw
        self.data = DataInfo.from_checkpoint(raw)
        self.train_config = TrainConfig.from_dict(raw["train_config"]) if raw.get("train_config") else None
        self._model = None

    @property
    def quantization(self) -> dict | None:
        return self.raw.get("quantization")

    def model(self):
        """The model, weights loaded, in eval mode (built once)."""
        if self._model is None:
            self._model, _ = model_from_checkpoint(self.raw)
        return self._model

    def config(self, *, data_root: str = "", size: tuple[int, int] | None = None, hint: str = ""):
        """The training config, optionally with another data root or input size; a UserError if there is none."""
        from dataclasses import replace

        if self.train_config is None:
            raise UserError(f"{self.path} does not record the dataset it was trained on (no train_config, e.g. an "
                            f"imported checkpoint){'; ' + hint if hint else ''}")
        config = replace(self.train_config, data_root=data_root) if data_root else self.train_config
        if size is not None and size != (config.height, config.width):
            config = replace(config, height=size[0], width=size[1])
        return config

    def dataset(self, split: str, *, samples: int | None = None, data_root: str = "",
                size: tuple[int, int] | None = None, hint: str = ""):
        """The ``split`` of the checkpoint's own dataset (``samples`` scenes of the synthetic ones)."""
        from edge_snn.training.datasets import make_dataset

        return make_dataset(self.config(data_root=data_root, size=size, hint=hint), split, num_samples=samples)

    def encoding_for(self, dataset) -> str:
        """How ``dataset``'s inputs are encoded for this model (event datasets feed their frames)."""
        from edge_snn.training.datasets import dataset_kind

        return "events" if dataset_kind(dataset) == "events" else self.data.encoding


def open_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load and validate ``path`` (never runs code from the file) as a :class:`Checkpoint`."""
    return Checkpoint(path, load_checkpoint(path))
