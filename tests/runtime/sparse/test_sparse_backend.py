"""The sparse backend on real exported graphs: the same spikes and outputs as ONNX Runtime, and honest work counts.

Every graph here is exported from a checkpoint by ``edge_snn.export``; the
reference is ONNX Runtime running the same file. Spikes are compared per layer
and step through the parity tool's own graph rewrite (extra spike outputs).
"""

import json

import numpy as np
import onnx
import pytest
import torch

from edge_snn.errors import UserError
from edge_snn.export.exporter import ExportOptions, build_graph, export_checkpoint, save_onnx_atomic
from edge_snn.models import build_model
from edge_snn.parity import TEACHER, _spike_names, _split_steps, _with_spike_outputs, teacher_forced_graph
from edge_snn.runtime import Session
from edge_snn.runtime import contract as C
from edge_snn.runtime.backends import BACKENDS, availability, make_runner
from edge_snn.runtime.model_file import load_onnx_contract

from model_fixtures import randomized
from sparse_helpers import taps_inside
from torch_blocking import run_blocked


def with_spike_outputs(path, tmp_path):
    proto = onnx.load(str(path))
    contract = load_onnx_contract(path)
    names = _spike_names(contract)
    extended = tmp_path / (path.stem + ".spikes.onnx")
    onnx.save(_with_spike_outputs(proto, [n for v in names.values() for n in v]), str(extended))
    return extended, contract, names


