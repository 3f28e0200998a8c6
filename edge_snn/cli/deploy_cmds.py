"""``edge-snn export``, ``run`` and ``parity``: from checkpoint to graph to frames on the device."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_snn.cli import app
from edge_snn.cli.options import BackendOpt, InputOpt, JsonOpt, ModelArg, ProvidersOpt, QuietOpt, ResizeOpt, SeedOpt, provider_list


@app.command()
def export(
    checkpoint: Annotated[Optional[Path], typer.Argument(help="Checkpoint (.pt) from edge-snn train / quantize / import-checkpoint (default: the best checkpoint of runs/train).", show_default=False)] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="ONNX file to write.")] = Path("model.onnx"),
    timesteps: Annotated[int, typer.Option("--timesteps", "-T", help="Steps per call; 1 gives the streaming step graph.")] = 20,
    layout: Annotated[str, typer.Option(help="time-major (step function unrolled) or layer-major (convs batched over time).")] = "time-major",
    batch: Annotated[int, typer.Option(help="Static batch size.")] = 1,
    height: Annotated[Optional[int], typer.Option(help="Input height (default: the training size).")] = None,
    width: Annotated[Optional[int], typer.Option(help="Input width (default: the training size).")] = None,
    bn_beyond: Annotated[str, typer.Option(help="Steps past the trained T: error, last or cycle (see docs/onnx-contract.md).")] = "error",
    dla: Annotated[bool, typer.Option("--dla", help="DLA-resident form: one frame per call, DLA-native layers only, no spike counts; a quantized checkpoint also gets MODEL.calib.cache (docs/dla.md).")] = False,
    int8_form: Annotated[str, typer.Option(help="Quantized checkpoints: qdq (TensorRT) or integer (ONNX Runtime CPU integer kernels).")] = "qdq",
) -> None:
    """Export an ONNX graph whose membrane state is an explicit input and output."""
    from edge_snn.export.exporter import ExportOptions, export_checkpoint
    from edge_snn.runtime.files import check_output_file

    check_output_file(output, "--output")
    if checkpoint is None:
        from edge_snn.training.trainer import default_checkpoint

        checkpoint = default_checkpoint()
        typer.echo(f"exporting {checkpoint} (the best checkpoint of the last `edge-snn train`)")
    summary = export_checkpoint(checkpoint, output, ExportOptions(
        timesteps=timesteps, layout=layout, batch=batch, height=height, width=width, bn_beyond=bn_beyond, dla=dla,
        int8_form=int8_form))
    typer.echo(f"wrote {summary['path']}: {summary['layout']}, T={summary['timesteps']}, "
               f"{summary['nodes']} nodes, {summary['bytes'] / 1e6:.2f} MB"
               + (f", form {summary['form']}" if dla else "")
               + (f"; INT8 scales of {summary['int8_tensors']} tensors in {summary['calibration_cache']}"
                  if "calibration_cache" in summary else ""))


@app.command()
def run(
    model: ModelArg,
    input: InputOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for masks, overlays and run.json.")] = Path("runs/masks"),
    backend: BackendOpt = "auto",
    providers: ProvidersOpt = None,
    seed: SeedOpt = 0,
    resize: ResizeOpt = False,
    quiet: QuietOpt = False,
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

    summary = run_files(model, input, out, backend=backend, providers=provider_list(providers),
                        seed=seed, resize=resize, progress=not quiet)
    lat = summary["latency_ms"]
    if lat:
        typer.echo(f"{summary['frames']} frames with {summary['backend']} {summary['providers'] or ''}: "
                   f"latency mean {lat['mean']:.2f} ms, p50 {lat['p50']:.2f} ms, max {lat['max']:.2f} ms; masks in {out}")
    for row in summary["per_frame"]:
        if row["status"] == "error":
            typer.echo(f"edge-snn: error: {row['error']}", err=True)
    if summary["failed"]:
        typer.echo(f"{summary['failed']} of {summary['failed'] + summary['frames']} inputs failed (listed above and "
                   f"in {out / 'run.json'})", err=True)
        raise typer.Exit(1)


def _run_recording(model, recording, out, *, backend, providers, resize, quiet, window_ms, start, duration,
                   carry_state, crop, video) -> None:
    from edge_snn.runtime.events.run import run_recording
    from edge_snn.runtime.events.windows import parse_crop

    summary = run_recording(model, recording, out, window_ms=window_ms, start_s=start, duration_s=duration,
                            carry_state=carry_state, crop=parse_crop(crop) if crop else None, resize=resize,
                            video=video, backend=backend, providers=provider_list(providers),
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
    frames: Annotated[Optional[int], typer.Option(help="Frames to compare (default: 8 held-out scenes, or every --input file).")] = None,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="Your own frames: a file or folder of what `edge-snn run` accepts.")] = None,
    resize: ResizeOpt = False,
    backend: BackendOpt = "onnxruntime",
    seed: SeedOpt = 0,
    json_out: JsonOpt = None,
) -> None:
    """Compare the PyTorch reference with the runtime on identical spikes; exit 1 past tolerance.

    The verdict: teacher-forced spike agreement per layer and logit error (the
    graph's own arithmetic), class maps and mIoU, with the tolerance of the
    graph's precision (docs/onnx-contract.md, "Parity").
    """
    from edge_snn.parity import format_report, run_parity
    from edge_snn.runtime.files import check_output_file, write_json_atomic

    if json_out:
        check_output_file(json_out, "--json")
    report = run_parity(checkpoint, model, frames=frames if frames is not None or input else 8, seed=seed,
                        inputs=input, resize=resize, backend=backend)
    typer.echo(format_report(report))
    if json_out:
        write_json_atomic(json_out, report)
    if not report["passed"]:
        raise typer.Exit(1)
