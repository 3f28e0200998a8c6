"""``edge-snn export --dla``: the same model, recorded with DLA-native layers only, computes the same spikes.

The DLA form is another driver of the model's body (export/graph.py); under ONNX Runtime its spikes,
membranes and class maps must equal the standard export's, for FP32 and for a Brevitas-quantized
model (whose Q/DQ become a calibration cache). On the demo's shape (dl-vgg9 width 1/8, T = 20, 64x64)
`edge-snn check --dla-core 0` must find only the final resize (and the int64 step update) off the DLA.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from edge_snn.errors import UserError
from edge_snn.export.exporter import ExportOptions, build_graph, check_graph, export_checkpoint
from edge_snn.models import build_model
from edge_snn.parity import _with_spike_outputs
from edge_snn.runtime import contract as C
from edge_snn.runtime.backends.trt.calibration import cache_path, read_calibration_cache
from edge_snn.runtime.model_file import contract_of
from edge_snn.targets import check_model, load_target
from model_fixtures import randomized

DATA = {"data": {"height": 16, "width": 20, "encoding": "events"}}
T = 4


def model_fp32(arch="dl-vgg9", seed=0):
    torch.manual_seed(seed)
    return randomized(build_model(arch, in_channels=2, num_classes=4, timesteps=T, width=0.125), seed)


def model_int8(seed=0):
    from edge_snn.quantize import quantize_ptq

    g = torch.Generator().manual_seed(seed)
    calibration = [(torch.rand((T, 2, 2, 16, 20), generator=g) < 0.3).float() for _ in range(2)]
    return quantize_ptq(model_fp32(seed=seed), calibration)


def graphs(model, **options):
    """(standard proto, DLA proto), both checked."""
    protos = []
    for dla in (False, True):
        proto, _ = build_graph(model, DATA, ExportOptions(timesteps=T, dla=dla, **options))
        check_graph(proto)
        protos.append(proto)
    return protos


def run(proto, x, spike_names):
    extended = _with_spike_outputs(proto, spike_names)
    session = ort.InferenceSession(extended.SerializeToString(), providers=["CPUExecutionProvider"])
    contract = contract_of(proto, "graph")
    feed = {C.INPUT: x, **{C.STATE_IN + s.name: np.zeros(s.shape, s.dtype) for s in contract.state}}
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feed)))


def events(seed=1):
    return (np.random.default_rng(seed).random((T, 1, 2, 16, 20)) < 0.3).astype(np.float32)


@pytest.mark.parametrize("kind", ["fp32", "int8", "fcn-fp32"])
def test_the_dla_form_computes_the_standard_spikes_and_class_maps(kind):
    model = {"fp32": model_fp32, "int8": model_int8, "fcn-fp32": lambda: model_fp32("fcn-vgg9")}[kind]()
    standard, dla = graphs(model)
    names = [C.spike_tensor_name(layer, t) for layer in model.spiking_layers for t in range(T)]
    for seed in (1, 2):
        want, got = run(standard, events(seed), names), run(dla, events(seed), names)
        fired = 0
        for name in names:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
            fired += want[name].sum()
        assert fired > 0
        np.testing.assert_array_equal(got[C.LOGITS].argmax(1), want[C.LOGITS].argmax(1))
        np.testing.assert_allclose(got[C.LOGITS], want[C.LOGITS], rtol=1e-5, atol=1e-6)  # x (1/T) vs / T
        # membranes to a few float32 ulps: ONNX Runtime folds the DLA form's constant BN scales into the
        # conv weights (the standard form looks them up at run time), a different rounding of the same sums
        for state in contract_of(standard, "s").state:
            key = C.STATE_OUT + state.name
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-5, err_msg=key)


def test_the_dla_form_uses_dla_native_layers_only():
    model = model_fp32()
    _, dla = graphs(model)
    ops = Counter(n.op_type for n in dla.graph.node)
    assert not set(ops) & {"Gather", "Cast", "Greater", "ReduceSum", "Identity", "Unsqueeze", "Squeeze", "Div",
                           "Min", "Mod", "Concat", "QuantizeLinear", "DequantizeLinear"}
    layers = len(model.spiking_layers)
    assert ops["Clip"] == layers * T and ops["Slice"] == T and ops["Reshape"] == 1 and ops["Resize"] == 1
    int64 = [n for n in dla.graph.node if any(i == C.STATE_IN + C.STEP for i in n.input)]
    assert [n.op_type for n in int64] == ["Add"]  # the step update, the only INT64 node
    contract = contract_of(dla, "dla")
    assert contract.form == C.FORM_DLA and contract.spike_layers == tuple(model.spiking_layers)
    assert C.SPIKE_COUNTS not in {o.name for o in dla.graph.output}


def test_the_contract_says_which_form_a_file_is():
    standard, dla = graphs(model_fp32())
    assert contract_of(standard, "s").form == C.FORM_STANDARD
    meta = {p.key: p.value for p in dla.metadata_props}
    assert meta[C.PREFIX + "form"] == "dla"
    old = dict(meta)
    del old[C.PREFIX + "form"]  # a file from before the field: the standard form
    assert C.read_contract(old).form == C.FORM_STANDARD


@pytest.mark.parametrize("options, says", [
    ({"layout": "layer-major"}, "time-major layout only"),
    ({"batch": 2}, "batch 1"),
])
def test_dla_export_refuses_what_it_cannot_express(options, says):
    with pytest.raises(UserError, match=says):
        build_graph(model_fp32(), DATA, ExportOptions(timesteps=T, dla=True, **options))
    with pytest.raises(UserError, match="--timesteps 4, the trained T"):
        build_graph(model_fp32(), DATA, ExportOptions(timesteps=2, dla=True))


def test_a_quantized_dla_export_writes_the_brevitas_scales_as_a_calibration_cache(tmp_path):
    from edge_snn.training.checkpoint import save_checkpoint

    model = model_int8()
    ckpt = tmp_path / "q.pt"
    save_checkpoint(ckpt, model, data=DATA["data"])
    summary = export_checkpoint(ckpt, tmp_path / "q.onnx", ExportOptions(timesteps=T, dla=True))
    cache = cache_path(tmp_path / "q.onnx")
    assert summary["calibration_cache"] == str(cache) and cache.name == "q.calib.cache"
    text = cache.read_text()
    assert text.splitlines()[0] == "TRT-10300-EntropyCalibration2"
    scales = read_calibration_cache(text)
    proto = onnx.load(str(tmp_path / "q.onnx"))
    conv_inputs = {n.input[0] for n in proto.graph.node if n.op_type == "Conv"}
    assert set(scales) == conv_inputs  # one scale per conv input, by the tensor's final name
    plan = model.quantization["inputs"]
    assert scales[C.spike_tensor_name("conv1", 0)] == pytest.approx(plan["convs.conv2"]["scale"])  # conv2 reads it
    assert sorted(set(np.round(list(scales.values()), 6))) == sorted({1.0, round(1 / 9, 6)})  # spikes, pooled spikes
    assert not any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node)
    assert contract_of(proto, "q").precision == "int8-implicit"


def demo_like(tmp_path, quantized=False):
    """dl-vgg9 width 1/8, T=20, 64x64 events, randomized: the demo's shape."""
    from edge_snn.quantize import quantize_ptq

    torch.manual_seed(0)
    model = randomized(build_model("dl-vgg9", in_channels=2, num_classes=4, timesteps=20, width=0.125))
    if quantized:
        g = torch.Generator().manual_seed(0)
        model = quantize_ptq(model, [(torch.rand((20, 1, 2, 64, 64), generator=g) < 0.2).float()])
    return model