def stream(runner, contract, frame):
    """Every call of one frame from a zero state: (outputs of the last call, spikes per layer per step, all outputs)."""
    state = {C.STATE_IN + s.name: np.zeros(s.shape, s.dtype) for s in contract.state}
    calls = []
    for i in range(frame.shape[0] // contract.timesteps):
        outputs, state = runner.step({C.INPUT: frame[i * contract.timesteps:(i + 1) * contract.timesteps]}, state)
        calls.append(outputs)
    return calls


def spikes_per_step(calls, contract, names):
    return {layer: [s for out in calls for s in _split_steps([out[n] for n in names[layer]], contract)] for layer in names}


def compare_with_onnxruntime(path, frame, tmp_path, **options):
    """(per-layer spike agreement, max |logit diff|, class-map agreement, the sparse runner) for one frame."""
    extended, contract, names = with_spike_outputs(path, tmp_path)
    reference = make_runner(extended, "onnxruntime").activate()
    sparse = make_runner(extended, "sparse", threads=1, **options).activate()
    want, got = stream(reference, contract, frame), stream(sparse, contract, frame)
    a, b = spikes_per_step(got, contract, names), spikes_per_step(want, contract, names)
    agreement = {layer: float(np.mean([np.mean(x == y) for x, y in zip(a[layer], b[layer])])) for layer in names}
    logits_got, logits_want = got[-1][C.LOGITS], want[-1][C.LOGITS]
    classes = float(np.mean(logits_got.argmax(1) == logits_want.argmax(1)))
    return agreement, float(np.abs(logits_got - logits_want).max()), classes, sparse, (a, b)


@pytest.fixture(scope="module")
def events():
    return (np.random.default_rng(1).random((6, 1, 2, 24, 32)) < 0.25).astype(np.float32)


@pytest.fixture(scope="module")
def exported(small_checkpoint, tmp_path_factory):
    ckpt, _ = small_checkpoint
    folder = tmp_path_factory.mktemp("sparse")
    paths = {}
    for key, options in {"time-major T=2": ExportOptions(timesteps=2), "layer-major T=3": ExportOptions(timesteps=3, layout="layer-major"),
                         "step graph T=1": ExportOptions(timesteps=1)}.items():
        paths[key] = folder / (key.replace(" ", "_").replace("=", "") + ".onnx")
        export_checkpoint(ckpt, paths[key], options)
    return paths


def test_sparse_is_a_registered_backend_that_is_available_here():
    assert BACKENDS["sparse"] == "edge_snn.runtime.backends.sparse"
    assert availability()["sparse"] is None


@pytest.mark.parametrize("graph", ["time-major T=2", "layer-major T=3", "step graph T=1"])
@pytest.mark.parametrize("mode", ["event", "dense", "auto"])
def test_spikes_and_outputs_equal_onnxruntime_while_streaming(exported, events, tmp_path, graph, mode):
    agreement, logit_diff, classes, sparse, _ = compare_with_onnxruntime(exported[graph], events, tmp_path, mode=mode)
    assert min(agreement.values()) >= 0.999, agreement  # near-threshold flips only
    assert logit_diff < 1e-3 and classes >= 0.999
    modes = {x["name"]: x["mode"] for x in sparse.work_stats()["layers"]}
    if mode != "auto":
        assert set(modes.values()) == {mode}, modes


def test_a_batch_of_two_runs_each_image_as_its_own_event_list(small_checkpoint, tmp_path):
    """Batch 2: the layer's steps and the batch's images go through one kernel call, each image by its own address."""
    ckpt, _ = small_checkpoint
    path = tmp_path / "batch2.onnx"
    export_checkpoint(ckpt, path, ExportOptions(timesteps=2, batch=2))
    frame = (np.random.default_rng(4).random((6, 2, 2, 24, 32)) < 0.25).astype(np.float32)
    frame[:, 1] *= 0.5  # the second image differs from the first: fewer, different spikes
    agreement, logit_diff, classes, sparse, _ = compare_with_onnxruntime(path, frame, tmp_path, mode="event")
    assert min(agreement.values()) >= 0.999, agreement
    assert logit_diff < 1e-3 and classes >= 0.999


def test_dense_mode_reproduces_onnxruntimes_spikes_bit_for_bit(exported, events, tmp_path):
    """Dense convs are ONNX Runtime's own kernel and the fused BN/LIF chain is exact float32: no spike may differ.

    (The logits pass through the bilinear Resize, whose interpolation rounds differently: 1e-6.)
    """
    _, logit_diff, _, _, (got, want) = compare_with_onnxruntime(exported["time-major T=2"], events, tmp_path, mode="dense")
    assert logit_diff < 1e-6
    assert all(np.array_equal(x, y) for layer in got for x, y in zip(got[layer], want[layer]))


def test_fcn_with_conv_transpose_and_poisson_input(small_image_checkpoint, tmp_path):
    ckpt, _ = small_image_checkpoint
    path = tmp_path / "fcn.onnx"
    export_checkpoint(ckpt, path, ExportOptions(timesteps=4))
    with Session(path) as session:
        frame = session.encode(np.random.default_rng(2).uniform(-1, 1, (3, 20, 28)).astype(np.float32))
    agreement, logit_diff, classes, sparse, _ = compare_with_onnxruntime(path, frame, tmp_path)
    assert min(agreement.values()) >= 0.999, agreement
    assert logit_diff < 1e-3 and classes >= 0.999
    layers = {x["name"]: x for x in sparse.work_stats()["layers"]}
    assert layers["deconv2"]["op"] == "ConvTranspose" and layers["deconv2"]["mode"] == "dense"
    assert layers["conv1"]["input_rate"] == pytest.approx(float(np.mean(frame != 0)))


@pytest.fixture(scope="module")
def qdq_model(tmp_path_factory):
    from edge_snn.quantize import quantize_ptq

    g = torch.Generator().manual_seed(0)
    batches = [(torch.rand((4, 1, 2, 16, 20), generator=g) < 0.3).float() for _ in range(2)]
    model = quantize_ptq(randomized(build_model("dl-vgg9", in_channels=2, num_classes=4, timesteps=4, width=0.125)), batches)
    proto, _ = build_graph(model, {"data": {"height": 16, "width": 20, "encoding": "events"}}, ExportOptions(timesteps=2))
    path = tmp_path_factory.mktemp("qdq") / "qdq.onnx"
    save_onnx_atomic(proto, path)
    return path


def test_qdq_graph_runs_as_integer_adds_with_the_same_spikes(qdq_model, tmp_path):
    frame = (np.random.default_rng(4).random((4, 1, 2, 16, 20)) < 0.3).astype(np.float32)
    agreement, logit_diff, classes, sparse, _ = compare_with_onnxruntime(qdq_model, frame, tmp_path, mode="event")
    assert min(agreement.values()) >= 0.999 and logit_diff < 1e-3 and classes >= 0.999
    layers = sparse.work_stats()["layers"]
    assert all(x["integer"] for x in layers), layers  # every conv: int8 inputs x int8 weights, summed in int32
    assert all(x["synaptic_ops"] > 0 for x in layers if x["input_rate"])


def test_the_parity_tools_teacher_forced_graph_runs_unchanged(exported, events, tmp_path):
    path = exported["time-major T=2"]
    contract = load_onnx_contract(path)
    graph = teacher_forced_graph(onnx.load(str(path)), contract)
    teacher_inputs = {layer: [TEACHER + n for n in names] for layer, names in _spike_names(contract).items()}
    rewired = tmp_path / "teacher.onnx"
    onnx.save(graph, str(rewired))
    rng = np.random.default_rng(5)
    feed = {C.INPUT: events[:2], **{C.STATE_IN + s.name: np.zeros(s.shape, s.dtype) for s in contract.state}}
    for names in teacher_inputs.values():  # arbitrary spikes forced into every layer
        for name in names:
            shape = [d.dim_value for i in graph.graph.input if i.name == name for d in i.type.tensor_type.shape.dim]
            feed[name] = (rng.random(shape) < 0.2).astype(np.float32)
    want = make_runner(rewired, "onnxruntime").activate().infer(feed)
    got = make_runner(rewired, "sparse", threads=1).activate().infer(feed)
    assert set(got) == set(want)
    for name in want:
        if name.startswith("spikes."):
            assert np.mean(got[name] == want[name]) >= 0.999, name
        else:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-4)


