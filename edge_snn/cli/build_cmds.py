"""``edge-snn build``: an exported ONNX graph to a TensorRT engine for this device."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_snn.cli import app
from edge_snn.errors import UserError


@app.command()
def build(
    model: Annotated[Path, typer.Argument(help="Exported .onnx from `edge-snn export`.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Engine to write (default: MODEL with .engine); its sidecar is ENGINE.json.")] = None,
    target: Annotated[Optional[str], typer.Option("--target", help="Target profile (e.g. orin-nx-16gb) whose defaults pick the precision.")] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help="FP16 kernels.")] = False,
    int8: Annotated[bool, typer.Option("--int8", help="INT8 from the graph's Q/DQ scales (quantized exports only).")] = False,
    best: Annotated[bool, typer.Option("--best", help="FP16, plus INT8 where the graph is quantized.")] = False,
    dla_core: Annotated[Optional[int], typer.Option("--dla-core", help="Run on this DLA core (AGX Orin / Orin NX).")] = None,
    gpu_fallback: Annotated[bool, typer.Option("--gpu-fallback/--no-gpu-fallback", help="Let layers DLA cannot run fall back to the GPU.")] = True,
    workspace_mb: Annotated[int, typer.Option("--workspace-mb", help="TensorRT scratch memory limit, MiB.")] = 1024,
    timing_cache: Annotated[Optional[Path], typer.Option("--timing-cache", help="Timing cache file (default: .edge-snn-timing.cache next to the engine).")] = None,
) -> None:
    """Build a TensorRT engine (default FP32, or the --target's precision) and its sidecar."""
    from edge_snn.runtime.backends.trt.build import build_engine, target_build_defaults

    chosen = [name for name, on in (("fp16", fp16), ("int8", int8), ("best", best)) if on]
    if len(chosen) > 1:
        raise UserError(f"pick one of --fp16, --int8, --best (got {', '.join('--' + c for c in chosen)})")
    precision, target_dla = "fp32", None
    if target:
        from edge_snn.targets import load_target

        precision, target_dla = target_build_defaults(load_target(target))
    precision = chosen[0] if chosen else precision
    dla_core = dla_core if dla_core is not None else target_dla
    engine = output or model.with_suffix(".engine")
    sidecar = build_engine(model, engine, precision=precision, dla_core=dla_core, gpu_fallback=gpu_fallback,
                           timing_cache=timing_cache, workspace_mb=workspace_mb)
    where = f"DLA core {dla_core}" if dla_core is not None else "GPU"
    typer.echo(f"wrote {engine} ({precision} on {where}, {sidecar['gpu']['name']}, TensorRT {sidecar['tensorrt_version']}, "
               f"{sidecar['build_seconds']:.1f} s) and {engine}.json")
