"""``edge-snn parity``: the PyTorch reference against an exported graph, on identical spikes.

Both paths get the same encoded input (the runtime's encoder, same seed). A
threshold turns a rounding difference into a spike flip that then cascades
through later layers and steps, so two views are reported:

* free-running: each path feeds itself; spike agreement per (layer, step),
  the first (layer, step) where spikes diverge, logit error, class-map
  agreement and each path's mIoU;
* teacher-forced: the same graph rewired so that every layer reads the
  *reference's* input spikes, so a layer's disagreement is its own numeric
  error, not a cascade from upstream.

Tolerances depend on the graph's precision (``TOLERANCES``); the command exits
non-zero past them.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from edge_snn.errors import UserError
from edge_snn.runtime import contract as C
from edge_snn.runtime.metrics import confusion_matrix, mean_iou
from edge_snn.runtime.model_file import contract_of, load_onnx_file
from edge_snn.runtime.session import Session


@dataclass(frozen=True)
class Tolerance:
    """Minimum class-map pixel agreement and maximum |mIoU difference| (fraction, 0.002 = 0.2 points)."""

    pixel_agreement: float
    miou_delta: float


TOLERANCES = {
    "fp32": Tolerance(pixel_agreement=0.999, miou_delta=0.002),
    "fp16": Tolerance(pixel_agreement=0.995, miou_delta=0.01),
    "int8-qdq": Tolerance(pixel_agreement=0.995, miou_delta=0.01),
}


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


def _spike_names(contract: C.ModelContract) -> dict[str, list[str]]:
    if contract.layout == "time-major":
        return {layer: [C.spike_tensor_name(layer, t) for t in range(contract.timesteps)] for layer in contract.spike_layers}
    return {layer: [C.spike_tensor_name(layer, None)] for layer in contract.spike_layers}


def _split_steps(arrays: list[np.ndarray], contract: C.ModelContract) -> list[np.ndarray]:
    """Per-call spike outputs -> one ``[B, C, h, w]`` array per step."""
    if contract.layout == "time-major":
        return arrays
    (folded,) = arrays
    return list(folded.reshape(contract.timesteps, -1, *folded.shape[1:]))


def _reference_model(checkpoint):
    from edge_snn.training.checkpoint import load_checkpoint, model_from_checkpoint

    ckpt = load_checkpoint(checkpoint)
    model, _ = model_from_checkpoint(ckpt)
    return model, ckpt


def parity_frames(ckpt: dict, contract: C.ModelContract, frames: int):
    """``frames`` held-out inputs (and labels) of the checkpoint's own dataset."""
    from edge_snn.training.config import TrainConfig
    from edge_snn.training.datasets import make_dataset

    config = TrainConfig.from_dict(ckpt.get("train_config", {}))
    if (config.height, config.width_px) != (contract.height, contract.width):
        config = TrainConfig.from_dict({**config.to_dict(), "height": contract.height, "width_px": contract.width})
    dataset = make_dataset(config, "test", num_samples=frames)
    for i in range(min(frames, len(dataset))):
        x, label = dataset[i]
        yield x.numpy(), label.numpy()


