"""``edge-snn export``, ``run`` and ``parity``: from checkpoint to graph to frames on the device."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_snn.cli import app


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint (.pt) from edge-snn train / quantize / import-checkpoint.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="ONNX file to write.")] = Path("model.onnx"),
    timesteps: Annotated[int, typer.Option("--timesteps", "-T", help="Steps per call; 1 gives the streaming step graph.")] = 20,
    layout: Annotated[str, typer.Option(help="time-major (step function unrolled) or layer-major (convs batched over time).")] = "time-major",
    batch: Annotated[int, typer.Option(help="Static batch size.")] = 1,
    height: Annotated[Optional[int], typer.Option(help="Input height (default: the training size).")] = None,
    width: Annotated[Optional[int], typer.Option(help="Input width (default: the training size).")] = None,
    bn_beyond: Annotated[str, typer.Option(help="Steps past the trained T: error, last or cycle (see docs/onnx-contract.md).")] = "error",
    dla: Annotated[bool, typer.Option("--dla", help="DLA-resident form: one frame per call, DLA-native layers only, no spike counts; a quantized checkpoint also gets MODEL.calib.cache (docs/dla.md).")] = False,
) -> None:
    """Export an ONNX graph whose membrane state is an explicit input and output."""
    from edge_snn.export.exporter import ExportOptions, export_checkpoint

    summary = export_checkpoint(checkpoint, output, ExportOptions(
        timesteps=timesteps, layout=layout, batch=batch, height=height, width=width, bn_beyond=bn_beyond, dla=dla))
    typer.echo(f"wrote {summary['path']}: {summary['layout']}, T={summary['timesteps']}, "
               f"{summary['nodes']} nodes, {summary['bytes'] / 1e6:.2f} MB"
               + (f", form {summary['form']}" if dla else "")
               + (f"; INT8 scales of {summary['int8_tensors']} tensors in {summary['calibration_cache']}"
                  if "calibration_cache" in summary else ""))


@app.command()
def run(
    model: Annotated[Path, typer.Argument(help="Exported .onnx (or TensorRT .engine).")],
    input: Annotated[Path, typer.Option("--input", "-i", help="An image / .npy event file, or a folder of them.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for masks, overlays and run.json.")] = Path("runs/masks"),
    backend: Annotated[str, typer.Option(help="auto, onnxruntime or tensorrt.")] = "auto",
    providers: Annotated[Optional[str], typer.Option(help="Comma-separated ONNX Runtime providers (default: best available).")] = None,
    seed: Annotated[int, typer.Option(help="Poisson encoder seed.")] = 0,
    resize: Annotated[bool, typer.Option("--resize", help="Resize images to the model's input size.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Segment images or event frames with an exported model (no torch needed)."""
    from edge_snn.runtime.batch_run import run_files

    summary = run_files(model, input, out, backend=backend, providers=providers.split(",") if providers else None,
                        seed=seed, resize=resize, progress=not quiet)
    lat = summary["latency_ms"]
    typer.echo(f"{summary['frames']} frames with {summary['backend']} {summary['providers'] or ''}: "
               f"latency mean {lat['mean']:.2f} ms, p50 {lat['p50']:.2f} ms, max {lat['max']:.2f} ms; masks in {out}")


@app.command()
def parity(
    checkpoint: Annotated[Path, typer.Argument(help="The checkpoint the model was exported from.")],
    model: Annotated[Path, typer.Argument(help="The exported .onnx.")],
    frames: Annotated[int, typer.Option(help="Held-out scenes to compare.")] = 8,
    seed: Annotated[int, typer.Option(help="Poisson encoder seed (same for both paths).")] = 0,
    teacher_forced: Annotated[bool, typer.Option("--teacher-forced/--no-teacher-forced", help="Also compare layers fed with the reference's spikes.")] = True,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the report here.")] = None,
) -> None:
    """Compare the PyTorch reference with ONNX Runtime on identical spikes; exit 1 past tolerance."""
    from edge_snn.parity import format_report, run_parity
    from edge_snn.runtime.files import write_json_atomic

    report = run_parity(checkpoint, model, frames=frames, seed=seed, teacher_forced=teacher_forced)
    typer.echo(format_report(report))
    if json_out:
        write_json_atomic(json_out, report)
    if not report["passed"]:
        raise typer.Exit(1)
