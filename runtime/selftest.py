"""``edge-snn selftest``: the shipped tiny model through every backend present, against its stored reference.

The one command for a fresh device. It needs no torch and no data: the fixture in
``runtime/data/selftest`` (made by :mod:`edge_snn.selftest_fixture`) holds a small Spiking-DeepLab
as a T = 1 step graph in FP32 and INT8 QDQ, seeded event input, and the PyTorch reference's
logits, class maps and per-layer spike counts per step. Each *case* runs one model on one
backend/precision, every frame streamed in ``timesteps_trained`` calls through
:func:`edge_snn.runtime.streaming.run_steps` (via :class:`~edge_snn.runtime.Session`):

=====================  ===============================  ==============================
case                   runs                             compared with (tolerance)
=====================  ===============================  ==============================
onnxruntime-cpu        both graphs, CPU provider        fp32 / quantized ref (fp32, int8-qdq)
onnxruntime-cuda       both graphs, CUDA provider       same
onnxruntime-tensorrt   FP32 graph, TensorRT provider    fp32 ref (fp32)
sparse                 both graphs, event-driven CPU    fp32 / quantized ref (fp32, int8-qdq)
tensorrt-fp16          FP32 graph built ``--fp16``      fp32 ref (fp16)
tensorrt-int8          INT8 graph built ``--int8``      quantized ref (int8-integer)
=====================  ===============================  ==============================

Verdict (the free-running criterion of :data:`edge_snn.runtime.parity_tolerance.TOLERANCES`,
since each path feeds itself): class-map pixel agreement >= ``pixel_agreement``. Reported
alongside: the largest logit error against the teacher-forced bound ``logit_atol + logit_rtol *
max|ref|`` (free-running may exceed it after a legitimate spike flip) and the spike-count
deviation ``sum |count - ref| / neuron-steps``, a lower bound on the fraction of flipped spikes.
A case that passes is then timed for ``seconds`` (latency per frame, the bench's timed region)
and, where a power sensor exists, measured for energy per frame above idle. A backend that is
absent is a *skipped* case with the reason and the install hint, never a pass. Output:
``selftest.json`` and ``selftest.md`` in the output folder.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime import contract as C
from edge_snn.runtime.parity_tolerance import tolerance_for

SCHEMA = "edge-snn.selftest/1"
GPU_PROVIDERS = {"onnxruntime-cuda": "CUDAExecutionProvider", "onnxruntime-tensorrt": "TensorrtExecutionProvider"}


FIXTURE_PRECISION = {"fp32": "fp32", "int8": "int8-qdq"}  # the shipped graphs' edge_snn.precision, by fixture key


@dataclass
class Case:
    """One model on one backend: ``passed``, ``failed`` or ``skipped`` (with ``reason``)."""

    name: str
    model: str
    precision: str
    status: str = "skipped"
    reason: str = ""
    parity: dict = field(default_factory=dict)
    latency_ms: dict | None = None
    energy: dict | None = None


@dataclass(frozen=True)
class Fixture:
    folder: Path
    meta: dict
    reference: dict[str, np.ndarray]

    def model(self, precision: str) -> Path:
        return self.folder / self.meta["models"][precision]


def fixture_folder() -> Path:
    return Path(str(resources.files("edge_snn.runtime") / "data" / "selftest"))


def load_fixture(folder: str | Path | None = None) -> Fixture:
    folder = Path(folder) if folder is not None else fixture_folder()
    try:
        meta = json.loads((folder / "fixture.json").read_text())
        with np.load(folder / meta["reference"], allow_pickle=False) as npz:
            reference = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"the selftest fixture in {folder} is missing or damaged ({type(err).__name__}: {err}); "
                        "reinstall edge-snn") from None
    return Fixture(folder, meta, reference)


# --- one case ---------------------------------------------------------------------
def compare(session, fixture: Fixture, ref_key: str, tolerance_key: str) -> dict:
    """Run every fixture frame on ``session`` (streamed, fresh state each) and compare with the reference."""
    from edge_snn.runtime.streaming import run_steps

    contract = session.contract
    inputs = fixture.reference["inputs"]
    ref_logits = fixture.reference[f"{ref_key}.logits"]
    ref_maps = fixture.reference[f"{ref_key}.class_map"]
    ref_counts = fixture.reference[f"{ref_key}.spike_counts"]
    logits, counts = [], []
    for frame in inputs:
        per_call: list[np.ndarray] = []
        result = run_steps(session.runner, contract, frame, None,
                           on_call=lambda call, lo, out: per_call.append(np.asarray(out[C.SPIKE_COUNTS], np.float64)))
        logits.append(result.outputs[C.LOGITS])
        counts.append(np.stack(per_call, axis=1))  # [L, calls]; T = 1 graph: one call per step
    logits, counts = np.stack(logits), np.stack(counts)
    tolerance = tolerance_for(tolerance_key)
    neurons = sum(fixture.meta["neurons_per_step"][layer] for layer in contract.spike_layers)
    neuron_steps = neurons * contract.timesteps_trained * len(inputs)
    pixel_agreement = float((logits.argmax(2) == ref_maps).mean())
    bound = tolerance.logit_bound(float(np.abs(ref_logits).max()))
    return {
        "tolerance": tolerance_key, "frames": int(len(inputs)),
        "pixel_agreement": pixel_agreement, "pixel_agreement_min": tolerance.pixel_agreement,
        "max_logit_error": float(np.abs(logits - ref_logits).max()), "logit_bound_teacher_forced": bound,
        "spike_count_deviation": float(np.abs(counts - ref_counts).sum() / neuron_steps),
        "spike_count_deviation_teacher_forced_max": 1.0 - tolerance.spike_agreement,
        "spike_counts_per_layer": dict(zip(contract.spike_layers, counts.sum(axis=(0, 2)).tolist())),
        "reference_spike_counts_per_layer": dict(zip(contract.spike_layers, ref_counts.sum(axis=(0, 2)).tolist())),
        "passed": pixel_agreement >= tolerance.pixel_agreement,
    }


def bench(session, fixture: Fixture, meter, seconds: float) -> tuple[dict, dict | None]:
    """Latency per frame for about ``seconds`` (warm-up first) and, with a sensor, energy per frame."""
    from edge_snn.runtime.bench import frame_runner, latency_summary, measure_energy, time_frames
    from edge_snn.runtime.power import NOT_MEASURED

    run_frame = frame_runner(session)
    frames = list(fixture.reference["inputs"])
    start = time.perf_counter()
    run_frame(frames[0])
    per_frame = max(time.perf_counter() - start, 1e-4)
    iters = int(min(max(5, seconds / per_frame), 10_000))
    latencies, _ = time_frames(run_frame, frames, iters=iters, warmup=2)
    latency = latency_summary(latencies, session.contract.batch)
    energy = None
    if meter.source != NOT_MEASURED:
        energy = measure_energy(meter, run_frame, frames, seconds=seconds, idle_seconds=min(1.0, seconds),
                                batch=session.contract.batch)
    return {**latency["latency_ms"], "throughput_fps": latency["throughput_fps"]}, energy


def run_case(case: Case, open_session, fixture: Fixture, ref_key: str, meter, seconds: float) -> Case:
    """Fill ``case`` from a session ``open_session()`` gives; any error is a failure with its message."""
    try:
        with open_session() as session:
            case.parity = compare(session, fixture, ref_key, case.precision)
            case.status = "passed" if case.parity["passed"] else "failed"
            if not case.parity["passed"]:
                case.reason = (f"class maps agree on {case.parity['pixel_agreement']:.4f} of pixels, "
                               f"below {case.parity['pixel_agreement_min']}")
            elif seconds > 0:
                case.latency_ms, case.energy = bench(session, fixture, meter, seconds)
    except Exception as err:  # a UserError (install hint, refused engine) or a backend failure: report, go on
        case.status, case.reason = "failed", f"{type(err).__name__}: {str(err).splitlines()[0][:400] if str(err) else ''}"
    return case


# --- all cases --------------------------------------------------------------------
def onnxruntime_cases(fixture, meter, seconds) -> list[Case]:
    from edge_snn.runtime.backends import availability
    from edge_snn.runtime.session import Session

    plans = [("onnxruntime-cpu", "CPUExecutionProvider", ("fp32", "int8")),
             ("onnxruntime-cuda", GPU_PROVIDERS["onnxruntime-cuda"], ("fp32", "int8")),
             ("onnxruntime-tensorrt", GPU_PROVIDERS["onnxruntime-tensorrt"], ("fp32",))]
    why = availability()["onnxruntime"]
    providers: list[str] = []
    if why is None:
        from edge_snn.runtime.backends.onnxrt import available_providers

        providers = available_providers()
    cases = []
    for name, provider, models in plans:
        for key in models:
            case = Case(f"{name} {key}", fixture.meta["models"][key], FIXTURE_PRECISION[key])
            if why is not None:
                case.reason = why
            elif provider not in providers:
                case.reason = (f"this onnxruntime offers {', '.join(providers)}, not {provider}: on a Jetson install "
                               "NVIDIA's onnxruntime-gpu wheel (docs/jetson.md)")
            else:
                chosen = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
                run_case(case, lambda m=fixture.model(key), p=chosen: Session(m, backend="onnxruntime", providers=p),
                         fixture, key, meter, seconds)
            cases.append(case)
    return cases


def sparse_cases(fixture, meter, seconds) -> list[Case]:
    """The event-driven CPU backend on both graphs (its kernels compiled, or the reason they are not)."""
    from edge_snn.runtime.backends import availability
    from edge_snn.runtime.session import Session

    why = availability()["sparse"]
    cases = []
    for key in ("fp32", "int8"):
        case = Case(f"sparse {key}", fixture.meta["models"][key], FIXTURE_PRECISION[key])
        if why is not None:
            case.reason = why
        else:
            run_case(case, lambda m=fixture.model(key): Session(m, backend="sparse"), fixture, key, meter, seconds)
        cases.append(case)
    return cases


def tensorrt_cases(fixture, meter, seconds, engines: Path) -> list[Case]:
    from edge_snn.runtime.backends import availability
    from edge_snn.runtime.session import Session

    plans = [("tensorrt-fp16", "fp32", "fp16", "fp16"), ("tensorrt-int8", "int8", "int8", "int8-integer")]
    why = availability()["tensorrt"]
    cases = []
    for name, key, build_precision, tolerance in plans:
        case = Case(name, fixture.meta["models"][key], tolerance)
        if why is not None:
            case.reason = why
        else:
            def open_session(key=key, build_precision=build_precision, name=name):
                from edge_snn.runtime.backends.trt.build import build_engine

                engine = engines / f"selftest-{name}.engine"
                build_engine(fixture.model(key), engine, precision=build_precision)
                return Session(engine)

            run_case(case, open_session, fixture, key, meter, seconds)
        cases.append(case)
    return cases


def check_case(fixture: Fixture, target: str) -> Case:
    """The static readiness check of both fixture graphs for ``target`` (errors fail the case)."""
    from edge_snn.targets import check_model, load_target

    case = Case(f"check {target}", ", ".join(fixture.meta["models"].values()), "-")
    profile = load_target(target)
    errors = []
    for key in fixture.meta["models"]:
        report = check_model(fixture.model(key), profile, precision="int8" if key == "int8" else "fp16")
        errors += [f"{key}: {f.code}" for f in report.errors]
        case.parity[key] = {"errors": len(report.errors), "warnings": len(report.warnings)}
    case.status = "failed" if errors else "passed"
    case.reason = "; ".join(errors)
    return case


def run_selftest(out_dir, *, target: str | None = None, seconds: float = 2.0, fixture_dir=None,
                 sensor: str | None = None) -> dict:
    """Every case, the doctor's rows and the module; writes ``selftest.json`` and ``selftest.md`` to ``out_dir``."""
    from edge_snn.runtime import doctor, platform_info
    from edge_snn.runtime.files import ensure_writable_dir, write_bytes_atomic, write_json_atomic
    from edge_snn.runtime.power import open_best_meter

    out = ensure_writable_dir(out_dir)
    if target is not None:
        from edge_snn.targets import load_target

        load_target(target)  # an unknown name is a UserError now, before any work
    fixture = load_fixture(fixture_dir)
    module = platform_info.this_module()
    meter = open_best_meter(sensor)
    try:
        cases = [check_case(fixture, target)] if target else []
        cases += onnxruntime_cases(fixture, meter, seconds)
        cases += sparse_cases(fixture, meter, seconds)
        cases += tensorrt_cases(fixture, meter, seconds, out / "engines")
    finally:
        meter.close()
    counts = {s: sum(c.status == s for c in cases) for s in ("passed", "failed", "skipped")}
    suggested = platform_info.suggest_target(module)
    report = {
        "schema": SCHEMA, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "target": target, "module": {"model": module.model, "memory_bytes": module.memory_bytes,
                                     "suggested_target": suggested},
        "target_matches_module": None if target is None or suggested is None else target == suggested,
        "power_sensor": meter.source, "seconds_per_bench": seconds,
        "fixture": {k: fixture.meta[k] for k in ("architecture", "width_multiplier", "timesteps_trained", "height",
                                                 "width", "frames", "weights_sha256")},
        "summary": counts, "passed": counts["failed"] == 0,
        "cases": [asdict(c) for c in cases],
        "doctor": doctor.to_json(doctor.inspect()),
    }
    write_json_atomic(out / "selftest.json", report)
    write_bytes_atomic(out / "selftest.md", format_markdown(report).encode())
    return report


