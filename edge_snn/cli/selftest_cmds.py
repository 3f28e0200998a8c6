"""``edge-snn selftest``: the shipped tiny model through every backend present; a JSON + markdown report (torch-free)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_snn.cli import app


@app.command()
def selftest(
    target: Annotated[Optional[str], typer.Option("--target", "-t", help="Also check the fixture statically for this profile (e.g. agx-orin-64gb).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for selftest.json, selftest.md and the engines built.")] = Path("runs/selftest"),
    seconds: Annotated[float, typer.Option(help="Seconds of latency (and power) measurement per passing case; 0 skips it.")] = 2.0,
    sensor: Annotated[Optional[str], typer.Option(help="Power sensor: jetson, tegrastats, nvml, rapl or none (default: best present).")] = None,
) -> None:
    """Run the packaged model on ONNX Runtime (CPU and every GPU provider) and TensorRT (FP16, INT8); exit 1 on a failure."""
    from edge_snn.runtime.selftest import run_selftest

    report = run_selftest(out, target=target, seconds=seconds, sensor=sensor)
    for case in report["cases"]:
        note = f"  ({case['reason']})" if case["reason"] else ""
        typer.echo(f"{case['status']:<8} {case['name']}{note}")
    s = report["summary"]
    typer.echo(f"{s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped; report in {out / 'selftest.md'}")
    if not report["passed"]:
        raise typer.Exit(1)
