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
