"""``edge-snn parity``: the PyTorch reference against an exported graph, on identical spikes.

Both paths get the same encoded input (the runtime's encoder, same seed). A
threshold turns a rounding difference into a spike flip that then cascades
through later layers and steps, so two views are computed:

* teacher-forced (the verdict on the graph's arithmetic): the user's own graph
  rewired so that every layer reads the *reference's* input spikes; a layer's
  disagreement is then its own numeric error, and the readout's logits differ
  only by its own rounding;
* free-running (what a user sees): each path feeds itself; spike agreement per
  (layer, step), the first (layer, step) where spikes diverge, logit error,
  class-map agreement and, where the frames have labels, each path's mIoU.

The verdict (:func:`verdict`) applies the precision's tolerance
(:mod:`edge_snn.runtime.parity_tolerance`) to teacher-forced spike agreement
per layer, teacher-forced logit error, class maps and mIoU; ``edge-snn
parity`` exits 1 past any of them. Frames come from the checkpoint's own
held-out data, or from ``--input`` files read exactly as ``edge-snn run``
reads them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
import torch

from edge_snn.errors import UserError
from edge_snn.runtime import contract as C
from edge_snn.runtime.files import file_sha256
from edge_snn.runtime.metrics import confusion_matrix, mean_iou
from edge_snn.runtime.model_file import contract_of, load_onnx_file
from edge_snn.runtime.parity_tolerance import tolerance_for
from edge_snn.runtime.session import Session
from edge_snn.runtime.streaming import run_steps

TEACHER = "teacher."


# --- the graphs --------------------------------------------------------------------
def _spike_names(contract: C.ModelContract) -> dict[str, list[str]]:
    """Per layer, the names of its spike tensors in one call (time-major: one per step)."""
    if contract.layout == "time-major":
        return {layer: [C.spike_tensor_name(layer, t) for t in range(contract.timesteps)] for layer in contract.spike_layers}
    return {layer: [C.spike_tensor_name(layer, None)] for layer in contract.spike_layers}


def _with_spike_outputs(proto: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """The same graph, also returning the named spike tensors (shapes from shape inference)."""
    inferred = onnx.shape_inference.infer_shapes(proto)
    infos = {v.name: v for v in inferred.graph.value_info}
    existing = {o.name for o in proto.graph.output}
    extended = onnx.ModelProto()
    extended.CopyFrom(proto)
    for name in names:
        if name in existing:
            continue
        if name not in infos:
            raise UserError(f"the model has no spike tensor {name!r}; was it exported by this edge-snn version?")
        extended.graph.output.append(infos[name])
    return extended


def teacher_forced_graph(proto: onnx.ModelProto, contract: C.ModelContract) -> onnx.ModelProto:
    """The user's own graph, rewired so that every layer reads the reference's input spikes.

    Each named spike tensor keeps being computed (and is exposed as an
    output), but its consumers read a new graph input ``teacher.<name>``
    instead; the layer's own reset still uses its own spikes.
    """
    flat = [n for names in _spike_names(contract).values() for n in names]
    graph = _with_spike_outputs(proto, flat)
    infos = {o.name: o for o in graph.graph.output}
    spikes = set(flat)
    for node in graph.graph.node:
        for i, name in enumerate(node.input):
            if name in spikes:
                node.input[i] = TEACHER + name
    for name in flat:
        info = onnx.ValueInfoProto()
        info.CopyFrom(infos[name])
        info.name = TEACHER + name
        graph.graph.input.append(info)
    return graph


@contextmanager
def spike_graphs(proto: onnx.ModelProto, contract: C.ModelContract):
    """``(free, teacher)``: paths of the graph exposing its spikes, and of its teacher-forced rewiring (temporary files)."""
    with tempfile.TemporaryDirectory() as tmp:
        free, teacher = Path(tmp) / "free.onnx", Path(tmp) / "teacher.onnx"
        onnx.save(_with_spike_outputs(proto, [n for v in _spike_names(contract).values() for n in v]), str(free))
        onnx.save(teacher_forced_graph(proto, contract), str(teacher))
        yield free, teacher


# --- spikes per step -----------------------------------------------------------------
def _split_steps(arrays: list[np.ndarray], contract: C.ModelContract) -> list[np.ndarray]:
    """One call's spike outputs of a layer -> one ``[B, C, h, w]`` array per step."""
    if contract.layout == "time-major":
        return list(arrays)
    (folded,) = arrays
    return list(folded.reshape(contract.timesteps, -1, *folded.shape[1:]))


