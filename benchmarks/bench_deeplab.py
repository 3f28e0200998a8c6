"""Spiking-DeepLab on this machine: PyTorch reference vs ONNX Runtime, against a measured roofline.

One run measures, for dl-vgg9 at width 1.0, 64x64, T=20, batch 1, 3 inputs, 21 classes
(random weights, BN statistics calibrated so that every layer fires at 4-15%):

  (a) PyTorch, time-major ``model.run`` (one step of the whole network at a time, as the authors' code)
  (b) PyTorch, layer-major (each conv once over all T steps)
  (c) ONNX Runtime, time-major graph          (d) ONNX Runtime, layer-major graph
  (e) ONNX Runtime, INT8 QDQ graph (``edge_snn.quantize.quantize_ptq``), ``--int8-layout``
  (f) the sparse backend on (c)'s file          (g) the sparse backend on (e)'s file (integer adds)
  (h) ONNX Runtime, INT8 integer graph (``--int8-form integer``: ConvInteger, one rescale per layer) of the
      same quantized model as (e), ``--int8-layout``; its ratio to the FP32 exports (c)/(d) is printed

and prints each one's speed-up over (a) and its fraction of this machine's roofline, then
latency against T (1, 5, 10, 20) for the best ORT variant and (a), and the SNN against its
ANN twin. Every variant sees the same pre-encoded Poisson frames.

Timed region (all variants): one frame = T steps of one image from a zero state, through
logits on the host. PyTorch: ``model.run(x, layout=...)`` under ``torch.no_grad``. ONNX
Runtime: ``edge_snn.runtime.bench.frame_runner`` (the graph call(s) of one frame incl. input
binding and zero-state upload). Encoding, model load and ``--warmup`` rounds are outside.
Timing is round-robin: each round times one frame of every variant and one run of each
ceiling conv, so all of them see the same machine load; medians over ``--iters`` rounds (a
variant whose timed frames pass ``--budget-s`` leaves after 3 rounds).

Roofline: useful work per frame = 2 x T x effective conv MACs, where a conv's effective MACs
count only kernel taps that read the feature map, not its zero padding (the paper's nominal
count, k*k*C_in*C_out*H_out*W_out, also counts taps in the padding; ONNX Runtime's direct
convolution skips some of them, and conv8's dilation 12 on a 16x16 map leaves only 25% of its
taps inside, so nominal work would let a variant pass 100%). The graphs compute every MAC
whatever the spikes (dense); BN, LIF, pooling and resize are not counted as work. The ceiling
is the FLOP/s the *same backend* reaches on one large dense convolution (3x3, 256->256, batch 1,
64x64: PyTorch for (a)/(b), a one-Conv ONNX graph for (c)/(d), and for (e) the same conv as an
INT8 QDQ graph that ONNX Runtime fuses into QLinearConv).
fraction = (work / p50 latency) / ceiling. The nominal-work fraction is printed too.

The sparse backend (f)/(g) computes only where spikes are, so its roofline counts the synaptic
operations the measured inputs need, against the event kernel's own ceiling; its table columns
give the dense-equivalent rate (the dense work above per p50 frame, against ORT's dense ceiling).
Then: sparse vs ORT parity on one frame (class maps, spikes per layer free-running and
teacher-forced), 1 vs 2 threads, and the spike-rate sweep (BN rescaled to ~1, 3, 10, 30%) with
the per-layer crossover rate; see ``benchmarks/sparse_sections.py``.

Usage: python benchmarks/bench_deeplab.py [--threads N] [--iters 7] [--budget-s 12] [--out runs/bench/deeplab.json]
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import sys
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

from edge_snn.errors import UserError
from edge_snn.export.exporter import ExportOptions, build_graph, save_onnx_atomic
from edge_snn.models import build_model
from edge_snn.runtime.bench import (
    SUITE_SCHEMA,
    collect_environment,
    energy_estimate_section,
    frame_runner,
    latency_summary,
    op_breakdown,
    open_session,
    spike_rates,
    summarize_session,
    time_interleaved,
)
from edge_snn.runtime.conv_taps import inside_pairs
from edge_snn.runtime.encoding import frame_seed, poisson_encode
from edge_snn.runtime.files import write_json_atomic

import sparse_sections as S  # noqa: E402  (benchmarks/ is on sys.path when this script runs)

ARCH, H, W, C_IN, K, T = "dl-vgg9", 64, 64, 3, 21, 20
SWEEP = (1, 5, 10, 20)
GOAL_SPEEDUP, GOAL_ROOFLINE = 1.6, 0.85
CKPT = {"data": {"height": H, "width": W, "encoding": "poisson"}}
TORCH_REGION = ("model.run(x, layout) under torch.no_grad: T steps from a zero state through logits; "
                "input tensor made from the pre-encoded frame before timing; excl. warm-up")
ROOF_CONV = (1, 256, 64, 64, 256)  # batch, c_in, h, w, c_out; 3x3, pad 1
CEILING_OF = {"a": "torch_fp32", "b": "torch_fp32", "c": "ort_fp32", "d": "ort_fp32", "e": "ort_int8_qlinearconv",
              "f": "ort_fp32", "g": "ort_fp32", "h": "ort_int8_qlinearconv"}  # (f)/(g): the dense-equivalent rate; their useful-work roofline is separate


def log(msg: str) -> None:
    print(msg, flush=True)


# --- the model ------------------------------------------------------------------------
@torch.no_grad()
def calibrate_firing(model, frames, targets, passes: int = 5) -> dict[str, float]:
    """Set BNTT statistics from the data and scale gamma until layer l fires at about ``targets[l]``.

    Each pass runs the frames layer-major, records every conv output's per-channel
    mean/variance and each layer's spike rate, then sets ``running_mean``/``running_var``
    (all steps alike) and multiplies gamma by ``(target / rate) ** 0.8``.
    """
    stats, hooks = {}, []
    for name in model.spiking_layers:
        def hook(_m, _i, out, name=name):
            stats[name] = (out.mean(dim=(0, 2, 3)), out.var(dim=(0, 2, 3)))
        hooks.append(model.convs[name].register_forward_hook(hook))
    gamma = {name: 1.0 for name in model.spiking_layers}
    rates = {}
    try:
        for _ in range(passes):
            result = model.run(frames, layout="layer-major")
            shapes = model.state_spec(frames.shape[1], H, W)
            rates = {n: result.spike_counts[n].item() / (np.prod(shapes[n]) * frames.shape[0]) for n in model.spiking_layers}
            for n, target in zip(model.spiking_layers, targets):
                gamma[n] *= float(np.clip((target / max(rates[n], 1e-4)) ** 0.8, 0.25, 4.0))
                mean, var = stats[n]
                for bn in model.norms[n].steps:
                    bn.running_mean.copy_(mean)
                    bn.running_var.copy_(var.clamp_min(1e-6))
                    bn.weight.data.fill_(gamma[n])
        result = model.run(frames, layout="layer-major")
        rates = {n: result.spike_counts[n].item() / (np.prod(shapes[n]) * frames.shape[0]) for n in model.spiking_layers}
    finally:
        for h in hooks:
            h.remove()
    return rates


@torch.no_grad()
def conv_work(model) -> dict[str, tuple[int, int]]:
    """Per conv layer, (nominal MACs, effective MACs) of one step at HxW, batch 1.

    Nominal: k*k*C_in*C_out*H_out*W_out (the paper's count). Effective: only taps that read
    the feature map, not its zero padding; ONNX Runtime's direct convolution skips the rest
    (conv8's dilation 12 on a 16x16 map leaves 25% of its taps inside).
    """
    rows = {}
    names = {m: n.split(".")[-1] for n, m in model.named_modules()}

    def hook(m, inputs, out):
        h_in, w_in = inputs[0].shape[-2:]
        h_out, w_out = out.shape[-2:]
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = m.kernel_size, m.stride, m.padding, m.dilation
        per_tap = m.in_channels // m.groups * m.out_channels
        rows[names[m]] = (kh * kw * h_out * w_out * per_tap,
                          inside_pairs(h_in, h_out, kh, sh, ph, dh) * inside_pairs(w_in, w_out, kw, sw, pw, dw) * per_tap)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        model.run(torch.zeros(1, 1, C_IN, H, W))
    finally:
        for h in handles:
            h.remove()
    return rows


def with_timesteps(model, steps: int):
    """The same network trained for ``steps`` steps: same convs, the first ``steps`` BNTT sets."""
    small = build_model(ARCH, in_channels=C_IN, num_classes=K, timesteps=steps).eval()
    keep = {k: v for k, v in model.state_dict().items()
            if not (m := re.search(r"\.steps\.(\d+)\.", k)) or int(m.group(1)) < steps}
    small.load_state_dict(keep)
    return small


def ann_twin(model, images):
    """The ANN twin with the SNN's conv weights and BN statistics from ``images``."""
    ann = build_model(ARCH, in_channels=C_IN, num_classes=K, spiking=False)
    ann.load_state_dict({k: v for k, v in model.state_dict().items() if k.startswith(("convs.", "classifier."))},
                        strict=False)
    for m in ann.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average: one pass gives the batch statistics
    with torch.no_grad():
        ann.train()
        ann.run(images)
    return ann.eval()


def export(model, path: Path, *, steps: int, layout: str, int8_form: str = "qdq") -> Path:
    proto, _ = build_graph(model, CKPT, ExportOptions(timesteps=steps, layout=layout, int8_form=int8_form))
    save_onnx_atomic(proto, path)
    return path


# --- roofline ceilings ------------------------------------------------------------------
def _conv_graph(int8: bool, fused: bool) -> onnx.ModelProto:
    b, c, h, w, k = ROOF_CONV
    rng = np.random.default_rng(0)
    inits, nodes, x = [], [], "x"
    if int8:
        weight = rng.integers(-127, 128, (k, c, 3, 3)).astype(np.int8)
        inits += [helper.make_tensor("w_q", TensorProto.INT8, weight.shape, weight.tobytes(), raw=True),
                  helper.make_tensor("w_s", TensorProto.FLOAT, [k], np.full(k, 0.01, np.float32)),
                  helper.make_tensor("w_z", TensorProto.INT8, [k], np.zeros(k, np.int8).tobytes(), raw=True),
                  helper.make_tensor("s", TensorProto.FLOAT, [], [1.0]),
                  helper.make_tensor("z", TensorProto.INT8, [], np.zeros(1, np.int8).tobytes(), raw=True)]
        nodes += [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["x_q"]),
                  helper.make_node("DequantizeLinear", ["x_q", "s", "z"], ["x_dq"]),
                  helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], axis=0)]
        x = "x_dq"
    else:
        inits.append(helper.make_tensor("w", TensorProto.FLOAT, [k, c, 3, 3], rng.standard_normal((k, c, 3, 3)).astype(np.float32)))
    conv_out = "y_f" if int8 and fused else "y"
    nodes.append(helper.make_node("Conv", [x, "w"], [conv_out], pads=[1, 1, 1, 1]))
    if int8 and fused:  # a Q after the conv lets ONNX Runtime fuse the group into QLinearConv
        nodes += [helper.make_node("QuantizeLinear", ["y_f", "s", "z"], ["y_q"]),
                  helper.make_node("DequantizeLinear", ["y_q", "s", "z"], ["y"])]
    graph = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [b, c, h, w])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [b, k, h, w])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