def format_markdown(report: dict) -> str:
    """The shareable summary: one line per case, then the machine's problems from the doctor."""
    s = report["summary"]
    lines = [f"# edge-snn selftest ({report['created']})", "",
             f"Module: {report['module']['model'] or 'not a Jetson'}; target: {report['target'] or '-'}; "
             f"power sensor: {report['power_sensor']}.", "",
             f"**{s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped**", "",
             "| case | model | tolerance | status | pixel agreement | max logit error | spike-count deviation | "
             "p50 ms | mJ/frame | note |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in report["cases"]:
        p, lat, en = c["parity"], c["latency_ms"] or {}, c["energy"] or {}
        joules = en.get("joules_per_frame")
        cells = [c["name"], c["model"], c["precision"], c["status"],
                 f"{p['pixel_agreement']:.4f}" if "pixel_agreement" in p else "",
                 f"{p['max_logit_error']:.2e}" if "max_logit_error" in p else "",
                 f"{p['spike_count_deviation']:.2e}" if "spike_count_deviation" in p else "",
                 f"{lat['p50']:.2f}" if "p50" in lat else "", f"{joules * 1e3:.2f}" if joules is not None else "",
                 c["reason"].replace("|", "/")]
        lines.append("| " + " | ".join(cells) + " |")
    problems = [r for r in report["doctor"]["rows"] if r["status"] == "warn"]
    if problems:
        lines += ["", "Problems found by `edge-snn doctor`:", ""]
        lines += [f"- {r['item']}: {r['value']} -> {r['fix']}" for r in problems]
    return "\n".join(lines) + "\n"