def _collect(contract: C.ModelContract, into: dict[str, list[np.ndarray]]):
    """An ``on_call`` hook for :func:`run_steps` appending every layer's per-step spikes to ``into``."""
    names = _spike_names(contract)

    def on_call(call, lo, outputs):
        for layer, layer_names in names.items():
            into[layer] += _split_steps([outputs[n] for n in layer_names], contract)

    return on_call


def _teacher_inputs(contract: C.ModelContract, reference: dict[str, list[np.ndarray]]):
    """An ``extra_inputs`` hook for :func:`run_steps` feeding the reference's spikes of each call."""
    names = _spike_names(contract)

    def extra(call, lo, hi):
        feed = {}
        for layer, layer_names in names.items():
            if contract.layout == "time-major":
                feed.update({TEACHER + n: reference[layer][lo + t] for t, n in enumerate(layer_names)})
            else:
                feed[TEACHER + layer_names[0]] = np.concatenate(reference[layer][lo:hi])
        return feed

    return extra


def run_with_spikes(runner, contract: C.ModelContract, spikes: np.ndarray, teacher: dict | None = None):
    """``(outputs, {layer: per-step spikes})`` of one frame's encoded ``spikes`` on a runner of a :func:`spike_graphs` graph.

    teacher: per layer, the per-step spikes every layer reads instead of its
    own input's (the runner must then be on the teacher-forced graph).
    """
    got = {layer: [] for layer in contract.spike_layers}
    extra = None if teacher is None else _teacher_inputs(contract, teacher)
    outputs = run_steps(runner, contract, spikes, on_call=_collect(contract, got), extra_inputs=extra).outputs
    return outputs, got


