"""Brevitas INT8: exact on spikes, TensorRT-shaped QDQ export, parity with the quantized reference."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto

from edge_snn.export.exporter import ExportOptions, build_graph, check_graph
from edge_snn.models import build_model
from edge_snn.quantize import quantize_ptq
from edge_snn.runtime import contract as C
from edge_snn.training.checkpoint import model_from_checkpoint, save_checkpoint

from model_fixtures import randomized


def batches(in_channels=2, steps=4, n=2, analog=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (steps, 2, in_channels, 16, 20)
    if analog:
        return [torch.rand(shape, generator=g) * 2 - 1 for _ in range(n)]
    return [(torch.rand(shape, generator=g) < 0.3).float() for _ in range(n)]


def quantized(arch="dl-vgg9", analog=False, weight_bits=8, seed=0):
    torch.manual_seed(seed)  # the conv weights: the same model whatever ran before
    model = randomized(build_model(arch, in_channels=2, num_classes=4, timesteps=4, width=0.125), seed)
    return quantize_ptq(model, batches(analog=analog, seed=seed), weight_bits=weight_bits)


def test_input_quantizers_are_exact_where_inputs_are_spikes():
    model = quantized()
    plan = model.quantization["inputs"]
    assert plan["convs.conv3"] == {"kind": "fixed", "scale": pytest.approx(1 / 9)}  # pooled spikes
    assert plan["convs.conv5"] == {"kind": "fixed", "scale": pytest.approx(1 / 9)}
    for name in ("convs.conv1", "convs.conv2", "convs.conv4", "convs.conv6", "convs.conv7", "convs.conv8", "classifier"):
        assert plan[name] == {"kind": "fixed", "scale": 1.0}, name
    seen = {}

    def record(name):
        def hook(module, args, out):
            seen.setdefault(name, (args[0], out))  # returns None: the output is left alone
        return hook

    hooks = [m.input_quant.register_forward_hook(record(n))
             for n, m in model.named_modules() if hasattr(m, "input_quant") and hasattr(m, "quant_weight")]
    with torch.no_grad():
        model.run(batches(seed=5)[0])
    for h in hooks:
        h.remove()
    for name, (x, q) in seen.items():
        q = q.value if hasattr(q, "value") else q
        assert torch.allclose(x, q, atol=1e-6), name  # lossless on spikes and pooled spikes


def test_analog_first_layer_is_calibrated_signed_per_tensor():
    model = quantized(analog=True)
    assert model.quantization["inputs"]["convs.conv1"] == {"kind": "calibrated"}
    conv1 = model.convs["conv1"]
    scale = float(conv1.input_quant.scale())
    assert 0 < scale < 2 / 127 and float(conv1.input_quant.zero_point()) == 0.0


@pytest.mark.parametrize("bits, limit", [(8, 127), (4, 7)])
def test_weights_signed_per_channel_symmetric(bits, limit):
    model = quantized(weight_bits=bits)
    qw = model.convs["conv2"].quant_weight()
    assert qw.scale.numel() == model.convs["conv2"].out_channels
    assert float(qw.zero_point.abs().max()) == 0.0
    ints = qw.int()
    assert int(ints.abs().max()) <= limit and int(ints.abs().max()) >= limit - 1


def qdq_graph(model, layout="time-major"):
    proto, _ = build_graph(model, {"data": {"height": 16, "width": 20, "encoding": "events"}},
                           ExportOptions(timesteps=4, layout=layout, batch=2))
    check_graph(proto)
    return proto


@pytest.mark.parametrize("arch", ["dl-vgg9", "fcn-vgg9"])
@pytest.mark.parametrize("layout", ["time-major", "layer-major"])
def test_qdq_graph_matches_quantized_reference(arch, layout):
    model = quantized(arch)
    proto = qdq_graph(model, layout)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["edge_snn.precision"] == "int8-qdq"
    x = batches(seed=9)[0]
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {C.INPUT: x.numpy(), C.STATE_IN + C.STEP: np.zeros(1, np.int64)}
    for name, shape in model.state_spec(2, 16, 20).items():
        feed[C.STATE_IN + name] = np.zeros(shape, np.float32)
    out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed)))
    with torch.no_grad():
        ref = model.run(x, layout=layout)
    counts = np.array([ref.spike_counts[k].item() for k in model.spiking_layers])
    assert counts.sum() > 0
    # integer accumulation in ORT vs float in torch may flip a rare spike; nearly all must agree
    assert np.abs(out[C.SPIKE_COUNTS] - counts).sum() <= 0.001 * counts.sum() + 1
    agree = (out[C.LOGITS].argmax(1) == ref.logits.numpy().argmax(1)).mean()
    assert agree >= 0.995


def test_qdq_follows_tensorrt_rules():
    proto = qdq_graph(quantized("fcn-vgg9"))
    inits = {t.name: t for t in proto.graph.initializer}
    qs = [n for n in proto.graph.node if n.op_type == "QuantizeLinear"]
    dqs = [n for n in proto.graph.node if n.op_type == "DequantizeLinear"]
    assert qs and dqs
    for node in qs + dqs:
        zero = inits[node.input[2]]
        assert zero.data_type == TensorProto.INT8
        assert not onnx.numpy_helper.to_array(zero).any()
    weight_dq = [n for n in dqs if n.input[0].endswith("weight_int8")]
    axes = {n.input[0].split(".weight")[0]: {a.name: a.i for a in n.attribute}.get("axis", 1) for n in weight_dq}
    assert axes["convs.conv1"] == 0 and axes["deconvs.deconv2"] == 1
    assert not any(n.op_type == "Clip" for n in proto.graph.node)
    assert all(inits[n.input[0]].data_type == TensorProto.INT8 for n in weight_dq)


def test_quantized_checkpoint_roundtrip(tmp_path):
    model = quantized("fcn-vgg9")
    save_checkpoint(tmp_path / "q.pt", model, data={"height": 16, "width": 20, "encoding": "events"})
    loaded, ckpt = model_from_checkpoint(tmp_path / "q.pt")
    assert ckpt["quantization"]["weight_bits"] == 8 and loaded.quantized
    x = batches(seed=3)[0]
    with torch.no_grad():
        assert torch.equal(loaded.run(x).logits, model.run(x).logits)


def test_qdq_graph_passes_the_orin_check(tmp_path):
    from edge_snn.targets import check_model, load_target

    path = tmp_path / "q.onnx"
    onnx.save(qdq_graph(quantized()), path)
    for name in ("orin-nano-8gb", "orin-nx-16gb", "agx-orin-64gb"):
        report = check_model(path, load_target(name))
        assert report.ok, report.format()


def test_ptq_and_qat_commands_write_quantized_checkpoints(small_checkpoint, tmp_path):
    from edge_snn.training.checkpoint import load_checkpoint
    from edge_snn.training.quantize_run import quantize_checkpoint

    ckpt, _ = small_checkpoint
    ptq = quantize_checkpoint(ckpt, tmp_path / "ptq.pt", method="ptq", calibration_samples=4, eval_samples=4, progress=False)
    qat = quantize_checkpoint(ckpt, tmp_path / "qat.pt", method="qat", epochs=1, calibration_samples=4, eval_samples=4,
                              progress=False)
    assert ptq["method"] == "ptq" and qat["method"] == "qat"
    a, b = load_checkpoint(tmp_path / "ptq.pt"), load_checkpoint(tmp_path / "qat.pt")
    assert a["quantization"]["weight_bits"] == b["quantization"]["weight_bits"] == 8
    # fine-tuning through the fake-quantized layers moved the weights
    assert not torch.equal(a["state_dict"]["convs.conv2.weight"], b["state_dict"]["convs.conv2.weight"])
    with pytest.raises(Exception, match="already quantized"):
        quantize_checkpoint(tmp_path / "ptq.pt", tmp_path / "again.pt")