# --- explaining a miss -------------------------------------------------------------------
def explain(breakdown: dict, conv_flops: float, ceiling: float, per_layer: dict[str, tuple[int, int]]) -> list[str]:
    """Why a variant misses: where its time goes, and how fast its convs run against the ceiling.

    ``per_layer`` holds (nominal, effective) MACs per step; T is in ``conv_flops`` / the per-layer sum.
    """
    ops = breakdown["ops"]
    conv_ms = sum(o["ms_per_frame"] for o in ops if "Conv" in o["op"])
    node_ms, run_ms = breakdown["node_ms_per_frame"], breakdown["run_ms_per_frame"]
    top = ", ".join(f"{o['op']} {o['share']:.0%}" for o in ops[:6])
    lines = [f"    op time (ORT profiler, {breakdown['frames']} frames): {top}"]
    if conv_ms:
        rate = conv_flops / (conv_ms / 1e3)
        lines.append(f"    convs: {conv_ms:.0f} ms/frame = {rate / 1e9:.1f} GFLOP/s, {rate / ceiling:.0%} of the dense-conv "
                     f"ceiling; non-conv ops (BN scale, LIF, pool, Q/DQ, copies) {1 - conv_ms / node_ms:.0%} of node time; "
                     f"between-node overhead {max(run_ms - node_ms, 0) / run_ms:.0%} of the run")
        steps = conv_flops / (2.0 * sum(v[1] for v in per_layer.values()))
        parts = []
        for layer, ms in breakdown.get("conv_layers", {}).items():
            if layer in per_layer and ms > 0:
                eff = 2.0 * per_layer[layer][1] * steps / (ms / 1e3)
                parts.append(f"{layer} {ms:.0f} ms {eff / 1e9:.0f} G/s ({eff / ceiling:.0%})")
        if parts:
            lines.append("    per conv layer (ms/frame, effective FLOP/s, of ceiling): " + ", ".join(parts))
    qdq = sum(o["share"] for o in ops if o["op"] in ("QuantizeLinear", "DequantizeLinear"))
    integer = any(o["op"] == "ConvInteger" for o in ops)  # (h): Q/DQ are its input quantizers and rescales
    if integer:
        lines.append(f"    integer form: {qdq:.0%} of node time in QuantizeLinear (inputs) and DequantizeLinear (one "
                     "int32 -> float rescale per conv); ConvInteger is im2col + an integer GEMM, so it multiplies padded "
                     "taps too, except in the convs ONNX Runtime's loader splits into tap blocks (conv8; FP32 convs likewise)")
    if qdq > 0.02 and not integer and not any(o["op"] == "QLinearConv" for o in ops):
        lines.append(f"    {qdq:.0%} of node time in Quantize/DequantizeLinear and no QLinearConv ran: ORT fuses a QDQ conv "
                     "only when a QuantizeLinear follows it, and these conv outputs stay float (they feed BN and the "
                     "membrane); so each conv runs in float, its weights dequantized on every call (the QDQ form "
                     "targets TensorRT)")
    nchwc = breakdown.get("conv_nchwc_fraction")
    if nchwc is not None and nchwc < 0.5 and not integer:
        lines.append(f"    only {nchwc:.0%} of conv nodes run in ORT's NCHWc direct convolution (it needs constant "
                     "weights); the rest use im2col + GEMM and compute every tap in the zero padding, e.g. all of "
                     "conv8's dilation-12 taps")
    return lines




