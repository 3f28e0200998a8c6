"""``edge-snn quantize``: PTQ or QAT of a checkpoint, calibrated on its training data or on the user's own frames.

Calibration batches come from one of two places:

* the checkpoint's own training data (its ``train_config``);
* ``calibration=PATH``: a file or folder of what ``edge-snn run`` accepts,
  read by :mod:`edge_snn.runtime.inputs` and encoded by
  :func:`edge_snn.runtime.encoding.encode_frame`, exactly as ``run`` does. This
  works for every checkpoint, imported ones included, and is required only
  when the checkpoint records no dataset.

mIoU before and after needs labelled held-out data; without it the result
reports how often the quantized model's class maps agree with the float
model's on the calibration frames instead.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from edge_snn.encoding import encode_batch
from edge_snn.errors import InputError, UserError
from edge_snn.runtime.encoding import encode_frame, frame_seed
from edge_snn.training.checkpoint import Checkpoint, open_checkpoint, save_checkpoint
from edge_snn.training.config import TrainConfig
from edge_snn.training.datasets import input_encoding, make_dataset
from edge_snn.training.evaluate import evaluate

CALIBRATION_HINT = "pass --calibration FRAMES (a file or folder of what `edge-snn run` accepts)"


def calibration_batches(config: TrainConfig, *, samples: int, batch_size: int = 16) -> list[torch.Tensor]:
    """Encoded training batches for calibration (the run's own encoding and seed)."""
    dataset = make_dataset(config, "train", num_samples=samples)
    encoding = input_encoding(config, dataset)
    batches = []
    for start in range(0, min(samples, len(dataset)), batch_size):
        x = torch.stack([dataset[i][0] for i in range(start, min(start + batch_size, samples, len(dataset)))])
        batches.append(encode_batch(x, encoding, config.timesteps, seed=frame_seed(config.seed + 7, start)))
    return batches


def file_batches(path, ckpt: Checkpoint, *, samples: int, seed: int = 0) -> list[torch.Tensor]:
    """The user's frames at ``path`` (at most ``samples``), each encoded as ``edge-snn run`` encodes it."""
    from edge_snn.runtime.inputs import fit_frame, list_inputs, read_input

    model, data = ckpt.model(), ckpt.data
    batches = []
    for index, file in enumerate(list_inputs(path, data.encoding)[:samples]):
        x, _ = read_input(file, encoding=data.encoding)
        try:
            x = fit_frame(x, encoding=data.encoding, channels=model.in_channels, steps=model.timesteps,
                          input_range=data.input_range)
        except InputError as err:
            raise InputError(f"calibration frame {file}: {err}") from None
        batches.append(torch.from_numpy(encode_frame(x, data.encoding, model.timesteps, seed=seed, frame_index=index)))
    return batches


@torch.no_grad()
def _class_maps(model, batches) -> list[np.ndarray]:
    return [model.run(b).logits.argmax(1).numpy() for b in batches]


def quantize_checkpoint(checkpoint, output, *, method: str = "ptq", epochs: int = 1, weight_bits: int = 8,
                        calibration=None, calibration_samples: int = 64, eval_samples: int = 128,
                        lr: float | None = None, qat_config: TrainConfig | None = None, progress: bool = True) -> dict:
    """Quantize ``checkpoint`` into ``output``; returns mIoU before and after (or agreement on the frames).

    calibration: a file or folder of the user's frames (else the checkpoint's training data).
    qat_config: the data QAT trains on, when the checkpoint records none (``--config`` / ``--dataset``).
    """
    from edge_snn.quantize import quantize_ptq
    from edge_snn.runtime.files import check_output_file

    if method not in ("ptq", "qat"):
        raise UserError("choose --ptq or --qat")
    if calibration_samples < 1 or eval_samples < 1 or epochs < 1:
        raise UserError("--calibration-samples, --eval-samples and --epochs must be at least 1")
    check_output_file(output, "--output")
    ckpt = open_checkpoint(checkpoint)
    if ckpt.quantization:
        raise UserError(f"{checkpoint} is already quantized; quantize the float checkpoint instead")
    config = qat_config or ckpt.train_config
    if method == "qat" and config is None:
        raise UserError(f"{checkpoint} does not record the dataset it was trained on, and QAT trains on one: pass "
                        f"--dataset/--data-root or --config as for `edge-snn train`")
    if calibration is not None:
        batches = file_batches(calibration, ckpt, samples=calibration_samples)
    else:
        batches = calibration_batches(ckpt.config(hint=CALIBRATION_HINT), samples=calibration_samples)
    model = ckpt.model()
    test_set = make_dataset(config, "test", num_samples=eval_samples) if config is not None else None
    encoding = input_encoding(config, test_set) if test_set is not None else ckpt.data.encoding
    names = getattr(test_set, "class_names", None)
    before = evaluate(model, test_set, encoding=encoding, class_names=names)["miou"] if test_set else None
    float_maps = _class_maps(model, batches) if test_set is None else None
    model = quantize_ptq(model, batches, weight_bits=weight_bits)
    history = []
    if method == "qat":
        qat = replace(config, epochs=epochs, lr=lr if lr is not None else config.lr * 0.1, checkpoint_every=0)
        with tempfile.TemporaryDirectory(dir=Path(output).parent if Path(output).parent.exists() else None) as tmp:
            from edge_snn.training.trainer import train

            history = train(qat, tmp, model=model, progress=progress)["history"]
        model.eval()
    metrics = {"method": method, "weight_bits": weight_bits, "calibration": str(calibration or "training data"),
               "calibration_frames": sum(int(b.shape[1]) for b in batches), "miou_float": before}
    if test_set is not None:
        after = evaluate(model, test_set, encoding=encoding, class_names=names)
        metrics.update(miou_quantized=after["miou"], pixel_accuracy_quantized=after["pixel_accuracy"])
    else:
        same = [np.mean(a == b) for a, b in zip(float_maps, _class_maps(model, batches))]
        metrics.update(miou_quantized=None, float_agreement=float(np.mean(same)))
    fields = {"train_config": config.to_dict()} if config is not None else {}
    save_checkpoint(output, model, data=ckpt.raw["data"], epoch=ckpt.raw.get("epoch", 0), step_in_epoch=0,
                    history=ckpt.raw.get("history", []) + history, metrics=metrics,
                    source={"kind": "quantized", "from": str(checkpoint)}, **fields)
    return metrics
