"""``edge-snn quantize``: PTQ or QAT of a trained checkpoint, with mIoU before and after."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from edge_snn.encoding import encode_batch
from edge_snn.errors import UserError
from edge_snn.runtime.encoding import frame_seed
from edge_snn.training.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from edge_snn.training.config import TrainConfig
from edge_snn.training.datasets import input_encoding, make_dataset
from edge_snn.training.evaluate import evaluate


def calibration_batches(config: TrainConfig, *, samples: int, batch_size: int = 16) -> list[torch.Tensor]:
    """Encoded training batches for calibration (the run's own encoding and seed)."""
    dataset = make_dataset(config, "train", num_samples=samples)
    encoding = input_encoding(config, dataset)
    batches = []
    for start in range(0, min(samples, len(dataset)), batch_size):
        x = torch.stack([dataset[i][0] for i in range(start, min(start + batch_size, samples, len(dataset)))])
        batches.append(encode_batch(x, encoding, config.timesteps, seed=frame_seed(config.seed + 7, start)))
    return batches


def quantize_checkpoint(checkpoint, output, *, method: str = "ptq", epochs: int = 1, weight_bits: int = 8,
                        calibration_samples: int = 64, eval_samples: int = 128, lr: float | None = None,
                        progress: bool = True) -> dict:
    """Quantize ``checkpoint`` into ``output``; returns mIoU before and after."""
    from edge_snn.quantize import quantize_ptq

    if method not in ("ptq", "qat"):
        raise UserError("choose --ptq or --qat")
    ckpt = load_checkpoint(checkpoint)
    if ckpt.get("quantization"):
        raise UserError(f"{checkpoint} is already quantized; quantize the float checkpoint instead")
    if "train_config" not in ckpt:
        raise UserError(f"{checkpoint} does not record its training data (no train_config); calibration needs it")
    config = TrainConfig.from_dict(ckpt["train_config"])
    model, _ = model_from_checkpoint(ckpt)
    test_set = make_dataset(config, "test", num_samples=eval_samples)
    encoding = input_encoding(config, test_set)
    names = getattr(test_set, "class_names", None)
    before = evaluate(model, test_set, encoding=encoding, class_names=names)["miou"]
    model = quantize_ptq(model, calibration_batches(config, samples=calibration_samples), weight_bits=weight_bits)
    history = []
    if method == "qat":
        qat_config = replace(config, epochs=epochs, lr=lr if lr is not None else config.lr * 0.1, checkpoint_every=0)
        with tempfile.TemporaryDirectory(dir=Path(output).parent if Path(output).parent.exists() else None) as tmp:
            from edge_snn.training.trainer import train

            result = train(qat_config, tmp, model=model, progress=progress)
            history = result["history"]
        model.eval()
    after = evaluate(model, test_set, encoding=encoding, class_names=names)
    metrics = {"miou_float": before, "miou_quantized": after["miou"], "method": method, "weight_bits": weight_bits,
               "pixel_accuracy_quantized": after["pixel_accuracy"]}
    save_checkpoint(output, model, data=ckpt["data"], train_config=config.to_dict(), epoch=ckpt.get("epoch", 0),
                    step_in_epoch=0, history=ckpt.get("history", []) + history, metrics=metrics,
                    source={"kind": "quantized", "from": str(checkpoint)})
    return metrics
