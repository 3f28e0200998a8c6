"""Options that several commands take, declared once (same flag, same help, same default everywhere).

Each is an ``Annotated`` type for a command parameter, e.g.
``backend: BackendOpt = "auto"``. Importing this module imports nothing heavy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

ModelArg = Annotated[Path, typer.Argument(help="Exported .onnx (or TensorRT .engine).")]
BackendOpt = Annotated[str, typer.Option(help="auto (TensorRT for .engine, else ONNX Runtime), onnxruntime, tensorrt, "
                                              "or another backend `edge-snn doctor` lists.")]
ProvidersOpt = Annotated[Optional[str], typer.Option(help="Comma-separated ONNX Runtime providers (default: best available).")]
SeedOpt = Annotated[int, typer.Option(help="Poisson encoder seed.")]
InputOpt = Annotated[Path, typer.Option("--input", "-i", help="An image / .npy event-frame file or a folder of them, or an "
                                       "event recording (DSEC events.h5, .aedat4, .npz/.npy with x, y, t, p).")]
ResizeOpt = Annotated[bool, typer.Option("--resize", help="Resize images to the model's input size; for a recording, "
                                         "scale its sensor to the model's.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]
JsonOpt = Annotated[Optional[Path], typer.Option("--json", help="Also write the result here as JSON.")]
TargetOpt = Annotated[str, typer.Option("--target", "-t", help="Device profile name (see `edge-snn targets list`) "
                                        "or path of a profile .toml.", show_default=False)]
OptionalTargetOpt = Annotated[Optional[str], typer.Option("--target", "-t", help="Device profile name (see "
                                                          "`edge-snn targets list`) or path of a profile .toml.")]


def provider_list(providers: str | None) -> list[str] | None:
    """``--providers A,B`` as a list (None: the backend's best available)."""
    return [p.strip() for p in providers.split(",") if p.strip()] if providers else None
