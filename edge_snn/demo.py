"""The end-to-end demo (README command 1), on the built-in synthetic event-camera data.

Stages, each skipped when its output already exists (``--fresh`` redoes all):

1. train a small Spiking-DeepLab (T=20) on synthetic drone scenes;
2. evaluate it on held-out scenes, against the chance level; write PNG panels
   (events | ground truth | prediction);
3. export ONNX graphs ``--timesteps 20`` in both layouts, plus the T=1 step graph;
4. run held-out scenes through ONNX Runtime (``edge-snn run``) and write masks;
   and a synthetic event recording segmented window by window into a video;
5. parity report of the PyTorch reference against ONNX Runtime and the sparse backend;
6. INT8: Brevitas post-training quantization, the QDQ (TensorRT) and integer
   (ONNX Runtime CPU) exports, parity of each against the quantized reference,
   and the static TensorRT check for the Orin targets;
7. bench each graph under ONNX Runtime and the sparse backend (latency, spike
   rates, synaptic operations, energy estimate; measured energy where a sensor
   exists) and write the report with plots.

It opens with ``edge-snn doctor``'s table of what this machine has.

Everything lands in one folder; ``summary.json`` collects the numbers.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge_snn.training.config import TrainConfig

DEMO_CONFIG = TrainConfig(
    arch="dl-vgg9", width_mult=0.125, timesteps=20, dataset="synthetic-events", height=64, width=64,
    train_samples=800, val_samples=64, epochs=6, batch_size=16, optimizer="adam", lr=1e-2, milestones=(0.8,),
    seed=0, checkpoint_every=10,
)


def _say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def _training_finished(run_dir: Path, epochs: int) -> bool:
    history = run_dir / "history.json"
    if not history.is_file() or not (run_dir / "best.pt").is_file():
        return False
    records = json.loads(history.read_text())
    if not records or records[-1]["epoch"] < epochs:
        return False
    from edge_snn.training.checkpoint import load_checkpoint

    # a run from before the binning was recorded cannot segment recordings: train it again
    return bool(load_checkpoint(run_dir / "best.pt").get("data", {}).get("binning"))


def error_map(label: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """RGB picture of where a prediction is wrong: red = wrong, light grey = right, dark grey = void (255)."""
    out = np.full((*label.shape, 3), 225, dtype=np.uint8)
    out[(pred != label) & (label != 255)] = (220, 30, 30)
    out[label == 255] = (90, 90, 90)
    return out


def panel_picture(events: np.ndarray, label: np.ndarray, pred: np.ndarray, class_names, *,
                  caption: str = "", min_height: int = 256) -> np.ndarray:
    """One readable panel: events | ground truth | prediction | errors, titled, upscaled, with a class legend."""
    from edge_snn.runtime.annotate import labelled_row
    from edge_snn.runtime.images import colorize, to_rgb_preview

    k = len(class_names)
    wrong = float(((pred != label) & (label != 255)).sum()) / max(int((label != 255).sum()), 1)
    return labelled_row([(to_rgb_preview(events), "events (ON yellow, OFF blue)"), (colorize(label, k), "ground truth"),
                         (colorize(pred, k), "prediction"), (error_map(label, pred), f"errors: {wrong:.0%} of pixels")],
                        class_names, caption=caption, min_height=min_height)


def write_panels(model, dataset, out_dir: Path, *, count: int = 4, encoding: str = "events") -> list[str]:
    """PNG panels of held-out scenes: events | ground truth | prediction | errors, with titles and a legend."""
    from edge_snn.runtime.images import save_png
    from edge_snn.training.evaluate import predict_batch

    names = list(getattr(dataset, "class_names", None) or [str(i) for i in range(model.num_classes)])
    paths = []
    for i in range(min(count, len(dataset))):
        x, label = dataset[i]
        logits = predict_batch(model, x[None], encoding=encoding, seed=i)
        pred = logits.argmax(1)[0].numpy()
        picture = panel_picture(x.numpy(), label.numpy(), pred, names,
                                caption=f"held-out scene {i}: {x.shape[0]} event frames summed, "
                                        f"{x.shape[-2]}x{x.shape[-1]} pixels")
        path = out_dir / f"panel_{i:02d}.png"
        save_png(path, picture)
        paths.append(str(path))
    return paths


def run_recording_stage(out: Path) -> dict:
    """A synthetic event recording (a scene continued over 8 windows) segmented into a video."""
    from edge_snn.runtime.events.synthetic_demo import segment_synthetic_recording

    result = segment_synthetic_recording(out / "time_major_T20.onnx", out / "recording", windows=8)
    scores = result.get("scores", {})
    _say(f"recording: {result['windows']} windows of {result['window_ms']:g} ms, mean latency "
         f"{result['latency_ms']['mean']:.1f} ms, mIoU {scores.get('miou', float('nan')):.3f} -> {result['video']}")
    return {k: result.get(k) for k in ("windows", "window_ms", "latency_ms", "video", "scores")}


def run_int8_stage(ckpt: Path, out: Path) -> dict:
    """Brevitas PTQ, both INT8 forms exported, parity of each against the quantized reference, the Orin check."""
    from edge_snn.export.exporter import ExportOptions, export_checkpoint
    from edge_snn.parity import run_parity
    from edge_snn.targets import check_model, load_target
    from edge_snn.training.quantize_run import quantize_checkpoint

    qckpt = out / "int8.pt"
    metrics = quantize_checkpoint(ckpt, qckpt, method="ptq", calibration_samples=64, eval_samples=128, progress=False)
    _say(f"INT8 PTQ: mIoU float {metrics['miou_float']:.4f} -> int8 {metrics['miou_quantized']:.4f} "
         f"({(metrics['miou_quantized'] - metrics['miou_float']) * 100:+.2f} points)")
    result = {"quantization": metrics, "parity": {}, "check": {}}
    for form in ("qdq", "integer"):
        path = out / f"int8_{form}_T20.onnx"
        export_checkpoint(qckpt, path, ExportOptions(timesteps=20, int8_form=form))
        report = run_parity(qckpt, path, frames=8)
        result["parity"][form] = {k: report[k] for k in ("pixel_agreement", "miou_reference", "miou_runtime", "passed")}
        _say(f"INT8 {form} parity against the quantized reference: pixel agreement "
             f"{report['pixel_agreement'] * 100:.3f}%, {'PASS' if report['passed'] else 'FAIL'}")
        for target in ("orin-nano-8gb", "orin-nx-16gb", "agx-orin-64gb", "x86-cpu"):
            check = check_model(path, load_target(target))
            result["check"][f"{form}/{target}"] = {"ok": check.ok, "errors": len(check.errors),
                                                   "warnings": len(check.warnings)}
        _say(f"edge-snn check {path.name}: " + ", ".join(
            f"{t}: {'OK' if result['check'][f'{form}/{t}']['ok'] else 'refused'}"
            for t in ("orin-nano-8gb", "orin-nx-16gb", "agx-orin-64gb", "x86-cpu")))
    return result


BENCH_VARIANTS = (  # (name, graph, backend)
    ("time_major_T20", "time_major_T20", "onnxruntime"),
    ("layer_major_T20", "layer_major_T20", "onnxruntime"),
    ("step_T1", "step_T1", "onnxruntime"),
    ("int8_qdq_T20", "int8_qdq_T20", "onnxruntime"),
    ("int8_integer_T20", "int8_integer_T20", "onnxruntime"),
    ("sparse_time_major_T20", "time_major_T20", "sparse"),
    ("sparse_int8_qdq_T20", "int8_qdq_T20", "sparse"),
)


def run_bench_stage(out: Path) -> dict:
    """Every graph under ONNX Runtime and the sparse backend: latency, spike rates, energy; then the report."""
    from edge_snn.report import make_report
    from edge_snn.runtime.bench import bench_model, format_result
    from edge_snn.runtime.files import write_json_atomic

    results = {}
    files = []
    for name, graph, backend in BENCH_VARIANTS:
        result = bench_model(out / f"{graph}.onnx", backend=backend, iters=6, warmup=1, name=name,
                             energy_seconds=1.0, idle_seconds=1.0)
        path = out / "bench" / f"{name}.json"
        write_json_atomic(path, result)
        files.append(path)
        results[name] = result.get("latency_ms", {})
        _say(f"bench {name}:\n{format_result(result)}")
    make_report(files, out / "report")
    _say(f"report: {out / 'report' / 'report.md'}")
    return {"latency_ms": results, "report": str(out / "report" / "report.md")}


def run_doctor_stage() -> dict:
    """What this machine has (edge-snn doctor), printed first so every later number has its context."""
    from rich.console import Console

    from edge_snn.runtime.doctor import inspect, render, to_json

    rows = inspect()
    _say("edge-snn doctor:")
    render(rows, Console(width=160))
    return {"problems": to_json(rows)["problems"]}


def run_demo(out: str | Path = "runs/demo", *, fresh: bool = False, epochs: int | None = None) -> dict:
    from edge_snn.export.exporter import ExportOptions, export_checkpoint
    from edge_snn.parity import format_report, run_parity
    from edge_snn.runtime.batch_run import run_files
    from edge_snn.runtime.files import write_bytes_atomic, write_json_atomic
    from edge_snn.training.checkpoint import model_from_checkpoint
    from edge_snn.training.datasets import make_dataset
    from edge_snn.training.evaluate import evaluate_checkpoint
    from edge_snn.training.trainer import BEST, LAST, train

    out = Path(out)
    config = DEMO_CONFIG if epochs is None else replace(DEMO_CONFIG, epochs=epochs)
    summary: dict = {"config": config.to_dict()}
    started = time.perf_counter()
    run_dir = out / "train"
    ckpt = run_dir / BEST

    summary["doctor"] = run_doctor_stage()

    # 1. train
    if fresh or not _training_finished(run_dir, config.epochs):
        resume = (run_dir / LAST).is_file() and not fresh
        _say(f"training {config.arch} width x{config.width_mult} T={config.timesteps} on synthetic events "
             f"({config.train_samples} scenes, {config.epochs} epochs){' - resuming' if resume else ''}")
        train(config, run_dir, resume=resume, epochs=config.epochs if resume else None)
    else:
        _say(f"training already done in {run_dir} (use --fresh to retrain)")
    summary["train_seconds"] = time.perf_counter() - started

    # 2. evaluate on held-out scenes + panels
    scores = evaluate_checkpoint(ckpt, split="test", samples=128)
    summary["test"] = {k: scores[k] for k in ("miou", "pixel_accuracy", "chance_miou", "iou")}
    _say(f"held-out mIoU {scores['miou']:.4f} (chance {scores['chance_miou']:.4f}), pixel accuracy {scores['pixel_accuracy']:.4f}")
    model, ck = model_from_checkpoint(ckpt)
    test_set = make_dataset(config, "test", num_samples=8)
    summary["panels"] = write_panels(model, test_set, out)
    _say(f"panels: {', '.join(summary['panels'])}")

    # 3. export
    exports = {}
    for name, options in {
        "time_major_T20": ExportOptions(timesteps=20, layout="time-major"),
        "layer_major_T20": ExportOptions(timesteps=20, layout="layer-major"),
        "step_T1": ExportOptions(timesteps=1, layout="time-major"),
    }.items():
        exports[name] = export_checkpoint(ckpt, out / f"{name}.onnx", options, model=model)
        _say(f"exported {exports[name]['path']}: {exports[name]['nodes']} nodes, {exports[name]['bytes'] / 1e6:.2f} MB")
    summary["exports"] = exports

    # 4. run held-out scenes through ONNX Runtime
    inputs = out / "inputs"
    for i in range(8):
        x, _ = test_set[i]
        import io

        buffer = io.BytesIO()
        np.save(buffer, x.numpy())
        write_bytes_atomic(inputs / f"scene_{i:02d}.npy", buffer.getvalue())
    for name in ("time_major_T20", "layer_major_T20"):
        result = run_files(out / f"{name}.onnx", inputs, out / f"masks_{name}", progress=False)
        summary[f"run_{name}"] = result["latency_ms"]
        _say(f"ONNX Runtime {name}: {result['frames']} frames, mean latency {result['latency_ms']['mean']:.1f} ms -> {out / f'masks_{name}'}")
    summary["recording"] = run_recording_stage(out)

    # 5. parity
    summary["parity"] = {}
    for name in ("time_major_T20", "layer_major_T20"):
        report = run_parity(ckpt, out / f"{name}.onnx", frames=16)
        summary["parity"][name] = {k: report[k] for k in ("pixel_agreement", "miou_reference", "miou_runtime", "max_logit_error", "first_divergence", "passed")}
        _say(f"parity {name}:\n{format_report(report)}")
    report = run_parity(ckpt, out / "time_major_T20.onnx", frames=8, backend="sparse")
    summary["parity"]["sparse_time_major_T20"] = {k: report[k] for k in ("pixel_agreement", "miou_reference", "miou_runtime", "max_logit_error", "first_divergence", "passed")}
    _say(f"parity of the sparse backend, time_major_T20:\n{format_report(report)}")
    # 6. INT8
    summary["int8"] = run_int8_stage(ckpt, out)

    # 7. bench + report
    summary["bench"] = run_bench_stage(out)
    summary["total_seconds"] = time.perf_counter() - started
    write_json_atomic(out / "summary.json", summary)
    _say(f"done in {summary['total_seconds']:.0f} s; numbers in {out / 'summary.json'}")
    return summary
