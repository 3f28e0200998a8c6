"""``edge-snn train`` and ``edge-snn eval``: thin wrappers over :mod:`edge_snn.training`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_snn.cli import app
from edge_snn.cli.options import JsonOpt, QuietOpt
from edge_snn.training.config import DEFAULT_RUN, TrainConfig

_DEFAULTS = TrainConfig()  # shown in --help; options default to None so a config file can fill them


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder: last.pt, best.pt, history.json.")] = DEFAULT_RUN,
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML file of TrainConfig fields (see configs/); options given here override it.")] = None,
    arch: Annotated[Optional[str], typer.Option(help="dl-vgg9 (Spiking-DeepLab) or fcn-vgg9 (Spiking-FCN).", show_default=str(_DEFAULTS.arch))] = None,
    width_mult: Annotated[Optional[float], typer.Option("--width-mult", help="Channel width multiplier (1.0 = the paper's).", show_default=str(_DEFAULTS.width_mult))] = None,
    timesteps: Annotated[Optional[int], typer.Option(help="T, steps per frame (BNTT holds one BN per step).", show_default=str(_DEFAULTS.timesteps))] = None,
    dataset: Annotated[Optional[str], typer.Option(help="synthetic-events, synthetic-images, voc2012, ddd17, ...", show_default=str(_DEFAULTS.dataset))] = None,
    data_root: Annotated[Optional[str], typer.Option(help="Dataset folder for on-disk datasets.")] = None,
    encoding: Annotated[Optional[str], typer.Option(help="Image encoding: poisson or direct (event data: events).", show_default=str(_DEFAULTS.encoding))] = None,
    height: Annotated[Optional[int], typer.Option(help="Input height in pixels.", show_default=str(_DEFAULTS.height))] = None,
    width: Annotated[Optional[float], typer.Option(help="Input width in pixels.", show_default=str(_DEFAULTS.width))] = None,
    width_px: Annotated[Optional[int], typer.Option("--width-px", hidden=True, help="Deprecated spelling of --width.")] = None,
    train_samples: Annotated[Optional[int], typer.Option(help="Synthetic training scenes.", show_default=str(_DEFAULTS.train_samples))] = None,
    val_samples: Annotated[Optional[int], typer.Option(help="Synthetic validation scenes.", show_default=str(_DEFAULTS.val_samples))] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Epochs (lr x0.1 at 50% and 80%); with --resume, extend the run to this many.", show_default=str(_DEFAULTS.epochs))] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Batch size.", show_default=str(_DEFAULTS.batch_size))] = None,
    optimizer: Annotated[Optional[str], typer.Option(help="sgd or adam.", show_default=str(_DEFAULTS.optimizer))] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate.", show_default=str(_DEFAULTS.lr))] = None,
    surrogate: Annotated[Optional[str], typer.Option(help="linear, fast-sigmoid, exponential, straight-through.", show_default=str(_DEFAULTS.surrogate))] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for weights, data order and spikes.", show_default=str(_DEFAULTS.seed))] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option(help="Save last.pt every N steps (0: epoch ends only).", show_default=str(_DEFAULTS.checkpoint_every))] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out with its own settings (only --epochs may extend it).")] = False,
    stop_after_steps: Annotated[Optional[int], typer.Option(hidden=True)] = None,
    rank_weights_dir: Annotated[Optional[str], typer.Option(hidden=True)] = None,
    quiet: QuietOpt = False,
) -> None:
    """Train a spiking segmentation network with backprop through time."""
    from edge_snn.errors import UserError
    from edge_snn.training.config_file import load_config_file, merge
    from edge_snn.training.trainer import train as run_training

    if width_px is not None:
        typer.echo("edge-snn: warning: --width-px is deprecated; --width is the input width in pixels now", err=True)
        width = width if width is not None else width_px
    if width is not None and (not float(width).is_integer() or width < 8):
        raise UserError(f"--width is the input width in pixels, got {width:g}; for the channel multiplier use "
                        f"--width-mult {width:g}")
    # Options default to None so that only those given explicitly override the config file.
    cli_values = dict(arch=arch, width_mult=width_mult, timesteps=timesteps, dataset=dataset, data_root=data_root,
                      encoding=encoding, height=height, width=None if width is None else int(width),
                      train_samples=train_samples, val_samples=val_samples, batch_size=batch_size,
                      optimizer=optimizer, lr=lr, surrogate=surrogate, seed=seed, checkpoint_every=checkpoint_every)
    if resume:
        given = sorted(k.replace("_", "-") for k, v in cli_values.items() if v is not None) + (["config"] if config else [])
        if given:
            raise UserError(f"--resume continues the run in {out} with its own settings; drop --{', --'.join(given)} "
                            f"(only --epochs may extend it), or train into a new folder with -o")
        result = run_training(None, out, resume=True, epochs=epochs, progress=not quiet,
                              stop_after_steps=stop_after_steps, rank_weights_dir=rank_weights_dir)
    else:
        train_config = merge(load_config_file(config) if config else {}, {**cli_values, "epochs": epochs})
        result = run_training(train_config, out, progress=not quiet, stop_after_steps=stop_after_steps,
                              rank_weights_dir=rank_weights_dir)
    if result.get("finished"):
        typer.echo(f"the run in {out} already finished its {result['epochs']} epochs (best val mIoU "
                   f"{result['best_miou']:.4f}); nothing changed. Pass --epochs N (more than {result['epochs']}) "
                   f"with --resume to extend it")
    elif "best_miou" in result:
        typer.echo(f"best val mIoU {result['best_miou']:.4f}; checkpoints in {out}")


@app.command("eval")
def evaluate_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint (.pt) written by edge-snn train.")],
    split: Annotated[str, typer.Option(help="Split to score: val or test.")] = "test",
    samples: Annotated[int, typer.Option(help="Synthetic scenes to score.")] = 128,
    data_root: Annotated[str, typer.Option(help="Dataset folder for on-disk datasets.")] = "",
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 16,
    json_out: JsonOpt = None,
    noise: Annotated[Optional[list[str]], typer.Option("--noise", metavar="<name>", help="Noise sweep: gaussian, salt-pepper or blur (repeatable).")] = None,
    level: Annotated[Optional[list[str]], typer.Option("--level", metavar="<levels>", help="Noise levels, repeatable or comma list (default: a range per noise).")] = None,
    compare: Annotated[Optional[list[Path]], typer.Option("--compare", metavar="<path>", help="More checkpoints in the noise sweep, e.g. the ANN twin.")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Noise sweep plot (PNG; needs matplotlib).")] = None,
) -> None:
    """Score a checkpoint: mIoU (void 255 ignored), pixel accuracy, per-class IoU; with --noise, a robustness sweep."""
    from edge_snn.runtime.files import check_output_file
    from edge_snn.training.evaluate import evaluate_checkpoint

    if json_out:
        check_output_file(json_out, "--json")
    if noise or level or compare or plot:
        _noise_sweep(checkpoint, noise or [], level, compare or [], plot, split=split, samples=samples,
                     data_root=data_root, batch_size=batch_size, json_out=json_out)
        return
    scores = evaluate_checkpoint(checkpoint, split=split, samples=samples, data_root=data_root, batch_size=batch_size)
    typer.echo(f"mIoU {scores['miou']:.4f}  pixel accuracy {scores['pixel_accuracy']:.4f}  "
               f"(chance mIoU {scores['chance_miou']:.4f})")
    for name, iou in scores["iou"].items():
        typer.echo(f"  {name:>14s}  {'-' if iou is None else f'{iou:.4f}'}")
    if json_out:
        from edge_snn.runtime.files import write_json_atomic

        write_json_atomic(json_out, scores)


def _noise_sweep(checkpoint, noises, levels, compare, plot_path, *, split, samples, data_root, batch_size, json_out):
    from edge_snn.errors import UserError
    from edge_snn.robustness import checkpoint_dataset, format_table, parse_levels, plot, sweep

    if not noises:
        raise UserError("--level, --compare and --plot belong to a noise sweep: add --noise gaussian|salt-pepper|blur")
    dataset = checkpoint_dataset(checkpoint, split=split, samples=samples, data_root=data_root)
    rows = sweep([checkpoint, *compare], dataset, noises, parse_levels(levels) if levels else None,
                 batch_size=batch_size)
    typer.echo(format_table(rows))
    if json_out:
        from edge_snn.runtime.files import write_json_atomic

        write_json_atomic(json_out, rows)
    if plot_path and not plot(rows, plot_path):
        typer.echo("matplotlib is not installed; skipping the plot (pip install matplotlib)")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for everything the demo makes.")] = Path("runs/demo"),
    fresh: Annotated[bool, typer.Option("--fresh", help="Retrain even if a finished run is there.")] = False,
    epochs: Annotated[Optional[int], typer.Option(help="Override the demo's epochs (smaller = faster, worse).")] = None,
) -> None:
    """Train, evaluate, export, run and check parity on the built-in synthetic event data."""
    from edge_snn.demo import run_demo

    run_demo(out, fresh=fresh, epochs=epochs)
