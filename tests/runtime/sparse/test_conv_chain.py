"""A layer's convolutions and LIF chain in one pass (:mod:`conv_chain`): the same bits as the two units apart.

The reference is the same runner with each fused unit set to run its two parts
one after the other (``fused = False``), streamed over the same calls: every
output (logits, every state, the spike counts) must be bit-identical, with
the chain matched as LIF steps and with it interpreted. The LIF matcher must
refuse any chain that computes something else.
"""

import numpy as np
import pytest

from edge_snn.export.exporter import ExportOptions, export_checkpoint
from edge_snn.runtime import contract as C
from edge_snn.runtime.backends import make_runner
from edge_snn.runtime.backends.sparse import chain_kernel as K
from edge_snn.runtime.backends.sparse.lif_steps import SPIKE_SLOT, SUM_SLOT, X, match_lif_steps
from edge_snn.runtime.backends.sparse.program import ConvChainUnit
from edge_snn.runtime.model_file import load_onnx_contract


@pytest.fixture(scope="module")
def time_major(small_checkpoint, tmp_path_factory):
    ckpt, _ = small_checkpoint
    path = tmp_path_factory.mktemp("conv_chain") / "t3.onnx"
    export_checkpoint(ckpt, path, ExportOptions(timesteps=3))
    return path


@pytest.fixture(scope="module")
def batch_of_two(small_checkpoint, tmp_path_factory):
    ckpt, _ = small_checkpoint
    path = tmp_path_factory.mktemp("conv_chain") / "t3b2.onnx"
    export_checkpoint(ckpt, path, ExportOptions(timesteps=3, batch=2))
    return path


@pytest.fixture(scope="module")
def frames():
    return (np.random.default_rng(7).random((9, 1, 2, 24, 32)) < 0.3).astype(np.float32)