def test_synaptic_ops_are_the_adds_the_spikes_require(exported, events, tmp_path):
    """Event mode: one add per (input spike, kernel tap on the map, output channel), counted by brute force."""
    path = exported["time-major T=2"]
    _, _, _, sparse, (got, _) = compare_with_onnxruntime(path, events, tmp_path, mode="event")
    contract = load_onnx_contract(path)
    stats = {x["name"]: x for x in sparse.work_stats()["layers"]}
    assert sparse.work_stats()["calls"] == 3
    checked = 0
    for row in contract.layers:
        source = row["input"]
        if source not in got or row["name"] not in ("conv2", "conv4", "conv6", "conv7", "conv8", "classifier"):
            continue
        d = dict(conv6=2, conv7=2, conv8=12).get(row["name"], 1)
        k = row["kernel"][0]
        pad = d if k == 3 else 0
        expected = sum(taps_inside(s[0], (k, k), (pad, pad), (1, 1), (d, d), (row["h_out"], row["w_out"])) for s in got[source])
        assert stats[row["name"]]["synaptic_ops"] == expected * row["c_out"], row["name"]
        rate = np.mean([np.mean(s != 0) for s in got[source]])
        assert stats[row["name"]]["input_rate"] == pytest.approx(rate)
        checked += 1
    assert checked == 6


def test_the_crossover_picks_the_mode_from_the_measured_rate_and_the_list_cost(exported, events):
    """Event mode below ``crossover - LIST_COST / (MACs per input element)``, dense above."""
    from edge_snn.runtime.backends.sparse.conv import LIST_COST

    path = exported["time-major T=2"]
    contract = load_onnx_contract(path)
    macs_per_input = {row["name"]: row["c_out"] * row["kernel"][0] * row["kernel"][1] for row in contract.layers}
    for crossover in (0.0, 1.0):
        with Session(path, backend="sparse", threads=1, crossover=crossover) as session:
            session.run_encoded(events, session.fresh_state())
            layers = {x["name"]: x for x in session.runner.work_stats()["layers"] if x["input_rate"]}
        for name, x in layers.items():
            assert x["crossover"] <= crossover - LIST_COST / macs_per_input[name] + 1e-9  # taps in the padding: fewer MACs
            assert x["mode"] == ("event" if x["input_rate"] <= x["crossover"] else "dense"), (crossover, name, x)
        if crossover == 0.0:
            assert {x["mode"] for x in layers.values()} == {"dense"}
        else:  # 3x3 layers (>= 36 MACs per input element) go event-driven, the 1x1 classifier (4) stays dense
            assert layers["classifier"]["mode"] == "dense" and layers["conv2"]["mode"] == "event"


def test_a_time_major_layers_steps_run_as_one_conv_unit(exported):
    """The T conv nodes of each layer become one ConvGroup (one event_conv call over the steps), its pools one PoolGroup."""
    from edge_snn.runtime.backends.sparse.conv import ConvGroup
    from edge_snn.runtime.backends.sparse.program import Context, build_program

    from edge_snn.runtime.backends.sparse.graph import load_graph
    from edge_snn.runtime.backends.sparse.ops import run_node

    path, steps = exported["time-major T=2"], 2
    graph = load_graph(str(path), lambda node, inputs: run_node(node, inputs, str(path)))
    program = build_program(graph, [], Context(threads=1))
    groups = [u for u in program.parts() if isinstance(u, ConvGroup)]
    assert groups and all(len(g.members) == steps for g in groups)
    assert sum(len(g.members) for g in groups) == sum(n.op_type == "Conv" for n in graph.nodes)
    pools = [u for u in program.parts() if type(u).__name__ == "PoolGroup"]  # and its AveragePool nodes as one call
    assert pools and all(len(p.members) == steps for p in pools)
    assert sum(len(p.members) for p in pools) == sum(n.op_type == "AveragePool" for n in graph.nodes)


