"""``edge-snn bench``: latency, throughput, memory, spike rates and energy of an exported model (torch-free).

**What is timed.** One *frame* is one batched input presented for the
``timesteps_trained`` steps the model was trained with. Its latency is
``time.perf_counter()`` around :meth:`Session.run_encoded`: every graph call
the frame needs (``timesteps_trained / T`` calls, the state streamed from call
to call), including binding the already-encoded input from host memory,
creating and uploading the all-zero initial state and copying ``logits`` and
``spike_counts`` back to host memory. Outside the timed region: loading the
model, encoding (Poisson draws are made for every frame before timing starts),
the argmax to a class map, and ``warmup`` untimed frames run first. Frames are
run back to back on one thread; the backend uses its own threads inside a call.

Everything here reads plain dicts: the result of :func:`bench_model` is a JSON
document (``schema`` = :data:`RUN_SCHEMA`) that ``edge-snn report`` plots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime import contract as C
from edge_snn.runtime.bench.console import format_result
from edge_snn.runtime.bench.environment import RSS_NOTE, collect_environment, peak_rss_mib
from edge_snn.runtime.bench.frames import check_spikes, synthetic_frames
from edge_snn.runtime.bench.profile import op_breakdown
from edge_snn.runtime.bench.sections import (
    ESTIMATE_LABEL,
    energy_estimate_section,
    measure_energy,
    roofline_section,
    spike_rates,
)
from edge_snn.runtime.bench.timing import TIMED_REGION, latency_summary, time_frames, time_interleaved

RUN_SCHEMA = "edge-snn.bench-run/1"
SUITE_SCHEMA = "edge-snn.bench-suite/1"


def open_session(path, *, backend: str = "auto", providers: list[str] | None = None, threads: int = 0,
                 seed: int = 0, batch: int | None = None):
    """A :class:`Session` for benchmarking; ``batch`` (if given) must equal the exported batch."""
    from edge_snn.runtime.model_file import load_contract
    from edge_snn.runtime.session import Session

    path = str(path)
    contract = load_contract(path)
    if batch is not None and batch != contract.batch:
        raise UserError(f"{path} was exported for batch {contract.batch}, not {batch}: the batch is fixed in the "
                        f"graph; re-export with `edge-snn export CHECKPOINT --batch {batch}`")
    engine = backend == "tensorrt" or path.endswith((".engine", ".plan"))
    return Session(path, backend=backend, providers=providers, seed=seed, contract=contract,
                   **({"threads": threads} if threads and not engine else {}))


def frame_runner(session) -> Callable[[np.ndarray], dict]:
    """``run_frame(spikes) -> outputs``: one frame from a fresh state; the body of the timed region."""
    def run_frame(frame):
        outputs, _, _ = session.run_encoded(frame, session.fresh_state())
        return outputs

    return run_frame


def summarize_session(session, frames: Sequence[np.ndarray], latencies: Sequence[float], outputs: Sequence[dict], *,
                      warmup: int, threads: int = 0, sensor: str | None = None, energy_seconds: float = 2.0,
                      idle_seconds: float = 2.0, name: str | None = None, target: str | None = None,
                      rss_before: float | None = None) -> dict:
    """The result document of frames timed on ``session`` (frame i used ``frames[i % len(frames)]``).

    Adds the spike rates from ``outputs``, the energy estimate, measured energy
    (a further untimed window, see :func:`measure_energy`), memory, roofline and environment.
    """
    from edge_snn.runtime.power import open_best_meter

    contract, path = session.contract, session.path
    iters = len(latencies)
    steps = frames[0].shape[0]
    calls = steps // contract.timesteps
    used = [frames[i % len(frames)] for i in range(iters)]
    input_rate = None if contract.encoding == "direct" else float(np.mean([np.count_nonzero(f) / f.size for f in used]))
    if all(C.SPIKE_COUNTS in o for o in outputs):
        counts = np.sum([o[C.SPIKE_COUNTS] for o in outputs], axis=0, dtype=np.float64)
        elements = {s.name: int(np.prod(s.shape)) for s in contract.state}
        rates = spike_rates(dict(zip(contract.spike_layers, counts)), elements, steps, iters, input_rate)
    else:  # the DLA form has no spike_counts output
        rates = {"input_rate": input_rate, "layers": [], "note": "this graph has no spike_counts output (DLA form)"}
    meter = open_best_meter(sensor)
    try:
        measured = measure_energy(meter, frame_runner(session), frames, seconds=energy_seconds,
                                  idle_seconds=idle_seconds, batch=contract.batch)
    finally:
        meter.close()
    runner = session.runner
    providers = list(getattr(runner, "providers", []) or [])
    result = {
        "schema": RUN_SCHEMA, "name": name or Path(path).name,
        "series": " ".join(filter(None, (runner.name, _short(providers), contract.layout, contract.precision))),
        "model": {"path": path, "architecture": contract.architecture, "layout": contract.layout,
                  "timesteps_per_call": contract.timesteps, "timesteps": steps, "calls_per_frame": calls,
                  "batch": contract.batch, "input_shape": list(contract.input_shape),
                  "precision": contract.precision, "encoding": contract.encoding},
        "backend": runner.name, "providers": providers, "threads": threads or None,
        "timed_region": TIMED_REGION, "iters": iters, "warmup": warmup,
        **latency_summary(latencies, contract.batch),
        "memory": {"peak_rss_mib": peak_rss_mib(), "peak_rss_before_load_mib": rss_before, "note": RSS_NOTE},
        "spikes": rates,
        "energy_estimate": energy_estimate_section(contract.layers, rates, steps, contract.encoding),
        "energy_measured": measured,
    }
    if target:
        result["roofline"] = roofline_section(path, target, contract, calls, result["latency_ms"]["p50"])
    result["environment"] = collect_environment()
    return result


def bench_model(path, *, backend: str = "auto", providers: list[str] | None = None, iters: int = 50,
                warmup: int = 5, target: str | None = None, batch: int | None = None, threads: int = 0,
                spikes: Sequence[np.ndarray] | None = None, seed: int = 0, sensor: str | None = None,
                energy_seconds: float = 2.0, idle_seconds: float = 2.0, name: str | None = None) -> dict:
    """Benchmark one exported model; returns a JSON-ready dict (see module doc for the timed region).

    batch: the batch the caller expects; must equal the exported batch.
    threads: ONNX Runtime intra-op threads (0: its default, one per core).
    spikes: encoded frames ``[N, B, C, H, W]`` to use instead of seeded synthetic input.
    sensor: power sensor for measured energy (None: best present, "none": skip).
    energy_seconds / idle_seconds: length of the measured window and of the idle baseline before it.
    """
    if iters < 1 or warmup < 0:
        raise UserError(f"--iters must be >= 1 and --warmup >= 0, got {iters} and {warmup}")
    rss_before = peak_rss_mib()
    with open_session(path, backend=backend, providers=providers, threads=threads, seed=seed, batch=batch) as session:
        frames = (check_spikes(spikes, session.contract) if spikes is not None
                  else synthetic_frames(session, min(iters, 4), seed=seed))
        run_frame = frame_runner(session)
        for i in range(warmup):
            run_frame(frames[i % len(frames)])
        runner = session.runner
        if hasattr(runner, "reset_work_stats"):  # a work-aware backend (sparse): count the timed frames only
            runner.reset_work_stats()
        latencies, outputs = time_frames(run_frame, frames, iters=iters, warmup=0)
        work = runner.work_stats() if hasattr(runner, "work_stats") else None
        result = summarize_session(session, frames, latencies, outputs, warmup=warmup, threads=threads, sensor=sensor,
                                   energy_seconds=energy_seconds, idle_seconds=idle_seconds, name=name, target=target,
                                   rss_before=rss_before)
        if work is not None:
            result["work"] = {**work, "frames": iters}
        return result


def _short(providers: list[str]) -> str:
    return providers[0].replace("ExecutionProvider", "") if providers else ""


__all__ = ["ESTIMATE_LABEL", "RSS_NOTE", "RUN_SCHEMA", "SUITE_SCHEMA", "TIMED_REGION", "bench_model", "check_spikes",
           "collect_environment", "energy_estimate_section", "format_result", "frame_runner", "latency_summary",
           "measure_energy", "op_breakdown", "open_session", "peak_rss_mib", "roofline_section", "spike_rates",
           "summarize_session", "synthetic_frames", "time_frames", "time_interleaved"]
