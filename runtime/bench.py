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

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime import contract as C
from edge_snn.runtime.energy_estimate import LayerCost, estimate_energy

RUN_SCHEMA = "edge-snn.bench-run/1"
SUITE_SCHEMA = "edge-snn.bench-suite/1"
ESTIMATE_LABEL = "estimate (45 nm, Horowitz)"

TIMED_REGION = ("graph calls for one frame (all T-step calls, state streamed between them), incl. input "
                "binding, creating and uploading the zero initial state and copying logits/spike_counts to host; "
                "excl. model load, encoding, argmax and warm-up")
RSS_NOTE = ("getrusage ru_maxrss: high-water resident set of this whole process since it started "
            "(Python, libraries, model, runtime arenas, buffers); device memory of a discrete GPU is not in it")


# --- pieces shared with benchmarks/ ------------------------------------------------
def latency_summary(latencies_s: Sequence[float], batch: int) -> dict:
    """Percentiles of per-frame latency [ms] and throughput [images/s] = batch / mean latency."""
    ms = np.asarray(latencies_s, dtype=np.float64) * 1e3
    if ms.size == 0:
        raise ValueError("no latencies to summarize")
    stats = {f"p{q}": float(np.percentile(ms, q)) for q in (50, 90, 99)}
    stats.update(mean=float(ms.mean()), min=float(ms.min()), max=float(ms.max()), n=int(ms.size))
    return {"latency_ms": stats, "throughput_fps": float(batch * 1e3 / ms.mean())}


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


def spike_rates(counts: dict[str, float], elements: dict[str, int], steps: int, frames: int,
                input_rate: float | None) -> dict:
    """Spike rate of each layer: ``count / (elements of its state [B*C*h*w] x steps x frames)``, 0..1.

    ``counts`` are spikes summed over the ``frames`` frames (each ``steps``
    steps). ``input_rate`` is the encoded input's fraction of nonzero elements
    (None for analog, direct-encoded input).
    """
    layers = []
    for name, total in counts.items():
        denom = elements[name] * steps * frames
        layers.append({"name": name, "rate": float(total) / denom if denom else 0.0,
                       "spikes_per_frame": float(total) / frames})
    return {"input_rate": input_rate, "layers": layers}


def energy_estimate_section(layers: Sequence[dict], rates: dict, timesteps: int, encoding: str) -> dict:
    """The paper's estimate per image from ``edge_snn.layers`` metadata and measured rates.

    Each conv is costed with the rate of the layer it reads (``input``); the
    first layer reads the encoded input (``rates["input_rate"]``), or does MACs
    for direct (analog) input. See :mod:`edge_snn.runtime.energy_estimate`.
    """
    if not layers:
        return {"label": ESTIMATE_LABEL, "error": "the model has no edge_snn.layers metadata; re-export it"}
    by_name = {row["name"]: row["rate"] for row in rates["layers"]}
    if rates.get("input_rate") is not None:
        by_name["input"] = rates["input_rate"]
    costs, inputs, missing = [], {}, []
    for row in layers:
        costs.append(LayerCost(row["name"], tuple(row["kernel"]), row["c_in"], row["c_out"], row["h_out"],
                               row["w_out"], row.get("groups", 1)))
        source = row.get("input", "")
        if source in by_name:
            inputs[row["name"]] = by_name[source]
        elif not (source == "input" and encoding == "direct"):
            missing.append(f"{row['name']} (reads {source or 'unknown'})")
    if missing:
        return {"label": ESTIMATE_LABEL, "error": f"no measured input spike rate for {', '.join(missing)}"}
    first = "mac" if encoding == "direct" else "spikes"
    est = estimate_energy(costs, inputs, timesteps, first_layer=first)
    return {
        "label": ESTIMATE_LABEL, "per": "image", "timesteps": est.timesteps, "first_layer": est.first_layer,
        "e_mac_pj": est.e_mac_pj, "e_ac_pj": est.e_ac_pj, "macs_per_step": est.flops,
        "snn_mj": est.snn_joules * 1e3, "ann_mj": est.ann_joules * 1e3, "ann_over_snn": est.ratio,
        "layers": [{"name": e.name, "input": row.get("input", ""), "macs": e.flops, "input_rate": e.spike_rate,
                    "snn_mj": e.snn_joules * 1e3, "ann_mj": e.ann_joules * 1e3}
                   for e, row in zip(est.layers, layers)],
    }