def _chain_units(runner):
    return [u for u in runner.program.parts() if type(u).__name__ == "ChainUnit"]


def test_chains_store_spikes_over_their_conv_outputs_and_compute_the_same(exported, events):
    """In the plain graph each layer's spikes are written where its conv outputs were, with the very same results.

    The reference is the same runner with its stores given buffers of their own,
    streamed over the same calls: every output (logits, every state) must be
    bit-identical. A store placed over an input the chain still reads goes red.
    """
    with_place = make_runner(exported["time-major T=2"], "sparse", threads=1, mode="event").activate()
    without = make_runner(exported["time-major T=2"], "sparse", threads=1, mode="event").activate()
    assert sum(len(u.in_place) for u in _chain_units(with_place)) >= 2 * 4  # the spikes of >= 4 layers, both steps
    for unit in _chain_units(without):
        for slot in unit.in_place:
            unit._buffers[slot] = np.empty(unit.program.shape, np.float32)
        unit.in_place = {}
    contract = load_onnx_contract(exported["time-major T=2"])
    for got, want in zip(stream(with_place, contract, events), stream(without, contract, events)):
        assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in got)


def test_a_conv_output_someone_else_reads_is_never_written_over(exported, events, tmp_path):
    """A conv output that is also a graph output keeps its values, call after call; leaving spikes get arrays of their own."""
    proto = onnx.load(str(exported["time-major T=2"]))
    conv = next(n for n in proto.graph.node if n.op_type == "Conv" and "conv2" in n.input[1])
    proto.graph.node.append(onnx.helper.make_node("Identity", [conv.output[0]], ["conv2_current"]))
    proto.graph.output.append(onnx.helper.make_tensor_value_info("conv2_current", onnx.TensorProto.FLOAT, None))
    path = tmp_path / "conv_out.onnx"
    onnx.save(proto, str(path))
    contract = load_onnx_contract(path)
    want = stream(make_runner(path, "onnxruntime").activate(), contract, events)
    got = stream(make_runner(path, "sparse", threads=1, mode="event").activate(), contract, events)
    for a, b in zip(got, want):  # every call's value, kept by the caller while later calls run
        np.testing.assert_allclose(a["conv2_current"], b["conv2_current"], atol=1e-4)
        assert not np.array_equal(a["conv2_current"], (a["conv2_current"] > 0.5).astype(np.float32))  # not spikes
    extended, _, _ = with_spike_outputs(exported["time-major T=2"], tmp_path)
    leaving = set(onnx.load(str(extended)).graph.output[i].name for i in range(len(onnx.load(str(extended)).graph.output)))
    for unit in _chain_units(make_runner(extended, "sparse", threads=1).activate()):
        assert not any(leaving.intersection(unit.program.stores[slot]) for slot in unit.in_place)


def test_runner_contract_activate_infer_step_deactivate(exported, events):
    runner = make_runner(exported["step graph T=1"], "sparse", threads=1)
    with pytest.raises(RuntimeError, match="before activate"):
        runner.infer({})
    contract = load_onnx_contract(exported["step graph T=1"])
    with runner:
        state = {C.STATE_IN + s.name: np.zeros(s.shape, s.dtype) for s in contract.state}
        for t in range(3):
            outputs, state = runner.step({C.INPUT: events[t:t + 1]}, state)
            assert runner.state_step(state) == t + 1
            assert not any(k.startswith(C.STATE_OUT) for k in outputs) and C.LOGITS in outputs
        runner.reset_work_stats()
        assert runner.work_stats()["synaptic_ops"] == 0 and runner.work_stats()["calls"] == 0
        json.dumps(runner.work_stats())
    assert not runner.is_active


def test_bad_feed_and_unsupported_options_are_one_line_errors(exported):
    path = exported["time-major T=2"]
    with Session(path, backend="sparse", threads=1) as session:
        state = session.fresh_state()
        with pytest.raises(UserError, match="input 'input' has shape"):
            session.runner.infer({C.INPUT: np.zeros((3, 1, 2, 24, 32), np.float32), **state})
        with pytest.raises(UserError, match="missing"):
            session.runner.infer({C.INPUT: np.zeros((2, 1, 2, 24, 32), np.float32)})
    with pytest.raises(UserError, match="--providers"):
        make_runner(path, "sparse", providers=["CUDAExecutionProvider"])
    with pytest.raises(UserError, match="mode"):
        make_runner(path, "sparse", mode="fast").activate()


