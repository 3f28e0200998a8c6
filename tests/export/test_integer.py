"""The int8-integer form: ConvInteger on the quantized reference's own integers, one rescale per layer.

It must compute what the quantized PyTorch reference computes (spikes per layer and
step, class maps), in both layouts, for a spike-fed net, an analog first layer, the
tap blocks of a padding-heavy conv and the FCN's float deconvolutions; refuse to be
built by TensorRT; and still load on ONNX Runtime releases without int8 ConvInteger.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, numpy_helper
from typer.testing import CliRunner

from edge_snn.cli import app
from edge_snn.export.exporter import ExportOptions, build_graph, check_graph, export_checkpoint
from edge_snn.models import build_model
from edge_snn.parity import run_parity
from edge_snn.quantize import quantize_ptq
from edge_snn.runtime import contract as C
from edge_snn.runtime.backends.onnxrt.integer_compat import takes_int8_activations, uint8_activations
from edge_snn.runtime.backends.onnxrt.loader import session_model
from edge_snn.runtime.backends.onnxrt.tap_blocks import TAP_BLOCK, split_padded_convs

from model_fixtures import randomized


@pytest.fixture(autouse=True)
def _own_random_state():
    """These tests seed torch themselves and leave the global RNG as they found it (other files build models from it)."""
    with torch.random.fork_rng():
        yield


@pytest.fixture(scope="module")
def quantized_checkpoint(small_checkpoint, tmp_path_factory):
    """The small event-input dl-vgg9 (T=6, 24x32), post-training quantized as `edge-snn quantize --ptq` does."""
    from edge_snn.training.quantize_run import quantize_checkpoint

    ckpt, _ = small_checkpoint
    out = tmp_path_factory.mktemp("integer") / "q.pt"
    with torch.random.fork_rng():
        quantize_checkpoint(ckpt, out, method="ptq", calibration_samples=4, eval_samples=4, progress=False)
    return out


def export_integer(ckpt, path, **options):
    export_checkpoint(ckpt, path, ExportOptions(int8_form="integer", **options))
    return path


def graph_of(model, height, width, layout="time-major", steps=2, batch=2):
    proto, _ = build_graph(model, {"data": {"height": height, "width": width, "encoding": "events"}},
                           ExportOptions(timesteps=steps, layout=layout, batch=batch, int8_form="integer"))
    check_graph(proto)
    return proto


def run(proto_or_bytes, model, x):
    data = proto_or_bytes if isinstance(proto_or_bytes, bytes) else proto_or_bytes.SerializeToString()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    batch, height, width = x.shape[1], x.shape[3], x.shape[4]
    feed = {C.INPUT: x.numpy(), C.STATE_IN + C.STEP: np.zeros(1, np.int64)}
    feed.update({C.STATE_IN + n: np.zeros(s, np.float32) for n, s in model.state_spec(batch, height, width).items()})
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed)))


def reference(model, x, layout="time-major"):
    with torch.no_grad():
        ref = model.run(x, layout=layout)
    return ref.logits.numpy(), np.array([ref.spike_counts[k].item() for k in model.spiking_layers])


def small_quantized(arch="dl-vgg9", *, inputs, steps=2, seed=0):
    torch.manual_seed(seed)
    model = randomized(build_model(arch, in_channels=2, num_classes=4, timesteps=steps, width=0.125), seed)
    return quantize_ptq(model, [inputs(seed + s) for s in range(2)])


# --- parity with the quantized reference ---------------------------------------------------------
@pytest.mark.parametrize("layout", ["time-major", "layer-major"])
def test_integer_graph_matches_the_quantized_reference(quantized_checkpoint, tmp_path, layout):
    path = export_integer(quantized_checkpoint, tmp_path / "int.onnx", timesteps=6, layout=layout)
    report = run_parity(quantized_checkpoint, path, frames=2)
    assert report["precision"] == "int8-integer"
    assert report["passed"], report["failures"]
    assert report["pixel_agreement"] >= 0.999
    per_layer_step = np.array(report["spike_agreement"])  # [layer, step], free-running
    assert per_layer_step.shape == (8, 6)
    assert per_layer_step.min() >= 0.999
    assert min(report["teacher_forced_agreement_per_layer"].values()) >= 0.999
    assert sum(report["unexplained_flips_per_layer"].values()) == 0


def test_a_wrong_rescale_is_caught(quantized_checkpoint, tmp_path):
    path = export_integer(quantized_checkpoint, tmp_path / "int.onnx", timesteps=6)
    proto = onnx.load(str(path))
    (init,) = [i for i in proto.graph.initializer if i.name == "convs.conv4.rescale"]
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(1.05), init.name))
    onnx.save(proto, str(path))
    report = run_parity(quantized_checkpoint, path, frames=2)
    assert not report["passed"]
    assert report["first_divergence"]["layer"] == "conv4"
    assert report["unexplained_flips_per_layer"]["conv4"] > 0
    assert report["unexplained_flips_per_layer"]["conv3"] == 0


def test_graph_is_convinteger_on_the_references_integers(quantized_checkpoint, tmp_path):
    proto = onnx.load(str(export_integer(quantized_checkpoint, tmp_path / "int.onnx", timesteps=2)))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["edge_snn.precision"] == "int8-integer"
    ops = {n.op_type for n in proto.graph.node}
    assert "ConvInteger" in ops and not ops & {"Conv", "QLinearConv"}
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    convs = [n for n in proto.graph.node if n.op_type == "ConvInteger"]
    x_zero_types = {inits[n.input[2]].dtype for n in convs}
    assert x_zero_types == {np.dtype(np.int8), np.dtype(np.uint8)}  # spikes int8; the encoder's frames uint8
    assert all(inits[n.input[3]] == 128 and inits[n.input[1]].dtype == np.uint8 for n in convs if n.input[1] in inits)
    from edge_snn.training.checkpoint import model_from_checkpoint

    model, _ = model_from_checkpoint(quantized_checkpoint)
    ints = model.convs["conv2"].quant_weight().int().numpy()
    np.testing.assert_array_equal(inits["convs.conv2.weight_uint8"].astype(np.int16) - 128, ints)


def test_padding_heavy_conv_runs_as_tap_blocks_with_the_same_integers(monkeypatch):
    """dl-vgg9 at 64x64: conv8 (dilation 12 on 16x16) stays one ConvInteger in the file; ONNX Runtime's CPU session
    runs it as 9 blocks (at full width; forced here on a small model), bit-identical."""
    from edge_snn.runtime.backends.onnxrt import tap_blocks

    monkeypatch.setattr(tap_blocks, "MIN_SKIPPED_MACS", 0)
    model = small_quantized(inputs=lambda s: (torch.rand(2, 2, 2, 64, 64, generator=torch.Generator().manual_seed(s)) < 0.3).float())
    whole = graph_of(model, 64, 64, steps=2, batch=2)
    assert not any(TAP_BLOCK in n.name for n in whole.graph.node)
    blocked = split_padded_convs(whole)
    conv8 = [n for n in blocked.graph.node if n.op_type == "ConvInteger" and TAP_BLOCK in n.name]
    assert len(conv8) == 2 * 9  # two steps, 3x3 blocks each
    x = (torch.rand(2, 2, 2, 64, 64, generator=torch.Generator().manual_seed(7)) < 0.3).float()
    out, out_whole = run(blocked, model, x), run(whole, model, x)
    for name in out:  # exact integers either way: bit-identical
        np.testing.assert_array_equal(out[name], out_whole[name], err_msg=name)
    logits, counts = reference(model, x)
    assert counts[-1] > 0
    # against the float reference: a neuron within float rounding of the threshold may flip
    assert np.abs(out[C.SPIKE_COUNTS] - counts).max() <= 1e-3 * counts.max()
    assert (out[C.LOGITS].argmax(1) == logits.argmax(1)).mean() >= 0.999


@pytest.mark.parametrize("kind", ["analog", "event counts"])
def test_first_layer_inputs_beyond_spikes_are_exact(kind):
    """A calibrated analog first layer, and event counts up to 127: the uint8 x uint8 kernel (zero point 128)."""
    def inputs(seed, kind=kind):
        g = torch.Generator().manual_seed(seed)
        if kind == "analog":
            return torch.rand(2, 2, 2, 16, 20, generator=g) * 2 - 1
        return torch.randint(0, 128, (2, 2, 2, 16, 20), generator=g).float() * (torch.rand(2, 2, 2, 16, 20, generator=g) < 0.2)

    model = small_quantized(inputs=inputs)
    assert model.quantization["inputs"]["convs.conv1"]["kind"] == ("calibrated" if kind == "analog" else "fixed")
    x = inputs(11)
    out = run(graph_of(model, 16, 20), model, x)
    logits, counts = reference(model, x)
    np.testing.assert_array_equal(out[C.SPIKE_COUNTS], counts)
    assert (out[C.LOGITS].argmax(1) == logits.argmax(1)).mean() == 1.0


@pytest.mark.parametrize("layout", ["time-major", "layer-major"])
def test_fcn_skips_with_bias_and_float_deconvolutions(layout):
    model = small_quantized("fcn-vgg9", inputs=lambda s: (torch.rand(2, 2, 2, 16, 20, generator=torch.Generator().manual_seed(s)) < 0.3).float())
    proto = graph_of(model, 16, 20, layout=layout)
    assert any(n.op_type == "ConvTranspose" for n in proto.graph.node)
    x = (torch.rand(2, 2, 2, 16, 20, generator=torch.Generator().manual_seed(3)) < 0.3).float()
    out = run(proto, model, x)
    logits, counts = reference(model, x, layout)
    np.testing.assert_array_equal(out[C.SPIKE_COUNTS], counts)
    assert np.abs(out[C.LOGITS] - logits).max() < 1e-4


# --- ONNX Runtime releases with uint8-only ConvInteger (1.23 on a Jetson) ----------------------------
def test_uint8_activation_form_for_older_onnxruntime_gives_the_same_numbers(quantized_checkpoint, tmp_path):
    assert not takes_int8_activations("1.23.2") and takes_int8_activations("1.24.0")
    assert takes_int8_activations("1.32.0") and takes_int8_activations("2.0.0")
    path = export_integer(quantized_checkpoint, tmp_path / "int.onnx", timesteps=2)
    assert session_model(str(path), "1.32.0", cpu=False) == str(path)
    retyped = session_model(str(path), "1.23.2", cpu=False)
    proto = onnx.load_from_string(retyped)
    inits = {t.name: t for t in proto.graph.initializer}
    convs = [n for n in proto.graph.node if n.op_type == "ConvInteger"]
    assert {inits[n.input[2]].data_type for n in convs} == {TensorProto.UINT8}
    from edge_snn.training.checkpoint import model_from_checkpoint

    model, _ = model_from_checkpoint(quantized_checkpoint)
    x = (torch.rand(2, 1, 2, 24, 32, generator=torch.Generator().manual_seed(5)) < 0.3).float() * 3
    a, b = run(onnx.load(str(path)), model, x), run(retyped, model, x)
    assert a[C.SPIKE_COUNTS].sum() > 0
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert uint8_activations(onnx.load(str(path))).SerializeToString() == retyped


# --- where the form may go ---------------------------------------------------------------------------
def test_check_refuses_the_integer_form_for_tensorrt_targets(quantized_checkpoint, tmp_path):
    from edge_snn.targets import check_model, load_target

    integer = export_integer(quantized_checkpoint, tmp_path / "int.onnx", timesteps=2)
    qdq = tmp_path / "qdq.onnx"
    export_checkpoint(quantized_checkpoint, qdq, ExportOptions(timesteps=2, int8_form="qdq"))
    for target in ("orin-nano-8gb", "agx-orin-64gb"):
        report = check_model(integer, load_target(target))
        assert not report.ok
        assert [f.code for f in report.errors] == ["int8-integer-form"]
        assert "--int8-form qdq" in report.errors[0].message
        assert check_model(qdq, load_target(target)).ok
    assert check_model(integer, load_target("x86-cpu")).ok  # an ONNX Runtime target runs it
    result = CliRunner().invoke(app, ["check", str(integer), "--target", "agx-orin-64gb"])
    assert result.exit_code != 0 and "--int8-form qdq" in result.output


def test_export_cli_int8_form(quantized_checkpoint, small_checkpoint, tmp_path):
    out = tmp_path / "int.onnx"
    result = CliRunner().invoke(app, ["export", str(quantized_checkpoint), "-o", str(out), "-T", "2", "--int8-form", "integer"])
    assert result.exit_code == 0, result.output
    assert {p.key: p.value for p in onnx.load(str(out)).metadata_props}["edge_snn.precision"] == "int8-integer"
    for checkpoint, form, message in ((quantized_checkpoint, "int4", "unknown --int8-form 'int4'"),
                                      (small_checkpoint[0], "integer", "needs a quantized checkpoint")):
        result = CliRunner().invoke(app, ["export", str(checkpoint), "-o", str(tmp_path / "x.onnx"), "--int8-form", form])
        assert result.exit_code == 2 and message in result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "x.onnx").exists()
