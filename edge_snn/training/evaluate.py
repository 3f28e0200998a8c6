"""Evaluation: run a model over a dataset, accumulate a confusion matrix, score it."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from edge_snn.encoding import encode_batch
from edge_snn.errors import UserError
from edge_snn.runtime.encoding import frame_seed
from edge_snn.runtime.metrics import confusion_matrix, segmentation_scores


@torch.no_grad()
def predict_batch(model, x: torch.Tensor, *, encoding: str, seed: int, layout: str = "time-major") -> torch.Tensor:
    """Logits of one batch on the CPU (spiking: encoded over the model's T; ANN: one pass on the analog input)."""
    device = next(model.parameters()).device
    if not model.spiking:
        if encoding == "events":  # the ANN twin sees the event frames summed over time
            x = x.sum(1)
        return model.run(x.to(device)).logits.cpu()
    spikes = encode_batch(x, encoding, model.timesteps, seed=seed).to(device)
    return model.run(spikes, layout=layout).logits.cpu()


@torch.no_grad()
def evaluate(model, dataset, *, encoding: str, batch_size: int = 16, seed: int = 12345, class_names=None,
             progress: bool = False) -> dict:
    """mIoU, pixel accuracy, per-class IoU and the confusion matrix of ``model`` on ``dataset``."""
    model.eval()
    k = model.num_classes
    confusion = np.zeros((k, k), dtype=np.int64)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    if progress:
        from tqdm import tqdm

        loader = tqdm(loader, desc="eval", leave=False)
    for i, (x, label) in enumerate(loader):
        logits = predict_batch(model, x, encoding=encoding, seed=frame_seed(seed, i))
        confusion += confusion_matrix(label.numpy(), logits.argmax(1).numpy(), k)
    scores = segmentation_scores(confusion, list(class_names) if class_names else None)
    scores["confusion"] = confusion.tolist()
    return scores


def chance_miou(confusion: np.ndarray) -> float:
    """mIoU of a predictor that guesses each class at random with the true class frequencies."""
    freq = confusion.sum(1).astype(np.float64)
    p = freq / max(freq.sum(), 1)
    # expected IoU of class c: p_c^2 / (p_c + p_c - p_c^2) for an independent guess with the same marginals
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(p > 0, p * p / (2 * p - p * p), np.nan)
    return float(np.nanmean(iou))


def evaluate_checkpoint(checkpoint, *, split: str = "test", samples: int = 128, data_root: str = "",
                        batch_size: int = 16) -> dict:
    """Scores of a checkpoint on its own dataset (the synthetic scenes: ``samples`` held-out ones)."""
    from edge_snn.training.checkpoint import open_checkpoint

    if samples < 1 or batch_size < 1:
        raise UserError(f"--samples and --batch-size must be at least 1, got {samples} and {batch_size}")
    ckpt = open_checkpoint(checkpoint)
    dataset = ckpt.dataset(split, samples=samples, data_root=data_root,
                           hint="eval scores labelled data; use `edge-snn parity --input` to check a graph on your frames")
    scores = evaluate(ckpt.model(), dataset, encoding=ckpt.encoding_for(dataset), batch_size=batch_size,
                      class_names=getattr(dataset, "class_names", None))
    scores["chance_miou"] = chance_miou(np.asarray(scores["confusion"]))
    return scores
