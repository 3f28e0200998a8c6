"""``edge-snn import-checkpoint``: bring a checkpoint of the authors' code into edge-snn.

A thin wrapper of :func:`edge_snn.authors.write_imported_checkpoint`; torch is
imported only when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edge_snn.cli import app


@app.command("import-checkpoint")
def import_checkpoint(
    path: Annotated[Path, typer.Argument(help="Checkpoint (.pth) written by the authors' SNN-Segmentation train.py.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the edge-snn checkpoint.")],
    channel_order: Annotated[str, typer.Option(
        help="rgb: reverse a VOC model's BGR input channels to read edge-snn's RGB images; as-saved: keep them.",
    )] = "rgb",
) -> None:
    """Import the authors' Spiking-DeepLab (dl-vgg9) weights as an edge-snn checkpoint."""
    from edge_snn.authors import write_imported_checkpoint

    info = write_imported_checkpoint(path, out, channel_order=channel_order)
    data, source = info["data"], info["source"]
    typer.echo(
        f"wrote {out}: dl-vgg9, dataset {data['dataset']}, {data['encoding']} input, "
        f"input channels {source['input_channels']}, sha256 {source['sha256'][:12]} of {path.name}"
    )