def _stream(runner, contract, frames):
    state = {C.STATE_IN + s.name: np.zeros(s.shape, s.dtype) for s in contract.state}
    calls = []
    for i in range(frames.shape[0] // contract.timesteps):
        outputs, state = runner.step({C.INPUT: frames[i * contract.timesteps:(i + 1) * contract.timesteps]}, state)
        calls.append({**outputs, **state})
    return calls


def test_a_batch_of_two_fused_computes_the_same_bits_as_apart(batch_of_two, frames):
    """Chain rows are batch x channels; each image's step runs its own rows of the chain."""
    contract = load_onnx_contract(batch_of_two)
    pair = np.concatenate([frames, frames[::-1]], axis=1)  # two different clips, one per batch entry
    fused = make_runner(batch_of_two, "sparse", threads=2, mode="event").activate()
    apart = make_runner(batch_of_two, "sparse", threads=2, mode="event").activate()
    assert len(_fused_units(fused)) >= 4
    for unit in _fused_units(apart):
        unit.fused = False
    for a, b in zip(_stream(fused, contract, pair), _stream(apart, contract, pair)):
        assert all(np.array_equal(a[k], b[k]) for k in a)
        assert not np.array_equal(a[C.LOGITS][0], a[C.LOGITS][1])


def _fused_units(runner):
    return [u for u in runner.program.units if isinstance(u, ConvChainUnit)]


def _repack(runner, lanes):
    """Every conv's event weights as rows of ``lanes`` channels (64: zero-padded blocks for these small layers)."""
    from edge_snn.runtime.backends.sparse.event_conv import pack_weights

    for unit in runner.program.parts():
        for member in getattr(unit, "members", []):
            if hasattr(member, "packed"):
                member.packed = pack_weights(member.layer.weight.astype(np.float32), lanes)


@pytest.mark.parametrize("threads,positions,lanes", [(1, 1024, 32), (2, 1024, 32), (1, 64, 32), (1, 1024, 64), (2, 64, 64)])
def test_fused_layers_compute_the_same_bits_as_conv_then_chain(time_major, frames, threads, positions, lanes):
    """Work items of the whole map, and (``positions`` 64) of two rows of 32 each: the chain then runs row by row;
    weight rows of 32 and of 64 channels."""
    contract = load_onnx_contract(time_major)
    fused = make_runner(time_major, "sparse", threads=threads, mode="event").activate()
    interpreted = make_runner(time_major, "sparse", threads=threads, mode="event").activate()
    apart = make_runner(time_major, "sparse", threads=threads, mode="event").activate()
    for runner in (fused, interpreted, apart):
        _repack(runner, lanes)
        for unit in _fused_units(runner):
            unit.group.chain_positions = positions
    units = _fused_units(fused)
    assert len(units) >= 4  # the layers whose chains are compiled (conv5-7's 6x8 maps are too small here)
    assert all(u.steps[1].shape[0] == contract.timesteps for u in units)  # each matched as LIF steps
    for unit in _fused_units(interpreted):
        unit.steps = (unit.steps[0], np.zeros((0, 7), np.int64), -1, -1)
    for unit in _fused_units(apart):
        unit.fused = False
    want = _stream(apart, contract, frames)
    for runner in (fused, interpreted):
        got = _stream(runner, contract, frames)
        for a, b in zip(got, want):
            assert a.keys() == b.keys()
            for key in a:
                assert np.array_equal(a[key], b[key]), key
    assert any(np.any(v) for v in want[-1].values())  # something fired


def test_a_call_with_dense_steps_runs_step_by_step_with_the_same_results(time_major, frames):
    """Dense and mixed calls: each step's conv, then that LIF step (lif_steps.lif_step); the bits of the parts apart."""
    contract = load_onnx_contract(time_major)
    auto = make_runner(time_major, "sparse", threads=1, mode="auto", crossover=0.3).activate()
    apart = make_runner(time_major, "sparse", threads=1, mode="auto", crossover=0.3).activate()
    for unit in _fused_units(apart):
        unit.fused = False
    stepwise = []
    for unit in _fused_units(auto):
        group, run = unit.group, unit.group._run_stepwise
        group._run_stepwise = lambda *args, run=run, name=group.members[0].layer.work.name: (stepwise.append(name), run(*args))
    got, want = _stream(auto, contract, frames), _stream(apart, contract, frames)
    stats = auto.work_stats()
    assert any(layer["dense_calls"] for layer in stats["layers"]) and any(layer["event_calls"] for layer in stats["layers"])
    assert len(set(stepwise)) >= 2  # the dense first layer, and others
    for a, b in zip(got, want):
        assert all(np.array_equal(a[k], b[k]) for k in a)


def _lif_chain(time_major):
    runner = make_runner(time_major, "sparse", threads=1).activate()
    unit = _fused_units(runner)[1]
    return unit.chain.program, unit.group.outputs


def test_the_exported_lif_chain_matches_step_by_step(time_major):
    program, steps = _lif_chain(time_major)
    rows, state, final = match_lif_steps(program, steps)
    assert [program.full_inputs[i] for i in rows[:, X]] == steps
    assert program.full_inputs[state].startswith(C.STATE_IN)
    assert any(name.startswith(C.STATE_OUT) for name in program.stores[final])
    assert len(set(rows[:, SPIKE_SLOT])) == len(steps) and (rows[:, SUM_SLOT] >= 0).all()
    bounds = program.step_bounds(steps)
    assert bounds[0] == 0 and bounds[-1] == len(program.code) and list(bounds) == sorted(bounds)
    assert program.step_bounds(steps[::-1]) is None  # steps read in another order cannot run one by one


def _edited(program, edit):
    code = edit(program.code.copy())
    return type(program)(**{**program.__dict__, "code": code})


@pytest.mark.parametrize("edit", ["reset operands swapped", "reset by another row", "input squared",
                                  "an extra store", "a clamp"])
def test_a_chain_that_computes_anything_else_is_not_matched(time_major, edit):
    program, steps = _lif_chain(time_major)
    code = program.code
    subs = [i for i in range(len(code)) if code[i, 0] == K.SUB]
    resets = [i for i in range(len(code)) if code[i, 0] == K.MUL and code[i + 1, 0] == K.SUB]

    def change(c):
        if edit == "reset operands swapped":  # mem = s * th - v
            i = subs[1]
            c[i, 2:4], c[i, 4:6] = code[i, 4:6], code[i, 2:4]
        elif edit == "reset by another row":  # the reset subtracts a value other than the threshold
            c[resets[0], 5] = code[resets[0], 5] + 1
        elif edit == "input squared":  # the BN scale multiplies the step's input by itself
            first = next(i for i in range(len(code)) if code[i, 0] == K.MUL and code[i, 2] == K.FULL)
            c[first, 4:6] = code[first, 2:4]
        elif edit == "an extra store":  # the membrane after step 0 stored to the spike's slot as well
            c = np.insert(c, subs[0] + 1, [K.STORE, 0, K.REGISTER, code[subs[0], 1], 0, 0], axis=0)
        elif edit == "a clamp":  # mem = max(v - s * th, v)
            c[subs[0], 0] = K.MAX
        return c

    edited = _edited(program, change)
    assert not np.array_equal(edited.code, program.code)
    assert match_lif_steps(edited, steps) is None


def test_spike_counts_from_the_chains_equal_the_counted_inputs(time_major, frames):
    """A conv reading a chain's spikes takes their nonzero count from the chain's exact spike sum instead of counting."""
    from edge_snn.runtime.backends.sparse.program import ChainUnit

    contract = load_onnx_contract(time_major)
    told = make_runner(time_major, "sparse", threads=1).activate()
    counting = make_runner(time_major, "sparse", threads=1).activate()
    chains = [u for u in counting.program.parts() if isinstance(u, ChainUnit)]
    assert sum(len(u.counted) for u in chains) >= 4 * contract.timesteps  # spikes of >= 4 layers, every step
    for unit in chains:
        unit.counted = {}
    got, want = _stream(told, contract, frames), _stream(counting, contract, frames)
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(got, want) for k in a)
    layers = zip(told.work_stats()["layers"], counting.work_stats()["layers"])
    assert all(a["input_rate"] == b["input_rate"] and a["mode"] == b["mode"] for a, b in layers)


def test_only_summed_spikes_count_as_known_nonzero_counts(time_major):
    """Each step's spike store maps to that step's spike sum; a sum of a stored non-spike (the final membrane) is no count."""
    program, steps = _lif_chain(time_major)
    rows, _, final = match_lif_steps(program, steps)
    assert program.counted_stores() == {int(r[SPIKE_SLOT]): int(r[SUM_SLOT]) for r in rows}
    code = program.code
    last_sum = max(i for i in range(len(code)) if code[i, 0] == K.SUM)
    last_sub = max(i for i in range(len(code)) if code[i, 0] == K.SUB)
    moved = [K.SUM, code[last_sum, 1], K.REGISTER, code[last_sub, 1], 0, 0]  # the last sum now adds the final membrane
    edited = _edited(program, lambda c: np.insert(np.delete(c, last_sum, axis=0), last_sub, moved, axis=0))
    counted = edited.counted_stores()
    assert final >= 0 and final not in counted and int(rows[-1, SPIKE_SLOT]) not in counted
    assert len(counted) == len(steps) - 1
