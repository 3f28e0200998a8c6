"""The sparse backend's sections of ``bench_deeplab.py``: its variants, ceiling, parity, threads and rate sweep.

Kept apart from the dense benchmark so each file has one job; everything here
is timed with the same round-robin ``time_interleaved`` as the dense variants.

- (f) sparse, the fp32 time-major file of (c); (g) sparse on the INT8 QDQ file of (e)
  (integer adds). Same timed region as the ORT variants (``frame_runner``).
- ceiling ``sparse_event``: the event kernel alone (lists + accumulation, no
  executor) on the dense ceiling's conv (3x3, 256->256, 64x64) at 20% spikes,
  in synaptic operations (adds) per second.
- useful-work roofline of the sparse path: the synaptic operations the measured
  inputs *need* (every nonzero input x kernel taps on the map x output channels;
  for layers that ran dense, input rate x MACs), per p50 frame, against that ceiling.
- dense-equivalent rate: the dense roofline work (34.1 GFLOP/frame) per p50 frame
  against ORT's dense ceiling; above 100% means the sparse path beats any dense
  backend on this machine.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from edge_snn.runtime import Session
from edge_snn.runtime import contract as C
from edge_snn.runtime.backends import make_runner
from edge_snn.runtime.bench import frame_runner, open_session, time_interleaved

SPARSE_KEYS = ("f", "g")
GOAL_SPARSE_SPEEDUP = 3.0
RATE_TARGETS = (0.01, 0.03, 0.10, 0.30)


def log(msg: str) -> None:
    print(msg, flush=True)


def open_sparse(paths: dict, threads: int) -> dict:
    """(f) on (c)'s file, (g) on (e)'s file when it exists: {key: Session}."""
    sessions = {"f": open_session(paths["c"], backend="sparse", threads=threads)}
    if "e" in paths:
        sessions["g"] = open_session(paths["e"], backend="sparse", threads=threads)
    return sessions


def sparse_ceiling_runner(roof_conv, threads: int):
    """(runner for time_interleaved, synaptic ops per run) of the bare event kernel on the ceiling conv at 20% spikes."""
    import numba

    from edge_snn.runtime.backends.sparse import event_conv as E

    b, c, h, w, k = roof_conv
    rng = np.random.default_rng(1)
    x = (rng.random((1, c, h, w)) < 0.2).astype(np.float32)
    weight = rng.standard_normal((k, c, 3, 3)).astype(np.float32)
    packed = E.pack_weights(weight)
    grid = (h + 2, w + 2)
    starts = np.zeros((1, grid[0] * grid[1] + 1), np.int64)
    idx, vals = np.empty(x.size, np.int32), np.empty(x.size, np.float32)
    not_one = np.empty(1, np.int64)
    out = np.empty((1, k, h, w), np.float32)
    scale, bias = np.ones(k), np.zeros(k)
    unit = np.ones(1, np.bool_)

    def run(_):
        numba.set_num_threads(threads or numba.config.NUMBA_NUM_THREADS)
        addresses = np.array([x.ctypes.data], np.int64)  # read in place: x must outlive the call, so the closure holds it
        E.build_lists(addresses, c, h, w, 1, 1, grid[0], grid[1], starts, idx, vals, not_one)
        return E.event_conv(starts, idx, vals, unit, packed, c, 3, 3, grid[1], 1, 1, 1, 1, scale, bias, np.float32, out)

    events = run(None)
    return (run, [None]), float(events * k)


def work_per_frame(session) -> dict:
    """The runner's work stats divided by the frames they cover (warm-up and timed frames alike)."""
    stats = session.runner.work_stats()
    calls_per_frame = session.contract.frame_steps // session.contract.timesteps
    frames = max(stats["calls"] // calls_per_frame, 1)
    per = {k: stats[k] / frames for k in ("synaptic_ops", "dense_macs", "needed_ops", "seconds")}
    per["layers"] = [{**x, **{k: x[k] / frames for k in ("synaptic_ops", "dense_macs", "needed_ops", "seconds")}}
                     for x in stats["layers"]]
    return {"frames": frames, "crossover": stats["crossover"], "threads": stats["threads"], **per}


def paired_ratio(base_ms, key_ms) -> tuple[float, float, float] | None:
    """(median, min, max) of ``base / key`` over the rounds both ran, or None without rounds.

    Both variants of a round ran within seconds of each other, so a change of
    the machine's speed between rounds (10-20% here) cancels in their ratio; the
    ratio of the two p50s does not cancel it.
    """
    n = min(len(base_ms or []), len(key_ms or []))
    if n == 0:
        return None
    ratios = np.asarray(base_ms[:n], np.float64) / np.asarray(key_ms[:n], np.float64)
    return float(np.median(ratios)), float(ratios.min()), float(ratios.max())


def sparse_lines(runs: dict, ceilings: dict, dense_work: float) -> list[str]:
    """The ratio lines, the work table and the useful-work roofline of (f)/(g)."""
    lines = []
    for key, base in (("f", "c"), ("g", "e"), ("g", "c")):
        if key not in runs or base not in runs:
            continue
        ratio = runs[base]["latency_ms"]["p50"] / runs[key]["latency_ms"]["p50"]
        goal = f" (goal >= {GOAL_SPARSE_SPEEDUP:.0f}x): {'met' if ratio >= GOAL_SPARSE_SPEEDUP else 'MISSED'}" if (key, base) == ("f", "c") else ""
        paired = paired_ratio(runs[base].get("rounds_ms"), runs[key].get("rounds_ms"))
        within = f"; within a round: median {paired[0]:.2f}x, range {paired[1]:.2f}-{paired[2]:.2f}x" if paired else ""
        lines.append(f"{runs[key]['name']} vs {runs[base]['name']}: {ratio:.2f}x faster{goal}{within}")
    for key in SPARSE_KEYS:
        if key not in runs:
            continue
        run, work = runs[key], runs[key]["work"]
        p50 = run["latency_ms"]["p50"] / 1e3
        ceiling = ceilings["sparse_event"]
        useful = work["needed_ops"] / p50
        run["sparse_roofline"] = {"needed_ops_per_frame": work["needed_ops"], "ceiling": "sparse_event",
                                  "ceiling_ops_per_s": ceiling, "fraction": useful / ceiling,
                                  "dense_equivalent_fraction": dense_work / p50 / ceilings["ort_fp32"]}
        lines.append(f"{run['name']}: needs {work['needed_ops'] / 1e9:.2f} G synaptic ops/frame "
                     f"({work['needed_ops'] / (dense_work / 2):.1%} of the dense MACs); did {work['synaptic_ops'] / 1e9:.2f} G "
                     f"event ops + {work['dense_macs'] / 1e9:.2f} G dense MACs; useful work {useful / 1e9:.1f} G ops/s = "
                     f"{useful / ceiling:.0%} of the event-kernel ceiling ({ceiling / 1e9:.1f} G adds/s); "
                     f"dense-equivalent {dense_work / p50 / 1e9:.0f} GFLOP/s = "
                     f"{dense_work / p50 / ceilings['ort_fp32']:.0%} of ORT's dense ceiling")
        lines.append(f"  per layer ({work['frames']} frames, crossover {work['crossover']:.2f}): layer rate mode "
                     "event-ops dense-MACs ms/frame")
        for x in work["layers"]:
            rate = "-" if x["input_rate"] is None else f"{x['input_rate']:.3f}"
            lines.append(f"    {x['name']:<11}{rate:>7} {x['mode'] or '-':<6}{x['synaptic_ops'] / 1e6:>9.1f}M"
                         f"{x['dense_macs'] / 1e6:>9.1f}M{x['seconds'] * 1e3:>8.1f}")
        convs = work["seconds"] * 1e3
        lines.append(f"    convolutions {convs:.0f} ms of {p50 * 1e3:.0f} ms; the rest: fused BN/LIF chains, pooling, "
                     "step lookups, resize")
    return lines


def parity_lines(path: Path, frame: np.ndarray, threads: int) -> tuple[dict, list[str]]:
    """Sparse vs ONNX Runtime on one frame of the same file: class maps, spikes per layer, free-running and teacher-forced.

    Teacher-forced, both backends read ONNX Runtime's free-running spikes, so a
    layer's disagreement is its own rounding only.
    """
    from edge_snn.parity import run_with_spikes, spike_graphs
    from edge_snn.runtime.model_file import contract_of, load_onnx_file

    proto = load_onnx_file(path, load_weights=True)
    contract = contract_of(proto, str(path))
    free, forced = {}, {}
    with spike_graphs(proto, contract) as (free_path, teacher_path):
        for backend in ("onnxruntime", "sparse"):
            with open_session(free_path, backend=backend, threads=threads) as session:
                free[backend] = run_with_spikes(session.runner, contract, frame)
        for backend in ("onnxruntime", "sparse"):  # runners: the rewired graph has inputs its metadata does not list
            with make_runner(teacher_path, backend, threads=threads) as runner:
                forced[backend] = run_with_spikes(runner, contract, frame, teacher=free["onnxruntime"][1])[1]
    (o_ort, s_ort), (o_sp, s_sp) = free["onnxruntime"], free["sparse"]

    def agreement(a: dict, b: dict) -> dict:
        return {layer: float(np.mean([np.mean(x == y) for x, y in zip(a[layer], b[layer])])) for layer in a}

    classes = float(np.mean(o_ort[C.LOGITS].argmax(1) == o_sp[C.LOGITS].argmax(1)))
    free_agree, forced_agree = agreement(s_ort, s_sp), agreement(forced["onnxruntime"], forced["sparse"])
    doc = {"class_map_agreement": classes, "spike_agreement_free_running": free_agree,
           "spike_agreement_teacher_forced": forced_agree,
           "max_logit_difference": float(np.abs(o_ort[C.LOGITS] - o_sp[C.LOGITS]).max())}
    lines = [f"sparse (f) vs ORT (c), one frame of the same file: class maps agree {classes:.2%}, max |logit diff| "
             f"{doc['max_logit_difference']:.2e}",
             "  spike agreement per layer, free-running (flips cascade): " + ", ".join(f"{k} {v:.5f}" for k, v in free_agree.items()),
             "  teacher-forced (every layer reads ORT's input spikes: its own rounding only): "
             + ", ".join(f"{k} {v:.6f}" for k, v in forced_agree.items())]
    return doc, lines


def threads_lines(path: Path, frames: list, iters: int, warmup: int) -> tuple[list[dict], list[str]]:
    """ORT (c) and sparse (f) at 1 and 2 threads, interleaved."""
    import os

    counts = [t for t in (1, 2) if t <= (os.cpu_count() or 1)]
    sessions = {(b, t): open_session(path, backend=b, threads=t) for b in ("onnxruntime", "sparse") for t in counts}
    results = time_interleaved({k: (frame_runner(s), frames) for k, s in sessions.items()}, iters=iters, warmup=warmup)
    for s in sessions.values():
        s.close()
    p50 = {k: float(np.median(v[0])) * 1e3 for k, v in results.items()}
    rows = [{"backend": b, "threads": t, "p50_ms": p50[(b, t)]} for (b, t) in p50]
    lines = ["threads (interleaved, p50 ms): " + ", ".join(f"{b} {t}t {p50[(b, t)]:.0f}" for (b, t) in p50)]
    for t in counts:
        paired = paired_ratio(results[("onnxruntime", t)][0], results[("sparse", t)][0])
        lines.append(f"  {t} thread(s): sparse {p50[('onnxruntime', t)] / p50[('sparse', t)]:.2f}x faster than ORT "
                     f"(within a round: median {paired[0]:.2f}x, range {paired[1]:.2f}-{paired[2]:.2f}x)")
    return rows, lines


def _crossover(points: list[tuple[float, float]]) -> float | None:
    """Input rate where event time / dense time crosses 1 (log-linear interpolation), from (rate, ratio) points."""
    points = sorted(p for p in points if p[0] > 0)
    for (r0, q0), (r1, q1) in zip(points, points[1:]):
        if q0 < 1.0 <= q1:
            f = (np.log(1.0) - np.log(q0)) / (np.log(q1) - np.log(q0))
            return float(np.exp(np.log(r0) + f * (np.log(r1) - np.log(r0))))
    return None


def calibrate_to_rate(model, calib, target: float, *, steps: int = 8, iters: int = 3) -> dict[str, float]:
    """Scale each layer's BN (gamma, hence the folded scale and shift) until it fires at ~``target``, layer by layer.

    A layer's rate depends only on the layers before it, so fixing them in order
    converges where a joint update oscillates (it kills the deep layers at 1%).
    Iterations run on the first ``steps`` steps of ``calib``; the rates returned
    are measured over all of it.
    """
    import torch

    def rates(x):
        with torch.no_grad():
            result = model.run(x, layout="layer-major")
        shapes = model.state_spec(x.shape[1], x.shape[-2], x.shape[-1])
        return {n: result.spike_counts[n].item() / (np.prod(shapes[n]) * x.shape[0]) for n in model.spiking_layers}

    short = calib[:steps]
    for name in model.spiking_layers:
        for _ in range(iters):
            rate = rates(short)[name]
            factor = 2.0 if rate == 0 else float(np.clip((target / rate) ** 0.7, 0.25, 4.0))
            if abs(factor - 1.0) < 0.05:
                break
            for bn in model.norms[name].steps:
                bn.weight.data.mul_(factor)
    return rates(calib)


def rate_sweep(model, calib, frames, tmp: Path, args, *, export, steps: int) -> tuple[list[dict], list[str], dict]:
    """Latency against spike rate: BN rescaled so every layer fires at ~1, 3, 10, 30%; ORT vs sparse (auto, event, dense).

    Per conv layer, event time / dense time against the layer's measured input rate
    gives the crossover rate at which dense starts to win.
    """
    rows, lines, per_layer = [], [], {}
    for target in RATE_TARGETS:
        m = copy.deepcopy(model)
        rates = calibrate_to_rate(m, calib, target)
        path = export(m, tmp / f"rate{int(target * 100)}.onnx", steps=steps, layout="time-major")
        sessions = {"ort": open_session(path, threads=args.threads)}
        for mode in ("auto", "event", "dense"):
            sessions[mode] = Session(path, backend="sparse", threads=args.threads, mode=mode)
        for s in list(sessions.values())[1:]:
            s.runner.reset_work_stats()
        results = time_interleaved({k: (frame_runner(s), frames) for k, s in sessions.items()}, iters=max(3, args.iters // 2),
                                   warmup=1, budget_s=args.budget_s)
        p50 = {k: float(np.median(v[0])) * 1e3 for k, v in results.items()}
        work = {k: work_per_frame(sessions[k]) for k in ("auto", "event", "dense")}
        for s in sessions.values():
            s.close()
        measured = float(np.mean(list(rates.values())))
        for ev, de in zip(work["event"]["layers"], work["dense"]["layers"]):
            if ev["input_rate"] and de["seconds"] > 0:
                per_layer.setdefault(ev["name"], []).append((ev["input_rate"], ev["seconds"] / de["seconds"]))
        rows.append({"target_rate": target, "measured_rates": rates, "p50_ms": p50,
                     "needed_ops": work["event"]["needed_ops"], "layers_event": work["event"]["layers"],
                     "layers_dense": work["dense"]["layers"]})
        lines.append(f"  rate {target:>4.0%} (measured mean {measured:.3f}): ORT {p50['ort']:.0f} ms, sparse auto {p50['auto']:.0f} "
                     f"({p50['ort'] / p50['auto']:.2f}x), all-event {p50['event']:.0f} ({p50['ort'] / p50['event']:.2f}x), "
                     f"all-dense {p50['dense']:.0f} ms; needed {work['event']['needed_ops'] / 1e9:.2f} G ops/frame")
        log(lines[-1])
    crossover = {name: _crossover(points) for name, points in per_layer.items()}
    found = [v for v in crossover.values() if v is not None]
    lines.insert(0, "spike-rate sweep (BN rescaled; time-major fp32, interleaved per rate):")
    lines.append("  crossover input rate per conv layer (event time = dense time): " + ", ".join(
        f"{k} {'-' if v is None else f'{v:.2f}'}" for k, v in crossover.items()))
    if found:
        lines.append(f"  median crossover {np.median(found):.2f} (the backend's default crossover: "
                     f"{work['auto']['crossover']:.2f})")
    return rows, lines, {"per_layer": crossover, "points": per_layer,
                         "median": float(np.median(found)) if found else None}
