"""Where the time of a frame goes, by ONNX op and by conv layer, from ONNX Runtime's own profiler."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge_snn.runtime.bench.frames import check_spikes


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
    from edge_snn.runtime.backends.onnxrt import OnnxRuntimeRunner, SessionFromOnnx
    from edge_snn.runtime.backends.onnxrt.tap_blocks import source_node
    from edge_snn.runtime.model_file import load_contract
    from edge_snn.runtime.streaming import run_steps

    contract = load_contract(str(path))
    frames = check_spikes(frames, contract)
    with tempfile.TemporaryDirectory() as tmp:
        loader = SessionFromOnnx(path, providers=providers or ["CPUExecutionProvider"], threads=threads,
                                 profile_prefix=str(Path(tmp) / "profile"))
        with OnnxRuntimeRunner(loader) as runner:
            for i in range(warmup):
                run_steps(runner, contract, frames[i % len(frames)])
            for frame in frames:
                run_steps(runner, contract, frame)
            events = json.loads(Path(runner.end_profiling()).read_text())
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
                layer = layer_of.get(node) or layer_of.get(source_node(node), "?")
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
    from edge_snn.runtime.model_file import load_onnx_file

    graph = load_onnx_file(path).graph
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