def peak_rss_mib() -> float:
    """``ru_maxrss`` of this process in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def _first_line(path: str, keys: tuple[str, ...]) -> str | None:
    try:
        for line in Path(path).read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in keys and value.strip():
                return value.strip()
    except OSError:
        pass
    return None


def collect_environment() -> dict:
    """Machine, CPU, GPU, Jetson power mode and library versions (versions from metadata: nothing is imported)."""
    from edge_snn.runtime.power import read_power_mode

    try:
        board = Path("/proc/device-tree/model").read_text(errors="replace").strip("\x00\n ") or None
    except OSError:
        board = None
    gpu = None
    if shutil.which("nvidia-smi"):
        try:
            done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                  capture_output=True, text=True, timeout=10, check=False)
            gpu = done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None
        except (OSError, subprocess.SubprocessError):
            gpu = None
    if gpu is None and board and "jetson" in board.lower():
        gpu = f"integrated ({board})"
    libraries = {}
    for dist in ("numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "torch", "edge-snn"):
        try:
            libraries[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    mode = read_power_mode()
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {
        "platform": platform.platform(), "machine": platform.machine(), "python": platform.python_version(),
        "cpu": _first_line("/proc/cpuinfo", ("model name", "Hardware", "Model")) or platform.processor() or None,
        "cpu_count": os.cpu_count(), "load_average_1_5_15": load, "board": board, "gpu": gpu,
        "power_mode": None if mode is None else {"name": mode.name, "id": mode.id},
        "libraries": libraries,
    }


# --- frames -----------------------------------------------------------------------
def synthetic_frames(session, count: int, *, seed: int = 0) -> list[np.ndarray]:
    """``count`` encoded frames ``[T_frame, B, C, H, W]`` of seeded random input.

    Images: uniform in the model's input range, clipped to [-1, 1] (so the
    Poisson input spike rate is about 0.5). Events: binary event frames with
    10% of the elements set.
    """
    c = session.contract
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        if c.encoding == "events":
            x = (rng.random((c.timesteps_trained, c.batch, c.channels, c.height, c.width)) < 0.1).astype(np.float32)
        else:
            lo, hi = max(c.input_range[0], -1.0), min(c.input_range[1], 1.0)
            x = rng.uniform(lo, hi, (c.batch, c.channels, c.height, c.width)).astype(np.float32)
        frames.append(session.encode(x, frame_index=i))
    return frames


def check_spikes(spikes: Sequence[np.ndarray], contract: C.ModelContract) -> list[np.ndarray]:
    out = []
    for s in spikes:
        s = np.ascontiguousarray(s, dtype=np.float32)
        if s.ndim != 5 or s.shape[1:] != tuple(contract.input_shape[1:]) or s.shape[0] % contract.timesteps:
            raise UserError(f"encoded frame of shape {s.shape} does not fit the graph input {contract.input_shape}: "
                            f"pass [N, {', '.join(map(str, contract.input_shape[1:]))}] with N a multiple of "
                            f"{contract.timesteps}")
        out.append(s)
    if len({s.shape[0] for s in out}) != 1:
        raise UserError("all encoded frames must have the same number of steps")
    return out


# --- energy and roofline ----------------------------------------------------------
def measure_energy(meter, run_frame, frames: Sequence, *, seconds: float, idle_seconds: float, batch: int) -> dict:
    """Energy per frame from ``meter``: idle first, then frames back to back for at least ``seconds``.

    The measured window holds only the frame loop (pre-encoded frames, fresh
    state each). ``joules_per_frame`` is above idle: ``(E_window - P_idle *
    t_window) / frames``. Without a sensor every number is None and
    ``source`` says "not measured".
    """
    from edge_snn.runtime.power import NOT_MEASURED

    if meter.source == NOT_MEASURED:
        return {"label": "measured", "source": NOT_MEASURED, "joules_per_frame": None,
                "joules_per_image": None, "joules_total_per_frame": None}
    idle = meter.measure_idle(idle_seconds)
    meter.start()
    count, start = 0, time.perf_counter()
    while count == 0 or time.perf_counter() - start < seconds:
        run_frame(frames[count % len(frames)])
        count += 1
    reading = meter.stop()
    above = None if reading.joules_above_idle is None else reading.joules_above_idle / count
    return {
        "label": "measured", "source": reading.source, "frames": count, "seconds": reading.seconds,
        "samples": reading.samples, "idle_watts": idle, "mean_watts": reading.mean_watts,
        "joules_total_per_frame": None if reading.joules_total is None else reading.joules_total / count,
        "joules_per_frame": above, "joules_per_image": None if above is None else above / batch,
        "rails_joules": reading.rails,
    }


def roofline_section(path: str, target_name: str, contract: C.ModelContract, calls: int, p50_ms: float) -> dict:
    """Roofline floor of one frame on ``target_name`` and the fraction of it the measured p50 reaches."""
    from edge_snn.targets import estimate_floor, load_target

    if not path.endswith(".onnx"):
        return {"target": target_name, "error": "the roofline reads the ONNX graph; bench the .onnx file for it"}
    target = load_target(target_name)
    precision = "int8" if "int8" in contract.precision.lower() else "fp32"
    est = estimate_floor(path, target, precision)
    floor_ms = est.floor_s * calls * 1e3
    return {"target": target.name, "engine": est.engine, "precision": precision, "bound": est.bound,
            "floor_ms_per_frame": floor_ms, "fraction_of_floor": floor_ms / p50_ms if p50_ms > 0 else None,
            "note": "the target's peak numbers; the fraction only means something when bench ran on that device"}


# --- the benchmark --------------------------------------------------------------
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
    return Session(path, backend=backend, providers=providers, seed=seed, **({"threads": threads} if threads and not engine else {}))


def frame_runner(session) -> Callable[[np.ndarray], dict]:
    """``run_frame(spikes) -> outputs``: one frame from a fresh state; the body of the timed region."""
    def run_frame(frame):
        outputs, _, _ = session.run_encoded(frame, session.fresh_state())
        return outputs

    return run_frame


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
    counts = np.sum([o[C.SPIKE_COUNTS] for o in outputs], axis=0, dtype=np.float64)
    used = [frames[i % len(frames)] for i in range(iters)]
    input_rate = None if contract.encoding == "direct" else float(np.mean([np.count_nonzero(f) / f.size for f in used]))
    elements = {s.name: int(np.prod(s.shape)) for s in contract.state}
    rates = spike_rates(dict(zip(contract.spike_layers, counts)), elements, steps, iters, input_rate)
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
        latencies, outputs = time_frames(frame_runner(session), frames, iters=iters, warmup=warmup)
        return summarize_session(session, frames, latencies, outputs, warmup=warmup, threads=threads, sensor=sensor,
                                 energy_seconds=energy_seconds, idle_seconds=idle_seconds, name=name, target=target,
                                 rss_before=rss_before)


def _short(providers: list[str]) -> str:
    return providers[0].replace("ExecutionProvider", "") if providers else ""


# --- an op-level breakdown (ONNX Runtime's profiler) -------------------------------
def op_breakdown(path, frames: Sequence[np.ndarray], *, providers: list[str] | None = None, threads: int = 0,
                 warmup: int = 1) -> dict:
    """Where the time of a frame goes, by ONNX op type, from ONNX Runtime's profiler.

    Runs ``warmup`` frames, then each of ``frames`` once with profiling on;
    only node events inside the timed frames' ``model_run`` spans are counted.
    Returns ``{"frames", "run_ms_per_frame", "node_ms_per_frame", "ops": [{op, ms_per_frame, share}],
    "conv_layers": {layer: ms_per_frame}, "conv_nchwc_fraction"}`` where ``share`` is of the summed node
    time, ``conv_layers`` splits the convolution time by the ``edge_snn.layers`` entry each conv node
    computes, and ``conv_nchwc_fraction`` is the share of conv nodes ORT ran in its NCHWc layout.
    """
    import onnxruntime as ort

    from edge_snn.runtime.model_file import load_contract

    contract = load_contract(str(path))
    frames = check_spikes(frames, contract)
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(path), sess_options=options,
                                       providers=providers or ["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]

        def run(frame):
            state = {C.STATE_IN + s.name: np.zeros(s.shape, s.dtype) for s in contract.state}
            for i in range(frame.shape[0] // contract.timesteps):
                out = dict(zip(names, session.run(names, {C.INPUT: frame[i * contract.timesteps:(i + 1) * contract.timesteps], **state})))
                state = {C.STATE_IN + k[len(C.STATE_OUT):]: v for k, v in out.items() if k.startswith(C.STATE_OUT)}

        for i in range(warmup):
            run(frames[i % len(frames)])
        for frame in frames:
            run(frame)
        events = json.loads(Path(session.end_profiling()).read_text())
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    calls = len(frames) * (frames[0].shape[0] // contract.timesteps)
    windows = [(e["ts"], e["ts"] + e["dur"]) for e in runs[-calls:]]
    layer_of = _conv_layer_of_node(path, [row["name"] for row in contract.layers])
    per_op: dict[str, float] = {}
    per_layer: dict[str, float] = {}
    conv_nodes = nchwc_nodes = 0
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        if any(a <= e["ts"] <= b for a, b in windows):
            op = e.get("args", {}).get("op_name", "?")
            per_op[op] = per_op.get(op, 0.0) + e["dur"] / 1e3
            if "Conv" in op:
                node = e["name"][:-len("_kernel_time")]
                conv_nodes += 1
                nchwc_nodes += node.endswith("_nchwc")
                layer = layer_of.get(node) or layer_of.get(node.removesuffix("_nchwc"), "?")
                per_layer[layer] = per_layer.get(layer, 0.0) + e["dur"] / 1e3
    total = sum(per_op.values())
    n = len(frames)
    return {
        "frames": n, "run_ms_per_frame": sum(b - a for a, b in windows) / 1e3 / n, "node_ms_per_frame": total / n,
        "ops": [{"op": op, "ms_per_frame": ms / n, "share": ms / total if total else 0.0}
                for op, ms in sorted(per_op.items(), key=lambda kv: -kv[1])],
        "conv_layers": {layer: ms / n for layer, ms in per_layer.items()},
        # ONNX Runtime's NCHWc direct convolution (CPU), which skips taps in the zero padding
        "conv_nchwc_fraction": nchwc_nodes / conv_nodes if conv_nodes else None,
    }


def _conv_layer_of_node(path, layers: list[str]) -> dict[str, str]:
    """Conv node name -> the layer whose weight it reads (through a DequantizeLinear for QDQ graphs)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producer = {out: node for node in graph.node for out in node.output}
    out = {}
    for node in graph.node:
        if "Conv" not in node.op_type or len(node.input) < 2:
            continue
        weight = node.input[1]
        while weight in producer and producer[weight].op_type in ("DequantizeLinear", "Identity", "Cast"):
            weight = producer[weight].input[0]
        parts = set(weight.replace("_", ".").split("."))
        match = [name for name in layers if name in parts]
        out[node.name] = match[0] if match else weight
    return out


