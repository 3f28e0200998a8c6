"""``edge-snn targets list|show|estimate`` and ``edge-snn check``: device profiles and readiness.

Thin wrappers over :mod:`edge_snn.targets`; they parse options, call one
library function and print its report. ``check`` exits 1 when the report has
errors, 0 otherwise; bad input (unknown target, a file that is not ONNX) is a
UserError, exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_snn.cli import app
from edge_snn.cli.options import TargetOpt

targets_app = typer.Typer(name="targets", help="Device target profiles and roofline estimates.",
                          no_args_is_help=True)
app.add_typer(targets_app, name="targets")

ModelArg = Annotated[Path, typer.Argument(help="Exported .onnx file.", show_default=False)]
PrecisionOpt = Annotated[Optional[str], typer.Option(help="int8, fp16 or fp32; default: the target's precision.",
                                                     show_default=False)]


@targets_app.command("list")
def list_cmd() -> None:
    """List the shipped device profiles."""
    from edge_snn.targets import list_targets

    for t in list_targets():
        typer.echo(f"{t.name:<16} {t.description}")


@targets_app.command("show")
def show_cmd(name: Annotated[str, typer.Argument(help="Profile name or path of a profile .toml.")]) -> None:
    """Print one profile: stack, peaks, memory, power modes, build defaults."""
    from edge_snn.targets import load_target

    t = load_target(name)
    stack = ", ".join(f"{k} {v}" for k, v in (("JetPack", t.jetpack), ("TensorRT", t.tensorrt),
                                              ("Python", t.python)) if v)
    lines = [f"{t.name}: {t.description}", f"  kind:       {t.kind}", f"  stack:      {stack}"]
    for engine, peak in (("gpu", t.gpu), ("cpu", t.cpu)):
        if peak is not None:
            lines.append(f"  {engine}:        {peak.int8_dense_tops:g} INT8 TOPS, {peak.fp16_dense_tflops:g} FP16 "
                         f"TFLOPS, {peak.fp32_tflops:g} FP32 TFLOPS (dense peaks)")
    if t.dla.cores:
        fp16 = t.dla.fp16_dense_tflops_per_core
        fp16 = "FP16 rate unpublished" if fp16 is None else f"{fp16:g} FP16 TFLOPS"
        lines.append(f"  dla:        {t.dla.cores} cores x ({t.dla.int8_dense_tops_per_core:g} INT8 TOPS, {fp16})")
    lines.append(f"  memory:     {t.memory.bytes / 2**30:g} GiB at {t.memory.bandwidth_gbps:g} GB/s")
    if t.power_modes:
        modes = ", ".join(f"{m.id}={m.name} ({m.watts:g} W)" for m in t.power_modes)
        lines.append(f"  power:      {modes}")
    d = t.defaults
    lines.append(f"  defaults:   {d.backend}, {d.precision}, flags [{' '.join(d.build_flags)}], "
                 f"providers [{', '.join(d.providers)}]")
    lines.append(f"  file:       {t.path}")
    typer.echo("\n".join(lines))


@targets_app.command("estimate")
def estimate_cmd(model: ModelArg, target: TargetOpt, precision: PrecisionOpt = None,
                 dla: Annotated[bool, typer.Option("--dla", help="Estimate for one DLA core instead of the GPU.")]
                 = False) -> None:
    """Roofline floor of one call of MODEL on a target (compute vs memory bound)."""
    from edge_snn.targets import estimate_floor, load_target

    result = estimate_floor(model, load_target(target), precision, engine="dla" if dla else None)
    typer.echo(result.format())


@app.command("check")
def check_cmd(model: ModelArg, target: TargetOpt, precision: PrecisionOpt = None,
              dla_core: Annotated[Optional[int], typer.Option("--dla-core", help="Also predict which nodes fall "
                                                              "back from this DLA core to the GPU.")] = None,
              strict_dla: Annotated[bool, typer.Option("--strict-dla", help="Treat DLA fallbacks as errors "
                                                       "(implies --dla-core 0 if none given).")] = False) -> None:
    """Static TensorRT/DLA readiness check of MODEL for a target; exit 1 on errors."""
    from edge_snn.targets import check_model, load_target

    report = check_model(model, load_target(target), precision=precision, dla_core=dla_core, strict_dla=strict_dla)
    typer.echo(report.format())
    if not report.ok:
        raise typer.Exit(1)
