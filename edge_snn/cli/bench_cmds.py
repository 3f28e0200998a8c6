"""``edge-snn bench`` and ``edge-snn report``: thin wrappers over :mod:`edge_snn.runtime.bench` and :mod:`edge_snn.report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_snn.cli import app
from edge_snn.cli.options import BackendOpt, JsonOpt, ModelArg, OptionalTargetOpt, ProvidersOpt, SeedOpt, provider_list


@app.command()
def bench(
    model: ModelArg,
    backend: BackendOpt = "auto",
    providers: ProvidersOpt = None,
    batch: Annotated[Optional[int], typer.Option(help="Expected batch; must equal the exported batch (re-export to change it).")] = None,
    iters: Annotated[int, typer.Option(help="Timed frames.")] = 50,
    warmup: Annotated[int, typer.Option(help="Untimed frames run first.")] = 5,
    threads: Annotated[int, typer.Option(help="ONNX Runtime intra-op threads (0: one per core).")] = 0,
    target: OptionalTargetOpt = None,
    sensor: Annotated[Optional[str], typer.Option(help="Power sensor: jetson, tegrastats, nvml, rapl or none (default: best present).")] = None,
    seed: SeedOpt = 0,
    json_out: JsonOpt = None,
) -> None:
    """Latency, throughput, memory, spike rates and energy of an exported model (no torch needed)."""
    from edge_snn.runtime.bench import bench_model, format_result
    from edge_snn.runtime.files import check_output_file, write_json_atomic

    if json_out:
        check_output_file(json_out, "--json")
    result = bench_model(model, backend=backend, providers=provider_list(providers), iters=iters,
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