# --- frames ---------------------------------------------------------------------------
def dataset_frames(checkpoint, contract: C.ModelContract, frames: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """``frames`` held-out inputs (and labels) of the checkpoint's own dataset, at the graph's input size."""
    dataset = checkpoint.dataset("test", samples=frames, size=(contract.height, contract.width),
                                 hint="pass --input FRAMES (a file or folder of what `edge-snn run` accepts)")
    for i in range(min(frames, len(dataset))):
        x, label = dataset[i]
        yield x.numpy(), label.numpy()


def file_frames(path, contract: C.ModelContract, frames: int | None, *, resize: bool = False):
    """The user's own inputs, read exactly as ``edge-snn run`` reads them (no labels)."""
    from edge_snn.runtime.inputs import list_inputs, read_input

    files = list_inputs(path, contract.encoding)
    for file in files[:frames] if frames else files:
        x, _ = read_input(file, encoding=contract.encoding, size=(contract.height, contract.width) if resize else None)
        yield x, None


# --- the comparison ---------------------------------------------------------------------
def run_parity(checkpoint: str | Path, model_path: str | Path, *, frames: int | None = 8, seed: int = 0,
               inputs: str | Path | None = None, resize: bool = False, backend: str = "onnxruntime",
               progress: bool = False) -> dict:
    """Compare reference and runtime on ``frames`` frames; returns the report dict (``passed`` is the verdict).

    inputs: a file or folder of the user's own frames (else the checkpoint's held-out data).
    frames: how many frames (None with ``inputs``: all of them).
    backend: the runtime backend under test (any in :data:`edge_snn.runtime.backends.BACKENDS`).
    """
    from edge_snn.training.checkpoint import open_checkpoint

    if frames is not None and frames < 1:
        raise UserError(f"--frames must be at least 1, got {frames}")
    proto = load_onnx_file(model_path, load_weights=True)
    contract = contract_of(proto, str(model_path))
    if contract.batch != 1:
        raise UserError(f"parity runs frame by frame: export the model with --batch 1 (this one has batch {contract.batch})")
    ckpt = open_checkpoint(checkpoint)
    model = ckpt.model()
    if (model.arch, model.timesteps, model.in_channels, model.num_classes) != (
            contract.architecture, contract.timesteps_trained, contract.channels, contract.num_classes):
        raise UserError(f"{model_path} ({contract.architecture}, T={contract.timesteps_trained}, {contract.channels} "
                        f"inputs, {contract.num_classes} classes) was not exported from {checkpoint} ({model.arch}, "
                        f"T={model.timesteps}, {model.in_channels} inputs, {model.num_classes} classes)")
    model.set_bn_beyond(contract.bn_beyond)
    if inputs is not None:
        source = file_frames(inputs, contract, frames, resize=resize)
    else:
        source = dataset_frames(ckpt, contract, frames or 8)
    layers = list(contract.spike_layers)
    steps = contract.timesteps_trained
    totals = {k: np.zeros((len(layers), steps)) for k in ("agree", "tf_agree", "total", "unexplained")}
    near = tolerance_for(contract.precision).margin * contract.threshold
    stats = {"first": None, "logit": [], "tf_logit": [], "tf_scale": 0.0, "same": 0, "pixels": 0, "frames": 0}
    k = contract.num_classes
    conf = {"reference": np.zeros((k, k), np.int64), "runtime": np.zeros((k, k), np.int64)}
    labelled = True

    with spike_graphs(proto, contract) as (free_path, teacher_path):
        with Session(free_path, seed=seed, backend=backend) as free, Session(teacher_path, seed=seed, backend=backend, contract=contract) as teacher:
            if progress:
                from tqdm import tqdm

                source = tqdm(source, total=frames, desc="parity", unit="frame")
            for index, (x, label) in enumerate(source):
                spikes = free.encode(x, frame_index=index)
                with torch.no_grad():
                    ref = model.run(torch.from_numpy(spikes), record_spikes=True)
                ref_spikes = {layer: [s.numpy() for s in ref.spikes[layer]] for layer in layers}
                ref_near = {layer: [np.abs(m.numpy()) <= near for m in ref.margins[layer]] for layer in layers}
                ref_logits = ref.logits.numpy()
                outputs, got = run_with_spikes(free.runner, contract, spikes)
                tf_outputs, forced = run_with_spikes(teacher.runner, contract, spikes, teacher=ref_spikes)
                _count_agreement(layers, steps, ref_spikes, ref_near, got, forced, totals, stats)
                rt_logits = outputs[C.LOGITS]
                stats["logit"].append(float(np.abs(ref_logits - rt_logits).max()))
                stats["tf_logit"].append(float(np.abs(ref_logits - tf_outputs[C.LOGITS]).max()))
                stats["tf_scale"] = max(stats["tf_scale"], float(np.abs(ref_logits).max()))
                ref_map, rt_map = ref_logits.argmax(1), rt_logits.argmax(1)
                stats["same"] += int((ref_map == rt_map).sum())
                stats["pixels"] += ref_map.size
                stats["frames"] += 1
                if label is None:
                    labelled = False
                else:
                    conf["reference"] += confusion_matrix(label[None], ref_map, k)
                    conf["runtime"] += confusion_matrix(label[None], rt_map, k)
    if stats["frames"] == 0:
        raise UserError("no frames to compare; give --frames >= 1 or an --input with frames in it")
    report = _report(contract, layers, totals, stats, conf if labelled else None)
    report["backend"] = backend
    report["inputs"] = str(inputs) if inputs is not None else "held-out data of the checkpoint"
    if contract.checkpoint_sha256 and contract.checkpoint_sha256 != file_sha256(checkpoint):
        report["notes"].append(f"{model_path} records another checkpoint (SHA-256 {contract.checkpoint_sha256[:12]}...) "
                               f"than {checkpoint}")
    return report


def _count_agreement(layers, steps, ref_spikes, ref_near, got, forced, totals, stats) -> None:
    """Add one frame's agreements; a teacher-forced flip is *unexplained* unless the reference's membrane
    was near the threshold then, or the neuron already flipped earlier in the frame."""
    for li, layer in enumerate(layers):
        flipped_before = np.zeros(ref_spikes[layer][0].shape, dtype=bool)
        for t in range(steps):
            same = ref_spikes[layer][t] == got[layer][t]
            totals["agree"][li, t] += same.sum()
            totals["total"][li, t] += same.size
            flips = ref_spikes[layer][t] != forced[layer][t]
            totals["tf_agree"][li, t] += flips.size - flips.sum()
            totals["unexplained"][li, t] += (flips & ~ref_near[layer][t] & ~flipped_before).sum()
            flipped_before |= flips
            first = stats["first"]
            if not same.all() and (first is None or (t, li) < (first[1], layers.index(first[0]))):
                stats["first"] = (layer, t)


def _report(contract, layers, totals, stats, conf) -> dict:
    tolerance = tolerance_for(contract.precision)
    total = totals["total"]
    per_layer = lambda key: dict(zip(layers, (totals[key].sum(1) / total.sum(1)).tolist()))  # noqa: E731
    first = stats["first"]
    report = {
        "frames": stats["frames"], "precision": contract.precision, "layout": contract.layout,
        "timesteps": contract.timesteps, "layers": layers,
        "spike_agreement_per_layer": per_layer("agree"),
        "spike_agreement_per_step": (totals["agree"].sum(0) / total.sum(0)).tolist(),
        "spike_agreement": (totals["agree"] / np.maximum(total, 1)).tolist(),
        "first_divergence": None if first is None else {"layer": first[0], "step": first[1]},
        "teacher_forced_agreement_per_layer": per_layer("tf_agree"),
        "unexplained_flips_per_layer": dict(zip(layers, totals["unexplained"].sum(1).astype(int).tolist())),
        "max_logit_error": max(stats["logit"]),
        "teacher_forced_max_logit_error": max(stats["tf_logit"]),
        "logit_bound": tolerance.logit_bound(stats["tf_scale"]),
        "pixel_agreement": stats["same"] / max(stats["pixels"], 1),
        "miou_reference": None if conf is None else mean_iou(conf["reference"]),
        "miou_runtime": None if conf is None else mean_iou(conf["runtime"]),
        "tolerance": tolerance.to_dict(),
        "notes": [],
    }
    report["failures"] = verdict(report, tolerance)
    report["passed"] = not report["failures"]
    return report


def verdict(report: dict, tolerance) -> list[str]:
    """Every way ``report`` falls outside ``tolerance`` (empty: it passes)."""
    failures = [f"{layer}: teacher-forced spike agreement {value:.6f} < {tolerance.spike_agreement}"
                for layer, value in report["teacher_forced_agreement_per_layer"].items()
                if value < tolerance.spike_agreement]
    failures += [f"{layer}: {count} teacher-forced spike flip(s) where the reference membrane was not within "
                 f"{tolerance.margin:g} x theta of the threshold (the layer's own arithmetic differs)"
                 for layer, count in report["unexplained_flips_per_layer"].items() if count]
    if report["teacher_forced_max_logit_error"] > report["logit_bound"]:
        failures.append(f"teacher-forced max |logit error| {report['teacher_forced_max_logit_error']:.3g} > "
                        f"{report['logit_bound']:.3g}")
    if report["pixel_agreement"] < tolerance.pixel_agreement:
        failures.append(f"class maps agree on {report['pixel_agreement'] * 100:.4f}% of pixels < "
                        f"{tolerance.pixel_agreement * 100:.2f}%")
    if report["miou_reference"] is not None and abs(report["miou_reference"] - report["miou_runtime"]) > tolerance.miou_delta:
        failures.append(f"mIoU differs by {abs(report['miou_reference'] - report['miou_runtime']):.4f} > {tolerance.miou_delta}")
    return failures


def format_report(report: dict) -> str:
    t = report["tolerance"]
    lines = [f"parity over {report['frames']} frames ({report['precision']}, {report['layout']}, "
             f"T={report['timesteps']} per call, {report.get('backend', 'onnxruntime')})"]
    lines.append(f"{'layer':>10s}  {'spikes agree':>12s}  {'teacher-forced':>14s}  {'unexplained':>11s}"
                 f"  (teacher-forced >= {t['spike_agreement']}, no unexplained flip)")
    for layer in report["layers"]:
        lines.append(f"{layer:>10s}  {report['spike_agreement_per_layer'][layer]:12.6f}  "
                     f"{report['teacher_forced_agreement_per_layer'][layer]:14.6f}  "
                     f"{report['unexplained_flips_per_layer'][layer]:11d}")
    lines.append("spike agreement per step: " + " ".join(f"{v:.4f}" for v in report["spike_agreement_per_step"]))
    fd = report["first_divergence"]
    lines.append("first divergence: " + ("none (spikes identical)" if fd is None else f"layer {fd['layer']} at step {fd['step']}"))
    lines.append(f"max |logit error| {report['max_logit_error']:.3g} free-running, "
                 f"{report['teacher_forced_max_logit_error']:.3g} teacher-forced (must be <= {report['logit_bound']:.3g})")
    lines.append(f"class-map pixel agreement {report['pixel_agreement'] * 100:.4f}%  (need >= {t['pixel_agreement'] * 100:.2f}%)")
    if report["miou_reference"] is None:
        lines.append("mIoU: no labels for these frames")
    else:
        lines.append(f"mIoU reference {report['miou_reference']:.4f}  runtime {report['miou_runtime']:.4f}  "
                     f"(|diff| must be <= {t['miou_delta']:.4f})")
    lines += [f"note: {n}" for n in report.get("notes", [])]
    if report["passed"]:
        lines.append("PASS")
    else:
        lines.append("FAIL: outside the tolerance for this precision:")
        lines += [f"  - {f}" for f in report["failures"]]
    return "\n".join(lines)
