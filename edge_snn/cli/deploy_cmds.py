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
) -> None:
    """Export an ONNX graph whose membrane state is an explicit input and output."""
    from edge_snn.export.exporter import ExportOptions, export_checkpoint

    summary = export_checkpoint(checkpoint, output, ExportOptions(
        timesteps=timesteps, layout=layout, batch=batch, height=height, width=width, bn_beyond=bn_beyond))
    typer.echo(f"wrote {summary['path']}: {summary['layout']}, T={summary['timesteps']}, "
               f"{summary['nodes']} nodes, {summary['bytes'] / 1e6:.2f} MB")


@app.command()
def run(
    model: Annotated[Path, typer.Argument(help="Exported .onnx (or TensorRT .engine).")],
    input: Annotated[Path, typer.Option("--input", "-i", help="An image / .npy event-frame file or a folder of them, or an event recording (DSEC events.h5, .aedat4, .npz/.npy with x, y, t, p).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for masks, overlays and run.json.")] = Path("runs/masks"),
    backend: Annotated[str, typer.Option(help="auto, onnxruntime or tensorrt.")] = "auto",
    providers: Annotated[Optional[str], typer.Option(help="Comma-separated ONNX Runtime providers (default: best available).")] = None,
    seed: Annotated[int, typer.Option(help="Poisson encoder seed.")] = 0,
    resize: Annotated[bool, typer.Option("--resize", help="Resize images to the model's input size; for a recording, scale its sensor to the model's.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    window_ms: Annotated[Optional[float], typer.Option("--window-ms", help="Recording: window length in ms (default: the model's, from its binning).")] = None,
    start: Annotated[float, typer.Option(help="Recording: start this many seconds after its first event.")] = 0.0,
    duration: Annotated[Optional[float], typer.Option(help="Recording: run this many seconds (default: to the end).")] = None,
    carry_state: Annotated[bool, typer.Option("--carry-state", help="Recording: stream the membrane across windows (models exported with --bn-beyond last|cycle).")] = False,
    crop: Annotated[Optional[str], typer.Option(help="Recording: take the model's sensor size out of a larger sensor at TOP,LEFT (or 'center').")] = None,
    video: Annotated[str, typer.Option(help="Recording: overlay video format: auto (mp4 if available, else gif), mp4, gif or none.")] = "auto",
) -> None:
    """Segment images, event frames or an event recording with an exported model (no torch needed)."""
    from edge_snn.runtime.events.readers import is_recording

    if is_recording(input):
        _run_recording(model, input, out, backend=backend, providers=providers, resize=resize, quiet=quiet,
                       window_ms=window_ms, start=start, duration=duration, carry_state=carry_state, crop=crop,
                       video=video)
        return
    from edge_snn.runtime.batch_run import run_files

    summary = run_files(model, input, out, backend=backend, providers=providers.split(",") if providers else None,
                        seed=seed, resize=resize, progress=not quiet)
    lat = summary["latency_ms"]
    typer.echo(f"{summary['frames']} frames with {summary['backend']} {summary['providers'] or ''}: "
               f"latency mean {lat['mean']:.2f} ms, p50 {lat['p50']:.2f} ms, max {lat['max']:.2f} ms; masks in {out}")


def _run_recording(model, recording, out, *, backend, providers, resize, quiet, window_ms, start, duration,
                   carry_state, crop, video) -> None:
    from edge_snn.runtime.events.run import run_recording
    from edge_snn.runtime.events.windows import parse_crop

    summary = run_recording(model, recording, out, window_ms=window_ms, start_s=start, duration_s=duration,
                            carry_state=carry_state, crop=parse_crop(crop) if crop else None, resize=resize,
                            video=video, backend=backend, providers=providers.split(",") if providers else None,
                            progress=not quiet)
    lat = summary["latency_ms"]
    typer.echo(f"{summary['windows']} windows of {summary['window_ms']:g} ms with {summary['backend']}: latency "
               f"mean {lat['mean']:.2f} ms, max {lat['max']:.2f} ms; masks and run.json in {out}"
               + (f", video {summary['video']}" if summary["video"] else ""))
    if summary.get("note"):
        typer.echo(f"note: {summary['note']}", err=True)


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