@pytest.mark.slow
def test_the_demo_shaped_dla_export_stays_on_the_dla_and_the_standard_int8_one_does_not(tmp_path):
    data = {"data": {"height": 64, "width": 64, "encoding": "events"}}
    target = load_target("agx-orin-64gb")
    fp32 = demo_like(tmp_path)
    proto, _ = build_graph(fp32, data, ExportOptions(timesteps=20, dla=True))
    onnx.save(proto, str(tmp_path / "dla.onnx"))
    report = check_model(tmp_path / "dla.onnx", target, dla_core=0, precision="fp16")
    assert dict(report.dla_fallback_counts) == {"Resize": 1, "Add": 1}, report.format()
    assert not [f for f in report.findings if f.code == "dla-unconfirmed"]
    quantized = demo_like(tmp_path, quantized=True)
    proto, _ = build_graph(quantized, data, ExportOptions(timesteps=20))
    onnx.save(proto, str(tmp_path / "int8.onnx"))
    report = check_model(tmp_path / "int8.onnx", target, dla_core=0, precision="int8")
    unconfirmed = [f for f in report.findings if f.code == "dla-unconfirmed"]
    assert {f.message.split()[1] for f in unconfirmed} >= {"QuantizeLinear", "DequantizeLinear"}
    assert sum(n for _, n in report.dla_fallback_counts) > 300  # Gather, Cast, Greater, ReduceSum, ...


def test_cli_export_dla(small_checkpoint, tmp_path):
    from edge_snn.cli import app

    ckpt, _ = small_checkpoint
    result = CliRunner().invoke(app, ["export", str(ckpt), "-T", "6", "--dla", "-o", str(tmp_path / "d.onnx")])
    assert result.exit_code == 0, result.output
    assert "form dla" in result.output
    bad = CliRunner().invoke(app, ["export", str(ckpt), "-T", "3", "--dla", "-o", str(tmp_path / "e.onnx")])
    assert bad.exit_code == 2 and "the trained T" in bad.output


def test_a_session_runs_the_dla_form_like_the_standard_one(small_checkpoint, tmp_path):
    from edge_snn.runtime import Session

    ckpt, _ = small_checkpoint
    export_checkpoint(ckpt, tmp_path / "s.onnx", ExportOptions(timesteps=6))
    export_checkpoint(ckpt, tmp_path / "d.onnx", ExportOptions(timesteps=6, dla=True))
    x = (np.random.default_rng(3).random((6, 2, 24, 32)) < 0.3).astype(np.float32)
    with Session(tmp_path / "s.onnx") as s, Session(tmp_path / "d.onnx") as d:
        want, got = s.infer(x), d.infer(x)
    np.testing.assert_array_equal(got.class_map, want.class_map)
    assert got.spike_counts == {} and sum(want.spike_counts.values()) > 0
