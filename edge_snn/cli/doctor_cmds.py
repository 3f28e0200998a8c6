"""``edge-snn doctor``: one screen of what this machine has for edge-snn and what to fix (torch-free)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_snn.cli import app


@app.command()
def doctor(
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the rows as JSON here ('-' for stdout only).")] = None,
) -> None:
    """Inspect Python, ONNX Runtime, TensorRT, CUDA, the Jetson module, DLA and power sensors; say what to fix.

    Exit 0 whenever the inspection ran (problems are rows, not failures).
    """
    from rich.console import Console

    from edge_snn.runtime.doctor import inspect, render, to_json
    from edge_snn.runtime.files import write_json_atomic

    rows = inspect()
    if json_out is not None and str(json_out) == "-":
        typer.echo(json.dumps(to_json(rows), indent=2))
        return
    render(rows, Console(width=160))
    if json_out is not None:
        write_json_atomic(json_out, to_json(rows))
