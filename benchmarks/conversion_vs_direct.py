"""Converted vs directly trained SNN at several T, on the built-in synthetic images.

The paper's claim in miniature (PAPER.md, "Claim"): an SNN trained directly
with BPTT segments better at low latency than one converted from its ANN
twin. Everything is tiny so that it runs on two CPU cores in a few minutes:
Spiking-DeepLab at width 1/8, 32 x 32 inputs, direct (analog) encoding, the
same data, epochs and optimizer for the ANN twin and for each direct SNN.

* ANN twin: trained by a short loop here (``edge_snn.training.trainer.train``
  builds spiking models only).
* Converted: :func:`edge_snn.convert.convert_checkpoint` (IF neurons,
  99.99th-percentile weight normalization, layer- and channel-wise), at each T.
* Direct: :func:`edge_snn.training.trainer.train`, one run per T (BNTT fixes T).

All are scored on the same held-out synthetic test scenes. Prints a table and
writes ``results.json`` to ``--out``. These are tiny, short runs: the numbers
show the trend at this scale, not the paper's VOC/DDD17 results.

    .venv/bin/python benchmarks/conversion_vs_direct.py [--epochs 4] [--out runs/conversion_vs_direct]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from edge_snn.convert import convert_checkpoint
from edge_snn.models import build_model
from edge_snn.runtime.files import write_json_atomic
from edge_snn.training.checkpoint import model_from_checkpoint, save_checkpoint
from edge_snn.training.config import TrainConfig
from edge_snn.training.datasets import make_dataset
from edge_snn.training.evaluate import evaluate
from edge_snn.training.trainer import data_info, train

TIMESTEPS = (5, 10, 20, 40)
TEST_SAMPLES = 64


def base_config(epochs: int) -> TrainConfig:
    return TrainConfig(arch="dl-vgg9", width_mult=0.125, timesteps=20, dataset="synthetic-images", encoding="direct",
                       height=32, width=32, train_samples=192, val_samples=32, epochs=epochs, batch_size=16,
                       optimizer="adam", lr=2e-3, seed=0, checkpoint_every=0)


def train_ann(config: TrainConfig, path: Path) -> None:
    """The ANN twin, with the trainer's data order, optimizer and schedule (one pass per batch, no time)."""
    train_set = make_dataset(config, "train")
    torch.manual_seed(config.seed)
    model = build_model(config.arch, in_channels=3, num_classes=train_set.num_classes, width=config.width_mult,
                        spiking=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    milestones = sorted({max(1, int(round(f * config.epochs))) for f in config.milestones})
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    steps = math.ceil(len(train_set) / config.batch_size)
    for epoch in range(config.epochs):
        order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(config.seed * 100003 + epoch))
        model.train()
        for step in range(steps):
            idx = order[step * config.batch_size:(step + 1) * config.batch_size].tolist()
            x = torch.stack([train_set[i][0] for i in idx])
            label = torch.stack([train_set[i][1] for i in idx])
            loss = F.cross_entropy(model.run(x).logits, label, ignore_index=255)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()
    save_checkpoint(path, model.eval(), data=data_info(config, train_set, "direct"), train_config=config.to_dict(),
                    epoch=config.epochs, step_in_epoch=0)


def heldout_miou(checkpoint: Path, config: TrainConfig) -> float:
    model, _ = model_from_checkpoint(checkpoint)
    test_set = make_dataset(config, "test", num_samples=TEST_SAMPLES)
    return evaluate(model, test_set, encoding="direct", batch_size=16)["miou"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("runs/conversion_vs_direct"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    args.out.mkdir(parents=True, exist_ok=True)
    config = base_config(args.epochs)
    started = time.perf_counter()

    ann_path = args.out / "ann.pt"
    train_ann(config, ann_path)
    results = {"config": config.to_dict(), "test_samples": TEST_SAMPLES, "ann_miou": heldout_miou(ann_path, config),
               "rows": []}
    print(f"ANN twin: test mIoU {results['ann_miou']:.4f}  ({time.perf_counter() - started:.0f} s)", flush=True)

    for t in TIMESTEPS:
        row = {"timesteps": t}
        for mode in ("layer", "channel"):
            path = args.out / f"converted_{mode}_T{t}.pt"
            convert_checkpoint(ann_path, path, timesteps=t, mode=mode, percentile=99.99, samples=64)
            row[f"converted_{mode}"] = heldout_miou(path, config)
        direct = TrainConfig.from_dict({**config.to_dict(), "timesteps": t})
        train(direct, args.out / f"direct_T{t}", progress=False)
        row["direct"] = heldout_miou(args.out / f"direct_T{t}" / "last.pt", direct)
        results["rows"].append(row)
        print(f"T={t:>3d}: converted layer {row['converted_layer']:.4f}  channel {row['converted_channel']:.4f}  "
              f"direct {row['direct']:.4f}  ({time.perf_counter() - started:.0f} s)", flush=True)

    results["seconds"] = time.perf_counter() - started
    write_json_atomic(args.out / "results.json", results)
    print()
    print(f"test mIoU on {TEST_SAMPLES} synthetic scenes (ANN twin {results['ann_miou']:.4f}); "
          f"dl-vgg9 width 1/8, 32x32, {args.epochs} epochs, direct encoding")
    print(f"{'T':>4s}  {'converted (layer)':>18s}  {'converted (channel)':>20s}  {'direct BPTT':>12s}")
    for row in results["rows"]:
        print(f"{row['timesteps']:>4d}  {row['converted_layer']:>18.4f}  {row['converted_channel']:>20.4f}  "
              f"{row['direct']:>12.4f}")
    print(f"\n{results['seconds']:.0f} s; results in {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
