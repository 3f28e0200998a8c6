"""``edge-snn convert``: ANN twin -> SNN by threshold balancing (:mod:`edge_snn.convert`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_snn.cli import app


@app.command()
def convert(
    ann_checkpoint: Annotated[Path, typer.Argument(help="Checkpoint (.pt) of a trained ANN twin (spiking=False).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the converted SNN checkpoint.")],
    timesteps: Annotated[int, typer.Option(help="T of the converted SNN (conversion needs many steps).")],
    mode: Annotated[str, typer.Option(help="Threshold balancing per layer or per channel: layer or channel.")] = "layer",
    percentile: Annotated[float, typer.Option(help="Percentile of positive activations mapped to the threshold (100 = max).")] = 99.99,
    scale: Annotated[float, typer.Option(help="Multiplies each layer's percentile (< 1: more spikes, more clipping).")] = 1.0,
    samples: Annotated[int, typer.Option(help="Training samples used for calibration.")] = 64,
    encoding: Annotated[Optional[str], typer.Option(help="Image encoding of the SNN: direct or poisson (default: the ANN run's).")] = None,
    data_root: Annotated[str, typer.Option(help="Dataset folder for on-disk datasets.")] = "",
    batch_size: Annotated[int, typer.Option(help="Calibration batch size.")] = 16,
) -> None:
    """Convert a trained ANN twin into an SNN (IF neurons, weight normalization): the paper's baseline."""
    from edge_snn.convert import convert_checkpoint

    summary = convert_checkpoint(ann_checkpoint, out, timesteps=timesteps, mode=mode, percentile=percentile,
                                 scale=scale, samples=samples, encoding=encoding, data_root=data_root,
                                 batch_size=batch_size)
    typer.echo(f"converted {ann_checkpoint} -> {out}: T={timesteps}, {mode}-wise, percentile {percentile}, "
               f"{summary['calibration_samples']} calibration samples")
    for name, lam in summary["lambda_max"].items():
        typer.echo(f"  {name:>10s}  lambda {lam:.4g}")
