"""Timing one frame: warm-up first, ``time.perf_counter`` around the call only, interleaved variants.

The timed region of ``edge-snn bench`` is :data:`TIMED_REGION` (see the
package docstring of :mod:`edge_snn.runtime.bench`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

TIMED_REGION = ("graph calls for one frame (all T-step calls, state streamed between them), incl. input "
                "binding, creating and uploading the zero initial state and copying logits/spike_counts to host; "
                "excl. model load, encoding, argmax and warm-up")


def latency_stats(latencies_ms: Sequence[float]) -> dict:
    """p50, p90, p99, mean, min, max and count of latencies given in ms."""
    ms = np.asarray(latencies_ms, dtype=np.float64)
    if ms.size == 0:
        raise ValueError("no latencies to summarize")
    stats = {f"p{q}": float(np.percentile(ms, q)) for q in (50, 90, 99)}
    stats.update(mean=float(ms.mean()), min=float(ms.min()), max=float(ms.max()), n=int(ms.size))
    return stats


def latency_summary(latencies_s: Sequence[float], batch: int) -> dict:
    """Percentiles of per-frame latency [ms] and throughput [images/s] = batch / mean latency."""
    stats = latency_stats(np.asarray(latencies_s, dtype=np.float64) * 1e3)
    return {"latency_ms": stats, "throughput_fps": float(batch * 1e3 / stats["mean"])}


def time_frames(run_frame: Callable[[object], object], frames: Sequence, *, iters: int, warmup: int):
    """Run ``warmup`` untimed frames, then ``iters`` timed ones (cycling through ``frames``).

    Returns (seconds per timed frame, outputs of each timed frame). Only the
    call ``run_frame(frame)`` is inside ``perf_counter``.
    """
    for i in range(warmup):
        run_frame(frames[i % len(frames)])
    latencies, outputs = [], []
    for i in range(iters):
        frame = frames[i % len(frames)]
        start = time.perf_counter()
        out = run_frame(frame)
        latencies.append(time.perf_counter() - start)
        outputs.append(out)
    return latencies, outputs


def time_interleaved(runners: dict, *, iters: int, warmup: int, budget_s: float | None = None,
                     min_iters: int = 3) -> dict:
    """Round-robin timing: ``runners[key] = (run_frame, frames)``; each round times one frame of every runner.

    On a machine whose load changes over minutes, variants timed one after the
    other see different loads; interleaved, they see the same. A runner whose
    timed frames add up to more than ``budget_s`` leaves the rounds once it has
    ``min_iters`` of them, so one slow variant cannot stretch the run.
    Returns ``{key: (seconds per frame, outputs)}``.
    """
    for i in range(warmup):
        for run, frames in runners.values():
            run(frames[i % len(frames)])
    out = {key: ([], []) for key in runners}
    for i in range(iters):
        for key, (run, frames) in runners.items():
            latencies, outputs = out[key]
            if budget_s is not None and len(latencies) >= min_iters and sum(latencies) > budget_s:
                continue
            start = time.perf_counter()
            result = run(frames[i % len(frames)])
            latencies.append(time.perf_counter() - start)
            outputs.append(result)
    return out
