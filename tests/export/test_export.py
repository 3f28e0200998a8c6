"""The exported graph: contract, checks, layouts, streaming, size, and T rules."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edge_snn.errors import UserError
from edge_snn.export.exporter import ExportOptions, export_checkpoint
from edge_snn.runtime import contract as C
from edge_snn.runtime.model_file import load_onnx_contract


def export(ckpt, tmp_path, name="m.onnx", **kw):
    path = tmp_path / name
    export_checkpoint(ckpt, path, ExportOptions(**kw))
    return path


def run_graph(path, x, state=None):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    contract = load_onnx_contract(path)
    feed = {C.INPUT: x}
    if state is None:
        state = {C.STATE_IN + s.name: np.zeros(s.shape, s.dtype) for s in contract.state}
    feed.update(state)
    names = [o.name for o in sess.get_outputs()]
    out = dict(zip(names, sess.run(names, feed)))
    next_state = {C.STATE_IN + k[len(C.STATE_OUT):]: v for k, v in out.items() if k.startswith(C.STATE_OUT)}
    return out, next_state


def event_input(steps, seed=0, shape=(1, 2, 24, 32)):
    return (np.random.default_rng(seed).random((steps, *shape)) < 0.3).astype(np.float32)


@pytest.mark.parametrize("layout", ["time-major", "layer-major"])
def test_graph_passes_checks_and_carries_the_contract(small_checkpoint, tmp_path, layout):
    ckpt, model = small_checkpoint
    path = export(ckpt, tmp_path, timesteps=6, layout=layout)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    assert proto.opset_import[0].version >= 17
    initializers = {i.name for i in proto.graph.initializer}
    assert not initializers & {i.name for i in proto.graph.input}
    for value in list(proto.graph.input) + list(proto.graph.output):
        assert all(d.HasField("dim_value") for d in value.type.tensor_type.shape.dim), value.name
    contract = load_onnx_contract(path)
    assert (contract.architecture, contract.timesteps, contract.layout) == ("dl-vgg9", 6, layout)
    assert contract.encoding == "events" and contract.input_shape == (6, 1, 2, 24, 32)
    assert contract.class_names == ("background", "vehicle", "person", "building")
    assert contract.spike_layers == tuple(model.spiking_layers)
    assert contract.leak == 0.99 and contract.threshold == 1.0 and contract.precision == "fp32"
    assert len(contract.checkpoint_sha256) == 64
    state_names = {C.STATE_IN + s.name for s in contract.state}
    assert state_names == {i.name for i in proto.graph.input} - {C.INPUT}
    assert {C.STATE_OUT + s.name for s in contract.state} | {C.LOGITS, C.SPIKE_COUNTS} == {o.name for o in proto.graph.output}


@pytest.mark.parametrize("layout", ["time-major", "layer-major"])
def test_graph_matches_the_pytorch_reference(small_checkpoint, tmp_path, layout):
    ckpt, model = small_checkpoint
    path = export(ckpt, tmp_path, timesteps=6, layout=layout)
    x = event_input(6)
    out, _ = run_graph(path, x)
    with torch.no_grad():
        ref = model.run(torch.from_numpy(x))
    assert np.abs(out[C.LOGITS] - ref.logits.numpy()).max() < 1e-4
    assert out[C.SPIKE_COUNTS].tolist() == [ref.spike_counts[k].item() for k in model.spiking_layers]
    assert out[C.SPIKE_COUNTS].sum() > 0
    assert out[C.STATE_OUT + C.STEP].tolist() == [6]


def test_layouts_agree_and_layer_major_is_smaller(small_checkpoint, tmp_path):
    ckpt, _ = small_checkpoint
    tm = export(ckpt, tmp_path, "tm.onnx", timesteps=6, layout="time-major")
    lm = export(ckpt, tmp_path, "lm.onnx", timesteps=6, layout="layer-major")
    x = event_input(6, seed=3)
    a, sa = run_graph(tm, x)
    b, sb = run_graph(lm, x)
    assert np.allclose(a[C.LOGITS], b[C.LOGITS], atol=1e-5)
    assert np.array_equal(a[C.SPIKE_COUNTS], b[C.SPIKE_COUNTS])
    for k in sa:
        assert np.allclose(sa[k], sb[k], atol=1e-5), k
    assert len(onnx.load(str(lm)).graph.node) < len(onnx.load(str(tm)).graph.node)


def test_streaming_step_graph_and_chunks_equal_one_call(small_checkpoint, tmp_path):
    ckpt, _ = small_checkpoint
    whole = export(ckpt, tmp_path, "t6.onnx", timesteps=6)
    step = export(ckpt, tmp_path, "t1.onnx", timesteps=1)
    half = export(ckpt, tmp_path, "t3.onnx", timesteps=3)
    x = event_input(6, seed=5)
    ref, ref_state = run_graph(whole, x)
    state, counts = None, 0
    for t in range(6):
        out, state = run_graph(step, x[t:t + 1], state)
        counts = counts + out[C.SPIKE_COUNTS]
    assert np.array_equal(counts, ref[C.SPIKE_COUNTS])
    assert np.allclose(out[C.LOGITS], ref[C.LOGITS], atol=1e-5)
    first, mid = run_graph(half, x[:3])
    second, end = run_graph(half, x[3:], mid)
    assert np.allclose(second[C.LOGITS], ref[C.LOGITS], atol=1e-5)
    assert np.array_equal(first[C.SPIKE_COUNTS] + second[C.SPIKE_COUNTS], ref[C.SPIKE_COUNTS])
    for k in ref_state:
        assert np.allclose(end[k], ref_state[k], atol=1e-5)


def initializer_bytes(path):
    return sum(len(t.raw_data) for t in onnx.load(str(path)).graph.initializer if t.name.startswith(("convs", "classifier", "bntt")))


def test_weights_are_stored_once(small_checkpoint, tmp_path):
    ckpt, _ = small_checkpoint
    t1 = export(ckpt, tmp_path, "t1.onnx", timesteps=1)
    t6 = export(ckpt, tmp_path, "t6.onnx", timesteps=6)
    assert initializer_bytes(t1) == initializer_bytes(t6) > 0


def test_full_width_file_at_t20_is_within_5_percent_of_t1(tmp_path):
    """The paper-size network: unrolling 20 steps adds graph structure, not weights."""
    from edge_snn.models import build_model
    from edge_snn.training.checkpoint import save_checkpoint

    model = build_model("dl-vgg9", in_channels=2, num_classes=6, timesteps=20)
    ckpt = tmp_path / "full.pt"
    save_checkpoint(ckpt, model, data={"height": 16, "width": 16, "encoding": "events"})
    sizes = {t: export(ckpt, tmp_path, f"t{t}.onnx", timesteps=t).stat().st_size for t in (1, 20)}
    assert sizes[20] <= 1.05 * sizes[1], sizes


def test_timesteps_beyond_training_need_a_policy(small_checkpoint, tmp_path):
    ckpt, model = small_checkpoint
    with pytest.raises(UserError, match="--bn-beyond"):
        export(ckpt, tmp_path, timesteps=8)
    assert not (tmp_path / "m.onnx").exists()
    path = export(ckpt, tmp_path, timesteps=8, bn_beyond="last")
    x = event_input(8, seed=2)
    out, _ = run_graph(path, x)
    model.set_bn_beyond("last")
    try:
        with torch.no_grad():
            ref = model.run(torch.from_numpy(x))
    finally:
        model.set_bn_beyond("error")
    assert np.abs(out[C.LOGITS] - ref.logits.numpy()).max() < 1e-4
    assert load_onnx_contract(path).bn_beyond == "last"


def test_fcn_with_poisson_input_exports(small_image_checkpoint, tmp_path):
    ckpt, model = small_image_checkpoint
    path = export(ckpt, tmp_path, timesteps=4, layout="layer-major", batch=2)
    contract = load_onnx_contract(path)
    assert contract.encoding == "poisson" and contract.input_shape == (4, 2, 3, 20, 28)
    x = np.random.default_rng(0).choice([-1.0, 0.0, 1.0], size=(4, 2, 3, 20, 28)).astype(np.float32)
    out, _ = run_graph(path, x)
    with torch.no_grad():
        ref = model.run(torch.from_numpy(x))
    assert np.abs(out[C.LOGITS] - ref.logits.numpy()).max() < 1e-4


def test_bad_export_requests(small_checkpoint, tmp_path):
    ckpt, _ = small_checkpoint
    with pytest.raises(UserError, match="layout"):
        export(ckpt, tmp_path, layout="diagonal")
    with pytest.raises(UserError, match="not an edge-snn checkpoint|does not exist"):
        export(tmp_path / "missing.pt", tmp_path)