def _ort_session(path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def ceiling_runners(tmp: Path, threads: int) -> tuple[dict, float]:
    """Runners of the one large dense conv through each backend (for ``time_interleaved``), and its FLOPs."""
    b, c, h, w, k = ROOF_CONV
    x = (np.random.default_rng(1).random((b, c, h, w)) < 0.2).astype(np.float32)  # spikes: exact in INT8
    conv = torch.nn.Conv2d(c, k, 3, padding=1, bias=False).eval()
    xt = torch.from_numpy(x)
    runners = {"torch_fp32": (lambda _: conv(xt), [None])}
    for key, int8, fused in (("ort_fp32", False, False), ("ort_int8_qlinearconv", True, True),
                             ("ort_int8_qdq_unfused", True, False)):
        path = tmp / f"{key}.onnx"
        onnx.save(_conv_graph(int8, fused), str(path))
        session = _ort_session(path, threads)
        runners[key] = (lambda _, s=session: s.run(None, {"x": x}), [None])
    return runners, 2.0 * b * k * h * w * c * 9


# --- results ------------------------------------------------------------------------------
def torch_summary(model, frames, layout: str, latencies, results, *, warmup: int, name: str, series: str) -> dict:
    """A run document for PyTorch timings, with the same fields as ``summarize_session`` gives ORT."""
    steps, n = frames[0].shape[0], len(latencies)
    counts = {k: float(sum(r.spike_counts[k].item() for r in results)) for k in model.spiking_layers}
    elements = {k: int(np.prod(s)) for k, s in model.state_spec(1, H, W).items()}
    used = [frames[i % len(frames)] for i in range(n)]
    rates = spike_rates(counts, elements, steps, n, float(np.mean([np.count_nonzero(f) / f.size for f in used])))
    return {
        "name": name, "series": series, "kind": "snn", "backend": "pytorch", "providers": [],
        "threads": torch.get_num_threads(), "iters": n, "warmup": warmup, "timed_region": TORCH_REGION,
        "model": {"architecture": ARCH, "layout": layout, "timesteps": steps, "timesteps_per_call": steps,
                  "calls_per_frame": 1, "batch": 1, "precision": "fp32", "encoding": "poisson"},
        **latency_summary(latencies, 1),
        "spikes": rates,
        "energy_estimate": energy_estimate_section(model.conv_layers(H, W), rates, steps, "poisson"),
        "energy_measured": {"label": "measured", "source": "not measured",
                            "note": "not attempted for PyTorch variants", "joules_per_frame": None},
    }


def ort_summary(session, frames, latencies, outputs, *, args, name: str, series: str) -> dict:
    """``summarize_session`` (measured energy where a sensor exists), one environment per suite."""
    run = summarize_session(session, frames, latencies, outputs, warmup=args.warmup, threads=args.threads, name=name,
                            energy_seconds=3.0, idle_seconds=3.0)
    run.pop("environment")
    run["series"], run["kind"] = series, "snn"
    return run


def timed(runners: dict, args) -> dict:
    with torch.no_grad():
        return time_interleaved(runners, iters=args.iters, warmup=args.warmup, budget_s=args.budget_s)


# --- the parts of one run -------------------------------------------------------------------
def run_variants(model, frames, calib, tmp: Path, args) -> tuple[dict, dict, dict, dict]:
    """(a)-(e) at T=20 and the ceilings, interleaved: (runs, ONNX paths, ceilings FLOP/s, skipped)."""
    inputs = [torch.from_numpy(f) for f in frames]
    runners = {key: (lambda x, layout=layout: model.run(x, layout=layout), inputs)
               for key, layout in (("a", "time-major"), ("b", "layer-major"))}
    paths = {key: export(model, tmp / f"{key}.onnx", steps=T, layout=layout)
             for key, layout in (("c", "time-major"), ("d", "layer-major"))}
    skipped = {}
    try:
        from edge_snn.quantize import quantize_ptq

        quantized = quantize_ptq(copy.deepcopy(model), [calib])
        paths["e"] = export(quantized, tmp / "e.onnx", steps=T, layout=args.int8_layout)
        paths["h"] = export(quantized, tmp / "h.onnx", steps=T, layout=args.int8_layout, int8_form="integer")
    except ImportError as err:
        skipped["e"] = f"skipped: quantization not available ({err})"
    except UserError as err:  # e.g. brevitas missing
        skipped["e"] = f"skipped: quantization not available ({err})"
    except Exception as err:  # a variant that fails must not hide the others
        skipped["e"] = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
    sessions = {key: open_session(path, threads=args.threads) for key, path in paths.items()}
    sessions.update(S.open_sparse(paths, args.threads))
    runners.update({key: (frame_runner(s), frames) for key, s in sessions.items()})
    ceilings, flops = ceiling_runners(tmp, args.threads)
    runners.update({f"ceiling {k}": v for k, v in ceilings.items()})
    sparse_ceiling, sparse_ops = S.sparse_ceiling_runner(ROOF_CONV, args.threads)
    runners["ceiling sparse_event"] = sparse_ceiling
    log(f"timing {', '.join(runners)}: {args.warmup} warm-up + {args.iters} timed rounds")
    results = timed(runners, args)
    runs = {}
    for key, layout in (("a", "time-major"), ("b", "layer-major")):
        runs[key] = torch_summary(model, frames, layout, *results[key], warmup=args.warmup,
                                  name=f"({key}) PyTorch {layout}", series=f"PyTorch {layout}")
    for key, session in sessions.items():
        layout, precision = session.contract.layout, {"e": "int8", "g": "int8", "h": "int8-integer"}.get(key, "fp32")
        engine = "sparse" if key in S.SPARSE_KEYS else "ORT"
        form = {"e": "INT8 QDQ ", "g": "INT8 QDQ ", "h": "INT8 integer "}.get(key, "")
        name = f"({key}) {engine} {form}{layout}"
        if key in S.SPARSE_KEYS:
            work = S.work_per_frame(session)  # before summarize_session runs further frames
        runs[key] = ort_summary(session, frames, *results[key], args=args, name=name, series=f"{engine} {layout} {precision}")
        if key in S.SPARSE_KEYS:
            runs[key]["work"] = work
        session.close()
    for key, run in runs.items():  # round by round, for ratios paired within a round (sparse_sections.sparse_lines)
        run["rounds_ms"] = [x * 1e3 for x in results[key][0]]
    ceilings_flops = {k: flops / float(np.median(results[f"ceiling {k}"][0])) for k in ceilings}
    ceilings_flops["sparse_event"] = sparse_ops / float(np.median(results["ceiling sparse_event"][0]))
    return runs, paths, ceilings_flops, skipped


def score(runs, paths, skipped, ceilings, per_layer, frames, threads):
    """Speed-up over (a) and roofline fraction of each variant; profiles of ORT variants that miss a goal."""
    nominal = 2.0 * sum(v[0] for v in per_layer.values()) * T
    work = 2.0 * sum(v[1] for v in per_layer.values()) * T
    ref = runs["a"]["latency_ms"]["p50"]
    summary = [f"{'variant':<34}{'p50 ms':>9}{'p90 ms':>9}{'vs (a)':>8}{'roof eff':>10}{'roof nom':>10}  ceiling",
               "-" * 98]
    for key, run in runs.items():
        p50_s, ceiling = run["latency_ms"]["p50"] / 1e3, ceilings[CEILING_OF[key]]
        if key in S.SPARSE_KEYS:
            run["speedup_vs_a"] = ref / run["latency_ms"]["p50"]
            run["roofline"] = {"work_flop_per_frame": work, "ceiling": CEILING_OF[key], "ceiling_flop_per_s": ceiling,
                               "fraction": work / p50_s / ceiling, "note": "dense-equivalent; see sparse_roofline"}
            summary.append(f"{run['name']:<34}{p50_s * 1e3:>9.1f}{run['latency_ms']['p90']:>9.1f}{run['speedup_vs_a']:>7.2f}x"
                           f"{work / p50_s / ceiling:>10.1%}{'':>10}  dense-equivalent, of {CEILING_OF[key]} {ceiling / 1e9:.1f} G/s")
            continue
        run["speedup_vs_a"] = ref / run["latency_ms"]["p50"]
        run["roofline"] = {"work_flop_per_frame": work, "nominal_flop_per_frame": nominal, "ceiling": CEILING_OF[key],
                           "ceiling_flop_per_s": ceiling, "fraction": work / p50_s / ceiling,
                           "fraction_nominal": nominal / p50_s / ceiling}
        summary.append(f"{run['name']:<34}{p50_s * 1e3:>9.1f}{run['latency_ms']['p90']:>9.1f}{run['speedup_vs_a']:>7.2f}x"
                       f"{run['roofline']['fraction']:>10.1%}{run['roofline']['fraction_nominal']:>10.1%}  "
                       f"{CEILING_OF[key]} {ceiling / 1e9:.1f} G/s")
    summary += [f"(e) ORT INT8 QDQ and (g): {why}" for why in skipped.values()]
    summary += S.sparse_lines(runs, ceilings, work)
    ref_counts = [x["spikes_per_frame"] for x in runs["a"]["spikes"]["layers"]]
    for key in [k for k in "bcdefgh" if k in runs]:
        counts = [x["spikes_per_frame"] for x in runs[key]["spikes"]["layers"]]
        diff = max(abs(c - r) / max(r, 1.0) for c, r in zip(counts, ref_counts))
        why = "INT8 weights" if key in "egh" else "float summation order flips near-threshold neurons"
        summary.append(f"spike counts of ({key}) vs (a): " + ("identical" if diff == 0 else
                       f"largest per-layer relative difference {diff:.2e} ({why})"))
    if "h" in runs:  # the integer form against the FP32 exports of the same network, same rounds
        layout_fp32 = "c" if runs["h"]["model"]["layout"] == "time-major" else "d"
        fastest_fp32 = min("cd", key=lambda k: runs[k]["latency_ms"]["p50"])
        h50 = runs["h"]["latency_ms"]["p50"]
        summary.append(f"(h) INT8 integer vs ORT FP32: {runs[layout_fp32]['latency_ms']['p50'] / h50:.2f}x faster than "
                       f"({layout_fp32}) (same layout), {runs[fastest_fp32]['latency_ms']['p50'] / h50:.2f}x than the "
                       f"faster FP32 export ({fastest_fp32}); {runs['e']['latency_ms']['p50'] / h50:.2f}x than (e) QDQ "
                       f"(must show >= 1.5x vs FP32, goal ~1.9x)")
    ort_keys = [k for k in "cdeh" if k in runs]
    best = min(ort_keys, key=lambda k: runs[k]["latency_ms"]["p50"])
    met = lambda r: r["speedup_vs_a"] >= GOAL_SPEEDUP and r["roofline"]["fraction"] >= GOAL_ROOFLINE  # noqa: E731
    summary.append(f"best ORT variant: {runs[best]['name']}: {runs[best]['speedup_vs_a']:.2f}x vs (a) (goal >= {GOAL_SPEEDUP}x), "
                   f"{runs[best]['roofline']['fraction']:.0%} of roofline (goal >= {GOAL_ROOFLINE:.0%}): "
                   f"{'met' if met(runs[best]) else 'MISSED'}")
    profiles = {}
    for key in ort_keys:
        if met(runs[key]):
            continue
        profiles[key] = op_breakdown(paths[key], frames[:2], threads=threads)
        run = runs[key]
        summary.append(f"  why {run['name']} misses ({run['speedup_vs_a']:.2f}x, {run['roofline']['fraction']:.0%}):")
        summary += explain(profiles[key], work, ceilings[CEILING_OF[key]], per_layer)
    return summary, best, met(runs[best]), profiles


def sweep(model, runs, best, frames, calib, tmp: Path, args) -> tuple[list[dict], list[str]]:
    """Latency against T for the best ORT variant and (a), interleaved per T (models trained for T steps)."""
    out = []
    layout = runs[best]["model"]["layout"]
    for steps in SWEEP:
        if steps == T:
            continue
        small = with_timesteps(model, steps)
        part = [f[:steps] for f in frames]
        exported = small
        if best in "eh":
            from edge_snn.quantize import quantize_ptq

            exported = quantize_ptq(copy.deepcopy(small), [calib[:steps]])
        form = "integer" if best == "h" else "qdq"
        with open_session(export(exported, tmp / f"sweep{steps}.onnx", steps=steps, layout=layout, int8_form=form),
                          threads=args.threads) as session:
            inputs = [torch.from_numpy(f) for f in part]
            results = timed({"a": (lambda x: small.run(x, layout="time-major"), inputs),
                             "ort": (frame_runner(session), part)}, args)
            out.append(torch_summary(small, part, "time-major", *results["a"], warmup=args.warmup,
                                     name=f"(a) T={steps}", series=runs["a"]["series"]))
            out.append(ort_summary(session, part, *results["ort"], args=args, name=f"{runs[best]['name']} T={steps}",
                                   series=runs[best]["series"]))
    lines = ["latency against T (p50 ms; each T timed interleaved, (a) and ORT):"]
    for key in ("a", best):
        points = sorted([(r["model"]["timesteps"], r["latency_ms"]["p50"]) for r in out if r["series"] == runs[key]["series"]]
                        + [(T, runs[key]["latency_ms"]["p50"])])
        lines.append(f"  {runs[key]['series']:<24}" + "  ".join(f"T={t}: {ms:.1f}" for t, ms in points))
    for line in lines:
        log(line)
    return out, lines


def ann_comparison(model, images, best_run: dict, tmp: Path, args) -> tuple[list[dict], list[str]]:
    """The ANN twin in PyTorch and (through torch.onnx.export) in ONNX Runtime, against the best SNN variant."""
    ann = ann_twin(model, torch.from_numpy(images[:3]))
    inputs = [torch.from_numpy(images[i:i + 1]) for i in range(3)]
    runners = {"ANN twin PyTorch": (lambda x: ann.run(x).logits, inputs)}
    lines = []
    try:
        path = tmp / "ann.onnx"
        with warnings.catch_warnings():  # the legacy exporter's deprecation and tracer chatter
            warnings.simplefilter("ignore")
            torch.onnx.export(ann, (inputs[0],), str(path), dynamo=False, opset_version=17,
                              input_names=["image"], output_names=["logits"])
        session = _ort_session(path, args.threads)
        runners["ANN twin ORT"] = (lambda x: session.run(None, {"image": x}), [x.numpy() for x in inputs])
    except Exception as err:
        lines.append(f"ANN twin ORT: export failed ({type(err).__name__}: {str(err).splitlines()[0][:160]}); "
                     "timed in PyTorch only")
    results = timed(runners, args)
    regions = {"ANN twin PyTorch": "ann.run(image) under torch.no_grad, one pass",
               "ANN twin ORT": "session.run(image), one pass, output to host"}
    runs = [{"name": name, "series": "ANN twin", "kind": "ann", "backend": "pytorch" if "PyTorch" in name else "onnxruntime",
             "model": {"timesteps": 1, "batch": 1, "layout": "-", "precision": "fp32"}, "timed_region": regions[name],
             **latency_summary(results[name][0], 1)} for name in runners]
    ann_best = min(runs, key=lambda r: r["latency_ms"]["p50"])
    snn_ms, ann_ms = best_run["latency_ms"]["p50"], ann_best["latency_ms"]["p50"]
    est = best_run["energy_estimate"]
    lines += [f"SNN vs ANN twin: {best_run['name']} {snn_ms:.1f} ms per frame (T={T}) vs {ann_best['name']} {ann_ms:.1f} ms "
              f"(one pass): the SNN takes {snn_ms / ann_ms:.1f}x as long on this dense-compute backend",
              f"energy estimate (45 nm, Horowitz), per image: SNN {est['snn_mj']:.2f} mJ vs ANN {est['ann_mj']:.2f} mJ "
              f"(ANN/SNN {est['ann_over_snn']:.2f}x); measured: {best_run['energy_measured']['source']}"]
    for line in lines:
        log(line)
    return runs, lines


# --- main -------------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=0,
                   help="threads for PyTorch and ONNX Runtime (default: the cores the load average leaves idle, at least 1)")
    p.add_argument("--budget-s", type=float, default=12.0,
                   help="a variant whose timed frames exceed this many seconds stops after 3 rounds")
    p.add_argument("--iters", type=int, default=7, help="timed rounds (one frame of each variant per round; medians)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    p.add_argument("--int8-layout", choices=("time-major", "layer-major"), default="time-major", help="layout of (e) and (h)")
    p.add_argument("--out", type=Path, default=Path("runs/bench/deeplab.json"))
    p.add_argument("--machine-note", default="", help="e.g. '2-core CPU VM, shared'")
    args = p.parse_args(argv)
    if args.threads <= 0:
        # threads beyond the idle cores wait for preempted peers at every barrier: on a busy 2-core
        # VM, PyTorch with 2 threads took 16 s per frame against 1.1 s with 1
        args.threads = max(1, (os.cpu_count() or 1) - round(os.getloadavg()[0]))
    with tempfile.TemporaryDirectory(prefix="bench_deeplab.") as tmp:
        return measure(args, Path(tmp))


def measure(args, tmp: Path) -> int:
    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load = os.getloadavg()[0]
    log(f"dl-vgg9 {H}x{W}, T={T}, batch 1, {args.threads} thread(s); load average {load:.2f} on {os.cpu_count()} cores")
    if args.threads > max(1, (os.cpu_count() or 1) - round(load)):
        log("  warning: more threads than idle cores; timings suffer from preemption (PyTorch most)")

    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (4, C_IN, H, W)).astype(np.float32)
    frames = [poisson_encode(images[i:i + 1], T, seed=frame_seed(0, i)) for i in range(3)]
    calib = torch.from_numpy(poisson_encode(images[3:4], T, seed=frame_seed(0, 3)))
    model = build_model(ARCH, in_channels=C_IN, num_classes=K, timesteps=T).eval()
    rates = calibrate_firing(model, calib, np.linspace(0.15, 0.06, len(model.spiking_layers)))
    log("calibrated spike rates: " + ", ".join(f"{k} {v:.3f}" for k, v in rates.items()))
    per_layer = conv_work(model)
    macs, macs_effective = (sum(v[i] for v in per_layer.values()) for i in (0, 1))
    log(f"conv work per step: {macs / 1e9:.3f} G MAC nominal, {macs_effective / 1e9:.3f} G MAC reading the map "
        f"(not zero padding); roofline work = 2 x effective x T = {2 * macs_effective * T / 1e9:.1f} GFLOP per frame")

    runs, paths, ceilings, skipped = run_variants(model, frames, calib, tmp, args)
    log("ceilings (one dense conv 3x3 {1}->{4}, {0}x{1}x{2}x{3}): ".format(*ROOF_CONV) + ", ".join(
        f"{k} {v / 1e9:.1f} G/s" for k, v in ceilings.items()))
    summary, best, goals, profiles = score(runs, paths, skipped, ceilings, per_layer, frames, args.threads)
    for line in summary:
        log(line)
    parity, lines = S.parity_lines(paths["c"], frames[0], args.threads)
    summary += lines
    for line in lines:
        log(line)
    thread_rows, lines = S.threads_lines(paths["c"], frames, iters=3, warmup=1)
    summary += lines
    for line in lines:
        log(line)
    rate_rows, lines, crossover = S.rate_sweep(model, calib, frames, tmp, args, export=export, steps=T)
    summary += lines
    for line in lines[-2:]:
        log(line)
    sweep_runs, lines = sweep(model, runs, best, frames, calib, tmp, args)
    summary += lines
    ann_runs, lines = ann_comparison(model, images, runs[best], tmp, args)
    summary += lines
    summary.append(f"total {time.perf_counter() - t0:.0f} s; load average now {os.getloadavg()[0]:.2f}")
    log(summary[-1])
    doc = {
        "schema": SUITE_SCHEMA, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine_note": args.machine_note, "environment": collect_environment(),
        "settings": {"threads": args.threads, "iters": args.iters, "warmup": args.warmup, "budget_s": args.budget_s,
                     "int8_layout": args.int8_layout,
                     "load_average_at_start": load, "height": H, "width": W, "timesteps": T, "classes": K},
        "calibrated_spike_rates": rates, "macs_per_step": macs, "macs_per_step_effective": macs_effective,
        "ceilings_flop_per_s": ceilings,
        "goals": {"speedup_vs_a": GOAL_SPEEDUP, "roofline_fraction": GOAL_ROOFLINE, "best": best, "met": goals},
        "skipped": skipped, "profiles": profiles,
        "sparse": {"parity": parity, "threads": thread_rows, "rate_sweep": rate_rows, "crossover": crossover},
        "runs": list(runs.values()) + sweep_runs + ann_runs, "summary_lines": summary,
    }
    write_json_atomic(args.out, doc)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
