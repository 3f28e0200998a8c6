"""``edge-snn bench`` and ``edge-snn report``: thin wrappers over :mod:`edge_snn.runtime.bench` and :mod:`edge_snn.report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_snn.cli import app


@app.command()
def bench(
    model: Annotated[Path, typer.Argument(help="Exported .onnx (or TensorRT .engine).")],
    backend: Annotated[str, typer.Option(help="auto, onnxruntime or tensorrt.")] = "auto",
    providers: Annotated[Optional[str], typer.Option(help="Comma-separated ONNX Runtime providers (default: best available).")] = None,
    batch: Annotated[Optional[int], typer.Option(help="Expected batch; must equal the exported batch (re-export to change it).")] = None,
    iters: Annotated[int, typer.Option(help="Timed frames.")] = 50,
    warmup: Annotated[int, typer.Option(help="Untimed frames run first.")] = 5,
    threads: Annotated[int, typer.Option(help="ONNX Runtime intra-op threads (0: one per core).")] = 0,
    target: Annotated[Optional[str], typer.Option(help="Target profile (e.g. orin-nx-16gb) for the roofline floor.")] = None,
    sensor: Annotated[Optional[str], typer.Option(help="Power sensor: jetson, tegrastats, nvml, rapl or none (default: best present).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic input and its Poisson code.")] = 0,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the result here (input of edge-snn report).")] = None,
) -> None:
    """Latency, throughput, memory, spike rates and energy of an exported model (no torch needed)."""
    from edge_snn.runtime.bench import bench_model, format_result
    from edge_snn.runtime.files import write_json_atomic

    result = bench_model(model, backend=backend, providers=providers.split(",") if providers else None, iters=iters,
                         warmup=warmup, target=target, batch=batch, threads=threads, seed=seed, sensor=sensor)
    typer.echo(format_result(result))
    if json_out:
        write_json_atomic(json_out, result)
        typer.echo(f"wrote {json_out}")


@app.command()
def report(
    results: Annotated[list[Path], typer.Argument(help="Result JSON files from edge-snn bench --json or benchmarks/.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the PNG plots and report.md.")] = Path("runs/report"),
) -> None:
    """Plots (latency vs T, energy per frame, spike rates, accuracy vs T) and a markdown summary."""
    from edge_snn.report import make_report

    written = make_report(results, out)
    typer.echo(f"wrote {written['markdown']} and {len(written['plots'])} plot(s) from {written['runs']} run(s)")
    for name, why in written["skipped"].items():
        typer.echo(f"  skipped {name}: {why}")