def test_a_graph_with_an_op_it_does_not_know_is_refused_at_load(exported, tmp_path):
    proto = onnx.load(str(exported["time-major T=2"]))
    logits = next(n for n in proto.graph.node if n.output[0] == C.LOGITS)
    logits.op_type = "Softmax"  # Identity -> Softmax: still a valid ONNX graph
    path = tmp_path / "softmax.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(UserError, match="operator Softmax") as err:
        make_runner(path, "sparse").activate()
    assert "\n" not in str(err.value)


def test_runs_with_torch_blocked(exported, events, tmp_path):
    np.save(tmp_path / "events.npy", events[:, 0])
    result = run_blocked(f"""
        import numpy as np
        from edge_snn.runtime import Session
        with Session({str(exported['time-major T=2'])!r}, backend="sparse", threads=1) as s:
            r = s.infer(np.load({str(tmp_path / 'events.npy')!r}))
            assert r.calls == 3 and r.logits.shape == (1, 4, 24, 32)
            assert s.runner.work_stats()["synaptic_ops"] > 0
        assert "torch" not in sys.modules
        print("ok")
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok" in result.stdout


def test_kernels_that_cannot_load_are_one_line_error_not_a_silent_fallback(exported, tmp_path):
    result = run_blocked(f"""
        class NoNumba:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "numba":
                    raise ImportError("numba is blocked")
        sys.meta_path.insert(0, NoNumba())
        from edge_snn.errors import UserError
        from edge_snn.runtime.backends import availability, make_runner
        assert "numba" in availability()["sparse"]
        try:
            make_runner({str(exported['time-major T=2'])!r}, "sparse").activate()
        except UserError as err:
            print("refused:", err)
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    line = result.stdout.strip()
    assert line.startswith("refused:") and "numba" in line and "--backend onnxruntime" in line and "\n" not in line


def test_it_computes_whatever_the_graph_says(exported, events, tmp_path):
    """A scaled weight and a changed threshold constant in the file: the sparse backend follows the file, as ORT does."""
    proto = onnx.load(str(exported["time-major T=2"]))
    from onnx import numpy_helper

    greater = next(n for n in proto.graph.node if n.op_type == "Greater")
    for init in proto.graph.initializer:
        if init.name == "convs.conv4.weight":
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(-1.5), init.name))
        if init.name == greater.input[1]:
            init.CopyFrom(numpy_helper.from_array(np.array(0.7, np.float32), init.name))
    path = tmp_path / "tampered.onnx"
    onnx.save(proto, str(path))
    agreement, logit_diff, _, _, (got, _) = compare_with_onnxruntime(path, events, tmp_path, mode="event")
    assert min(agreement.values()) >= 0.999 and logit_diff < 1e-3
    _, _, _, _, (original, _) = compare_with_onnxruntime(exported["time-major T=2"], events, tmp_path, mode="event")
    assert not np.array_equal(got["conv1"][0], original["conv1"][0])  # the new threshold took effect
    assert not np.array_equal(got["conv4"][-1], original["conv4"][-1])


@pytest.mark.parametrize("arch", ["dl-vgg9", "fcn-vgg9"])
def test_dla_form_graph_with_slice_and_clip_threshold(arch, tmp_path):
    """The DLA-resident export (channel Slice input, Clip threshold, constant per-step BN) runs as ORT runs it."""
    torch.manual_seed(0)
    model = randomized(build_model(arch, in_channels=2, num_classes=4, timesteps=4, width=0.125))
    proto, _ = build_graph(model, {"data": {"height": 16, "width": 20, "encoding": "events"}}, ExportOptions(timesteps=4, dla=True))
    assert {"Slice", "Clip"} <= {n.op_type for n in proto.graph.node}
    path = tmp_path / "dla.onnx"
    save_onnx_atomic(proto, path)
    frame = (np.random.default_rng(6).random((4, 1, 2, 16, 20)) < 0.3).astype(np.float32)
    agreement, logit_diff, classes, sparse, _ = compare_with_onnxruntime(path, frame, tmp_path, mode="event")
    assert min(agreement.values()) >= 0.999 and logit_diff < 1e-3 and classes >= 0.999
    fused = [u for u in sparse.program.parts() if type(u).__name__ == "ChainUnit"]
    assert any("Clip" in {n.op_type for n in u.program.nodes} for u in fused)  # the threshold is fused, not node by node
