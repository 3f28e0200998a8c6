"""Backprop through time, resumable after a kill with nothing lost.

The run is a pure function of its :class:`TrainConfig`: weights are
initialized from ``seed``, each epoch shuffles with ``seed`` and the epoch
number, each batch draws its Poisson spikes from ``(seed, epoch, step)``.
``last.pt`` (model, optimizer, scheduler, epoch, step within the epoch) is
written atomically every ``checkpoint_every`` steps and at each epoch end, so
``--resume`` after a kill replays exactly the batches that were not yet
applied and ends with the weights an uninterrupted run would have.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from edge_snn.encoding import encode_batch
from edge_snn.errors import UserError
from edge_snn.models import build_model
from edge_snn.runtime.encoding import default_input_range, frame_seed
from edge_snn.runtime.files import write_json_atomic
from edge_snn.training.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from edge_snn.training.config import DEFAULT_RUN, TrainConfig
from edge_snn.training.datasets import input_channels, input_encoding, make_dataset
from edge_snn.training.distributed import barrier, epoch_indices, init_distributed, shutdown, wrap
from edge_snn.training.evaluate import evaluate

LAST, BEST = "last.pt", "best.pt"


def _optimizer(config: TrainConfig, model):
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    raise UserError(f"unknown optimizer {config.optimizer!r}; choose sgd or adam")


def _scheduler(config: TrainConfig, optimizer):
    milestones = sorted({max(1, int(round(f * config.epochs))) for f in config.milestones})
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)


def data_info(config: TrainConfig, dataset, encoding: str) -> dict:
    """What a checkpoint records of its data (read back by :class:`edge_snn.training.checkpoint.DataInfo`)."""
    return {
        "dataset": config.dataset, "encoding": encoding, "height": config.height, "width": config.width,
        "class_names": list(getattr(dataset, "class_names", [])), "ignore_index": 255, "seed": config.seed,
        "input_range": list(getattr(dataset, "input_range", default_input_range(encoding))),
        "binning": dataset.binning.to_dict() if getattr(dataset, "binning", None) is not None else None,
    }


def resume_config(ckpt: dict, out: Path, epochs: int | None) -> TrainConfig:
    """The config a resumed run continues with: its own, with ``epochs`` only when given to extend it."""
    config = TrainConfig.from_dict(ckpt["train_config"])
    done = int(ckpt["epoch"]) if not ckpt.get("step_in_epoch") else int(ckpt["epoch"]) + 1
    if epochs is not None:
        if epochs < done:
            raise UserError(f"--epochs {epochs} is fewer than the {done} epochs {out} has already trained; "
                            f"pass a larger --epochs to extend it, or train into a new folder")
        config = replace(config, epochs=epochs)
    return config


def train(config: TrainConfig | None, out_dir: str | os.PathLike, *, resume: bool = False, epochs: int | None = None,
          progress: bool = True, stop_after_steps: int | None = None, model=None,
          rank_weights_dir: str | None = None) -> dict:
    """Train (or resume) into ``out_dir``; returns the final metrics.

    ``resume`` continues the run in ``out_dir`` with the config stored in its
    ``last.pt`` (``config`` is then ignored and may be None); ``epochs``
    extends its plan to that many epochs. A finished run is left untouched
    and the result says ``{"finished": True}``.

    ``stop_after_steps`` ends the process's work after that many optimizer
    steps (a controlled interruption, used to test resuming). ``model``
    starts from a given network (quantization-aware fine-tuning) instead of
    a fresh one. Under ``torchrun`` each rank trains a DDP replica on its
    shard (see :mod:`edge_snn.training.distributed`); ``rank_weights_dir``
    makes every rank save its final weights there (to check they agree).
    """
    dist_info = init_distributed()
    progress = progress and dist_info.is_main
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create output folder {out}: {err.strerror}") from None
    ckpt = None
    if resume:
        if not (out / LAST).is_file():
            raise UserError(f"nothing to resume: {out / LAST} does not exist; run without --resume to start")
        ckpt = load_checkpoint(out / LAST)
        config = resume_config(ckpt, out, epochs)
        if ckpt["epoch"] >= config.epochs:
            shutdown(dist_info)
            return {"finished": True, "epochs": int(ckpt["epoch"]), "best_miou": float(ckpt.get("best_miou", -1.0)),
                    "history": list(ckpt.get("history", []))}
    elif config is None:
        raise TypeError("train() needs a config unless it resumes")

    train_set = make_dataset(config, "train")
    val_set = make_dataset(config, config.val_split)
    encoding = input_encoding(config, train_set)
    torch.manual_seed(config.seed)
    if ckpt is not None:
        model, _ = model_from_checkpoint(ckpt)  # rebuilds quantized layers too
    elif model is None:
        model = build_model(config.arch, in_channels=input_channels(train_set), num_classes=train_set.num_classes,
                            timesteps=config.timesteps, width=config.width_mult, leak=config.leak,
                            threshold=config.threshold, surrogate=config.surrogate)
    optimizer = _optimizer(config, model)
    scheduler = _scheduler(config, optimizer)
    epoch, step_in_epoch, history, best = 0, 0, [], -1.0
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        epoch, step_in_epoch = ckpt["epoch"], ckpt["step_in_epoch"]
        history, best = list(ckpt.get("history", [])), float(ckpt.get("best_miou", -1.0))

    info = data_info(config, train_set, encoding)
    steps_per_epoch = math.ceil(len(train_set) / (config.batch_size * dist_info.world_size))
    steps_done = 0
    model.to(dist_info.device)
    trainee = wrap(model, dist_info)

    def save(path: Path, **extra) -> None:
        if not dist_info.is_main:
            return
        save_checkpoint(path, model, data=info, optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                        epoch=epoch, step_in_epoch=step_in_epoch, history=history, best_miou=best,
                        train_config=config.to_dict(), seed=config.seed, **extra)

    while epoch < config.epochs:
        order = epoch_indices(len(train_set), dist_info, seed=config.seed, epoch=epoch)
        model.train()
        bar = range(step_in_epoch, steps_per_epoch)
        if progress:
            from tqdm import tqdm

            bar = tqdm(bar, desc=f"epoch {epoch + 1}/{config.epochs}", initial=step_in_epoch, total=steps_per_epoch)
        running, batches = 0.0, 0
        for step in bar:
            idx = order[step * config.batch_size:(step + 1) * config.batch_size]
            x = torch.stack([train_set[i][0] for i in idx])
            label = torch.stack([train_set[i][1] for i in idx]).to(dist_info.device)
            spike_seed = frame_seed(config.seed, (epoch * 1_000_003 + step) * 1009 + dist_info.rank)
            spikes = encode_batch(x, encoding, config.timesteps, seed=spike_seed).to(dist_info.device)
            logits = trainee(spikes)
            loss = F.cross_entropy(logits, label, ignore_index=255)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running, batches = running + loss.item(), batches + 1
            step_in_epoch, steps_done = step + 1, steps_done + 1
            if progress:
                bar.set_postfix(loss=f"{loss.item():.3f}")
            if config.checkpoint_every and step_in_epoch % config.checkpoint_every == 0 and step_in_epoch < steps_per_epoch:
                save(out / LAST)
            if stop_after_steps is not None and steps_done >= stop_after_steps:
                save(out / LAST)
                barrier(dist_info)
                return {"stopped_after_steps": steps_done}
        scheduler.step()
        scores = evaluate(model, val_set, encoding=encoding, batch_size=config.batch_size,
                          class_names=getattr(val_set, "class_names", None))
        record = {"epoch": epoch + 1, "loss": running / max(1, batches),
                  "val_miou": scores["miou"], "val_pixel_accuracy": scores["pixel_accuracy"]}
        history.append(record)
        if dist_info.is_main:
            print(f"epoch {epoch + 1}: loss {record['loss']:.4f}  val mIoU {scores['miou']:.4f}  pixel acc {scores['pixel_accuracy']:.4f}")
        epoch, step_in_epoch = epoch + 1, 0
        if scores["miou"] > best:
            best = scores["miou"]
            save(out / BEST, metrics=scores)
        save(out / LAST, metrics=scores)
        if dist_info.is_main:
            write_json_atomic(out / "history.json", history)
        barrier(dist_info)
    if rank_weights_dir:
        from edge_snn.training.checkpoint import atomic_torch_save

        atomic_torch_save({k: v.detach().cpu() for k, v in model.state_dict().items()},
                          Path(rank_weights_dir) / f"rank{dist_info.rank}.pt")
    shutdown(dist_info)
    return {"history": history, "best_miou": best}


def default_checkpoint(run: str | os.PathLike = DEFAULT_RUN) -> Path:
    """The checkpoint a command uses when none is given: ``best.pt`` of the default run folder."""
    run = Path(run)
    for name in (BEST, LAST):
        if (run / name).is_file():
            return run / name
    raise UserError(f"no checkpoint given and none in {run}/ (where `edge-snn train` writes); pass one, e.g. "
                    f"`edge-snn export runs/NAME/best.pt --timesteps 20`")