# --- console -------------------------------------------------------------------------
def _fmt_mj(value) -> str:
    return "-" if value is None else f"{value:.3g} mJ"


def format_result(r: dict) -> str:
    """A console table of one :func:`bench_model` result."""
    m, lat = r["model"], r["latency_ms"]
    threads = f", {r['threads']} threads" if r.get("threads") else ""
    lines = [
        f"edge-snn bench  {m['path']}",
        f"  model        {m['architecture']}, {m['layout']}, T={m['timesteps_per_call']}/call x {m['calls_per_frame']} "
        f"call(s) = {m['timesteps']} steps/frame, batch {m['batch']}, {m['precision']}, {m['encoding']} input",
        f"  backend      {r['backend']} {r['providers'] or ''}{threads}",
        f"  timed        {r['timed_region']}",
        f"  latency      p50 {lat['p50']:.2f} ms  p90 {lat['p90']:.2f}  p99 {lat['p99']:.2f}  mean {lat['mean']:.2f}"
        f"  ({lat['n']} frames after {r['warmup']} warm-up)",
        f"  throughput   {r['throughput_fps']:.2f} images/s (batch {m['batch']} / mean latency)",
        f"  peak RSS     {r['memory']['peak_rss_mib']:.0f} MiB (process high-water; {r['memory']['peak_rss_before_load_mib']:.0f} MiB before loading)",
    ]
    spikes = r["spikes"]
    rate_in = "analog (direct)" if spikes["input_rate"] is None else f"{spikes['input_rate']:.3f}"
    lines.append(f"  spike rate   input {rate_in}; " + ", ".join(f"{x['name']} {x['rate']:.3f}" for x in spikes["layers"]))
    est = r["energy_estimate"]
    if "error" in est:
        lines.append(f"  energy       {est['label']}: not available ({est['error']})")
    else:
        lines.append(f"  energy       {est['label']}, per image: SNN {_fmt_mj(est['snn_mj'])} vs ANN twin "
                     f"{_fmt_mj(est['ann_mj'])} (ANN/SNN {est['ann_over_snn']:.2f}x)")
        lines.append("               " + ", ".join(f"{x['name']} {x['snn_mj']:.3g}/{x['ann_mj']:.3g}" for x in est["layers"])
                     + "  (SNN/ANN mJ)")
    meas = r["energy_measured"]
    if meas.get("joules_per_frame") is None:
        lines.append(f"  measured     {meas['source']}" + ("" if meas["source"] == "not measured" else " (no reading)"))
    else:
        lines.append(f"  measured     {meas['joules_per_frame'] * 1e3:.3g} mJ/frame above idle "
                     f"({meas['idle_watts']:.2f} W idle, {meas['mean_watts']:.2f} W mean over {meas['frames']} frames; "
                     f"{meas['source']})")
    roof = r.get("roofline")
    if roof:
        if "error" in roof:
            lines.append(f"  roofline     {roof['target']}: {roof['error']}")
        else:
            lines.append(f"  roofline     {roof['target']} {roof['engine']} {roof['precision']}: floor "
                         f"{roof['floor_ms_per_frame']:.3g} ms/frame ({roof['bound']}-bound), measured p50 reaches "
                         f"{roof['fraction_of_floor']:.1%} of it ({roof['note']})")
    env = r["environment"]
    mode = env["power_mode"]["name"] if env.get("power_mode") else "n/a"
    libs = ", ".join(f"{k} {v}" for k, v in env["libraries"].items() if k != "edge-snn")
    lines.append(f"  machine      {env['cpu']} x{env['cpu_count']}, GPU {env['gpu'] or 'none'}, power mode {mode}, "
                 f"load {env['load_average_1_5_15']}")
    lines.append(f"  libraries    {libs}")
    return "\n".join(lines)