def run_parity(checkpoint: str | Path, model_path: str | Path, *, frames: int = 8, seed: int = 0,
               teacher_forced: bool = True, progress: bool = False) -> dict:
    """Compare reference and runtime on ``frames`` held-out scenes; returns the report dict."""
    proto = load_onnx_file(model_path, load_weights=True)
    contract = contract_of(proto, str(model_path))
    if contract.batch != 1:
        raise UserError(f"parity runs frame by frame: export the model with --batch 1 (this one has batch {contract.batch})")
    model, ckpt = _reference_model(checkpoint)
    if model.arch != contract.architecture or model.timesteps != contract.timesteps_trained:
        raise UserError(f"{model_path} ({contract.architecture}, T={contract.timesteps_trained}) was not exported "
                        f"from {checkpoint} ({model.arch}, T={model.timesteps})")
    model.set_bn_beyond(contract.bn_beyond)
    spike_names = _spike_names(contract)
    extended = _with_spike_outputs(proto, [n for names in spike_names.values() for n in names])
    teacher_graph = _teacher_forced_graph(proto, contract) if teacher_forced else None

    layers = list(contract.spike_layers)
    steps = contract.timesteps_trained
    agree = np.zeros((len(layers), steps))
    total = np.zeros((len(layers), steps))
    tf_agree = np.zeros((len(layers), steps))
    first_divergence = None
    logit_err = []
    pixel_same = pixel_total = 0
    k = contract.num_classes
    conf_ref = np.zeros((k, k), np.int64)
    conf_rt = np.zeros((k, k), np.int64)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "extended.onnx"
        onnx.save(extended, str(path))
        session = Session(path, seed=seed)
        teacher = None
        if teacher_graph is not None:
            tpath = Path(tmp) / "teacher.onnx"
            onnx.save(teacher_graph[0], str(tpath))
            teacher = Session(tpath, seed=seed)
        frame_iter = parity_frames(ckpt, contract, frames)
        if progress:
            from tqdm import tqdm

            frame_iter = tqdm(frame_iter, total=frames, desc="parity", unit="frame")
        for index, (x, label) in enumerate(frame_iter):
            spikes = session.encode(x, frame_index=index)
            with torch.no_grad():
                ref = model.run(torch.from_numpy(spikes), record_spikes=True)
            ref_spikes = {layer: [s.numpy() for s in ref.spikes[layer]] for layer in layers}
            # runtime, free-running
            state, rt_spikes = session.fresh_state(), {layer: [] for layer in layers}
            outputs = {}
            for call in range(steps // contract.timesteps):
                chunk = spikes[call * contract.timesteps:(call + 1) * contract.timesteps]
                outputs, state = session.runner.step({C.INPUT: chunk}, state)
                for layer in layers:
                    rt_spikes[layer] += _split_steps([outputs[n] for n in spike_names[layer]], contract)
            for li, layer in enumerate(layers):
                for t in range(steps):
                    same = ref_spikes[layer][t] == rt_spikes[layer][t]
                    agree[li, t] += same.sum()
                    total[li, t] += same.size
                    if not same.all() and (first_divergence is None or (t, li) < (first_divergence[1], layers.index(first_divergence[0]))):
                        first_divergence = (layer, t)
            ref_logits = ref.logits.numpy()
            rt_logits = outputs[C.LOGITS]
            logit_err.append(float(np.abs(ref_logits - rt_logits).max()))
            ref_map, rt_map = ref_logits.argmax(1), rt_logits.argmax(1)
            pixel_same += int((ref_map == rt_map).sum())
            pixel_total += ref_map.size
            conf_ref += confusion_matrix(label[None], ref_map, k)
            conf_rt += confusion_matrix(label[None], rt_map, k)
            if teacher is not None:
                _teacher_step(teacher, teacher_graph[1], contract, spikes, ref_spikes, layers, tf_agree)
        session.close()
        if teacher is not None:
            teacher.close()

    tolerance = TOLERANCES.get(contract.precision, TOLERANCES["fp32"])
    pixel_agreement = pixel_same / max(pixel_total, 1)
    miou_ref, miou_rt = mean_iou(conf_ref), mean_iou(conf_rt)
    report = {
        "frames": frames, "precision": contract.precision, "layout": contract.layout, "timesteps": contract.timesteps,
        "layers": layers,
        "spike_agreement_per_layer": dict(zip(layers, (agree.sum(1) / total.sum(1)).tolist())),
        "spike_agreement_per_step": (agree.sum(0) / total.sum(0)).tolist(),
        "spike_agreement": (agree / np.maximum(total, 1)).tolist(),
        "first_divergence": None if first_divergence is None else {"layer": first_divergence[0], "step": first_divergence[1]},
        "teacher_forced_agreement_per_layer": dict(zip(layers, (tf_agree.sum(1) / total.sum(1)).tolist())) if teacher_forced else None,
        "max_logit_error": max(logit_err) if logit_err else 0.0,
        "pixel_agreement": pixel_agreement,
        "miou_reference": miou_ref, "miou_runtime": miou_rt,
        "tolerance": {"pixel_agreement": tolerance.pixel_agreement, "miou_delta": tolerance.miou_delta},
    }
    report["passed"] = bool(pixel_agreement >= tolerance.pixel_agreement and abs(miou_ref - miou_rt) <= tolerance.miou_delta)
    return report


def _teacher_forced_graph(proto: onnx.ModelProto, contract: C.ModelContract):
    """The user's own graph, rewired so that every layer reads the reference's input spikes.

    Each named spike tensor keeps being computed (and is exposed as an
    output), but its consumers read a new graph input ``teacher.<name>``
    instead; the layer's own reset still uses its own spikes.
    """
    names = _spike_names(contract)
    flat = [n for v in names.values() for n in v]
    graph = _with_spike_outputs(proto, flat)
    shapes = {o.name: o for o in graph.graph.output}
    for node in graph.graph.node:
        for i, name in enumerate(node.input):
            if name in shapes and name in flat:
                node.input[i] = "teacher." + name
    for name in flat:
        info = onnx.ValueInfoProto()
        info.CopyFrom(shapes[name])
        info.name = "teacher." + name
        graph.graph.input.append(info)
    return graph, {layer: ["teacher." + n for n in v] for layer, v in names.items()}


def _teacher_step(session: Session, teacher_inputs: dict, contract, spikes, ref_spikes, layers, tf_agree) -> None:
    names = _spike_names(contract)
    state = session.fresh_state()
    for call in range(contract.timesteps_trained // contract.timesteps):
        lo, hi = call * contract.timesteps, (call + 1) * contract.timesteps
        feed = {C.INPUT: spikes[lo:hi]}
        for layer, inputs in teacher_inputs.items():
            if contract.layout == "time-major":
                for t, name in enumerate(inputs):
                    feed[name] = ref_spikes[layer][lo + t]
            else:
                feed[inputs[0]] = np.concatenate(ref_spikes[layer][lo:hi])
        outputs, state = session.runner.step(feed, state)
        for li, layer in enumerate(layers):
            got = _split_steps([outputs[n] for n in names[layer]], contract)
            for t, s in enumerate(got):
                tf_agree[li, lo + t] += (s == ref_spikes[layer][lo + t]).sum()


def format_report(report: dict) -> str:
    lines = [f"parity over {report['frames']} frames ({report['precision']}, {report['layout']}, T={report['timesteps']} per call)"]
    lines.append(f"{'layer':>10s}  {'spikes agree':>12s}  {'teacher-forced':>14s}")
    for layer in report["layers"]:
        tf = report["teacher_forced_agreement_per_layer"]
        lines.append(f"{layer:>10s}  {report['spike_agreement_per_layer'][layer]:12.6f}  "
                     f"{'-' if tf is None else f'{tf[layer]:.6f}':>14s}")
    per_step = report["spike_agreement_per_step"]
    lines.append("spike agreement per step: " + " ".join(f"{v:.4f}" for v in per_step))
    fd = report["first_divergence"]
    lines.append("first divergence: " + ("none (spikes identical)" if fd is None else f"layer {fd['layer']} at step {fd['step']}"))
    lines.append(f"max |logit error| {report['max_logit_error']:.3g}")
    lines.append(f"class-map pixel agreement {report['pixel_agreement'] * 100:.4f}%  (need >= {report['tolerance']['pixel_agreement'] * 100:.2f}%)")
    lines.append(f"mIoU reference {report['miou_reference']:.4f}  runtime {report['miou_runtime']:.4f}  "
                 f"(|diff| must be <= {report['tolerance']['miou_delta']:.4f})")
    lines.append("PASS" if report["passed"] else "FAIL: outside the tolerance for this precision")
    return "\n".join(lines)
