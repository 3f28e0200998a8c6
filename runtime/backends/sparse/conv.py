"""Convolution nodes: event-driven or dense per call, from the measured nonzero rate of the input.

For each ``Conv`` node the planner finds its layer (the weight initializer it
reads, shared by the T steps of a time-major graph), and for QDQ graphs the
integer form: ``Conv(DequantizeLinear(QuantizeLinear(x)), DequantizeLinear(w_int8))``
with zero points 0 becomes int8 input integers times int8 weights, summed
exactly in int32, then scaled once by ``input scale x weight scale[c_out]``.

Per call the unit counts the input's nonzeros: at or below the layer's
*crossover* rate it builds the compressed input and runs
:func:`.event_conv.event_conv`; above it, the dense layer (:class:`.dense.DenseConv`).
A layer's crossover is ``crossover - LIST_COST / (dense MACs per input element)``:
event mode costs ``LIST_COST`` adds per input element (building the lists)
plus one add per synaptic event, dense mode ``crossover``-times less per MAC,
so a layer with few MACs per input (the 1x1 classifier: 21) runs dense at any
rate, a 3x3 layer with 64 outputs (576) from ~26% on. ``ConvTranspose``
(the FCN upsampler, 21 channels) always runs dense. Every call adds to its
layer's :class:`LayerWork`: input elements and nonzeros, the mode, the
synaptic operations performed (event mode: one add or multiply-add per
nonzero input, tap inside the map and output channel) or the dense MACs
(taps that read the map, padding excluded).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime.backends.sparse.buffers import aligned_empty
from edge_snn.runtime.backends.sparse.graph import Graph
from edge_snn.runtime.conv_taps import inside_pairs
from edge_snn.runtime.model_file import node_attributes

MODES = ("auto", "event", "dense")
DEFAULT_CROSSOVER = 0.5  # nonzero fraction above which dense wins, before the list cost (docs/benchmarks.md, rate sweep)
LIST_CACHE_BYTES = 1024 * 1024  # lists per event_conv call (ConvGroup); 256 KiB measured the same, within noise
CHAIN_POSITIONS = 1024  # output positions per work item of a fused conv + chain call: the membrane stays in L2
LIST_COST = 20.0  # compressing one input element costs about as much as 20 synaptic adds (1.7 ns vs 12 G adds/s)


@dataclass
class LayerWork:
    """What one conv layer did since the last reset (all nodes sharing its weight, all calls)."""

    name: str
    op: str
    integer: bool
    nodes: int = 0
    calls: int = 0
    event_calls: int = 0
    dense_calls: int = 0
    input_elements: int = 0
    input_nonzero: int = 0
    synaptic_ops: int = 0
    dense_macs: int = 0
    _dense_needed: float = 0.0
    seconds: float = 0.0  # wall time inside this layer's conv units (input scan, lists, kernel, dense call)
    crossover: float | None = None  # the input nonzero rate above which this layer runs dense (see the module doc)

    def as_dict(self) -> dict:
        return {"name": self.name, "op": self.op, "integer": self.integer, "nodes": self.nodes, "calls": self.calls,
                "input_rate": self.input_nonzero / self.input_elements if self.input_elements else None,
                "event_calls": self.event_calls, "dense_calls": self.dense_calls,
                "mode": "event" if self.dense_calls == 0 and self.event_calls else "dense" if self.event_calls == 0 and self.dense_calls else "mixed" if self.calls else None,
                "synaptic_ops": self.synaptic_ops, "dense_macs": self.dense_macs,
                "needed_ops": self.needed_ops, "seconds": self.seconds, "crossover": self.crossover}

    @property
    def needed_ops(self) -> int:
        """Synaptic operations the measured input needs: exact for event calls, rate x MACs for dense ones."""
        return self.synaptic_ops + int(round(self._dense_needed))

    def reset(self) -> None:
        self.calls = self.event_calls = self.dense_calls = 0
        self.input_elements = self.input_nonzero = self.synaptic_ops = self.dense_macs = 0
        self.seconds = self._dense_needed = 0.0


def nonzero_key(name: str) -> tuple:
    """Where a unit leaves the nonzero count of value ``name`` among a run's values, when it knows it exactly."""
    return ("nonzero", name)


def lanes_for(c_out: int) -> int:
    """Output channels per weight row: 64 where they divide ``c_out`` (a list visit adds twice the channels), else 32."""
    from edge_snn.runtime.backends.sparse.simd import LANES, WIDE_LANES

    return WIDE_LANES if c_out % WIDE_LANES == 0 else LANES


def layer_name(weight_source: str, known: list[str]) -> str:
    """The contract layer a weight initializer belongs to (``convs.conv2.weight_int8`` -> ``conv2``)."""
    parts = set(weight_source.replace("_", ".").split("."))
    return next((name for name in known if name in parts), weight_source)


def _geometry(attrs: dict, x_shape, w_shape):
    if attrs.get("auto_pad", "NOTSET") != "NOTSET":
        raise UserError("the sparse backend needs explicit conv pads (auto_pad NOTSET); re-export the model")
    if len(x_shape) != 4:
        raise UserError(f"the sparse backend runs 2-D convolutions only (input of shape {tuple(x_shape)})")
    kh, kw = w_shape[2:]
    top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
    return (kh, kw), tuple(attrs.get("strides", [1, 1])), tuple(attrs.get("dilations", [1, 1])), (top, left, bottom, right)


@dataclass
class ConvLayer:
    """A layer's weights in every form its nodes need, its dense sessions and its work counters."""

    work: LayerWork
    weight: np.ndarray  # float32 [C_out, C_in, KH, KW] (the folded value the graph computes with)
    bias: np.ndarray | None
    integer_weight: np.ndarray | None = None  # int8, same layout
    weight_scale: np.ndarray | None = None  # float32 [C_out]
    packed: np.ndarray | None = None  # float32 rows for event mode (see event_conv.pack_weights)
    packed_integer: np.ndarray | None = None  # int8 rows
    dense: dict = field(default_factory=dict)


class ConvUnit:
    """One Conv node: its geometry, its layer and where its input comes from. :class:`ConvGroup` runs it."""

    def __init__(self, node, graph: Graph, layer: ConvLayer, order: int, integer_input: tuple[str, float] | None):
        from edge_snn.runtime.backends.sparse import event_conv as E

        self.node, self.layer, self.order = node, layer, order
        self.attrs = node_attributes(node)
        self.attrs_key = tuple(sorted((k, str(v)) for k, v in self.attrs.items()))
        if self.attrs.get("group", 1) != 1:
            raise UserError(f"{graph.source}: grouped convolution (group={self.attrs['group']}, node {node.name}) is not "
                            "supported by the sparse backend; run it with --backend onnxruntime")
        self.x_name = node.input[0]
        self.x_shape = graph.shapes.get(self.x_name)
        self.y_name = node.output[0]
        self.y_shape = graph.shapes.get(self.y_name)
        if self.x_shape is None or self.y_shape is None:
            raise UserError(f"{graph.source}: conv node {node.name} has no static shapes; re-export the model")
        self.kernel, self.strides, self.dilations, self.pads = _geometry(self.attrs, self.x_shape, layer.weight.shape)
        self.integer = integer_input is not None and layer.integer_weight is not None
        self.data = integer_input[0] if self.integer else self.x_name
        self.input_scale = np.float32(integer_input[1]) if self.integer else None
        b, c_in, h, w = self.x_shape
        c_out, out_h, out_w = self.y_shape[1:]
        top, left, bottom, right = self.pads
        self.grid = (h + top + bottom, w + left + right)
        taps_inside = (inside_pairs(h, out_h, self.kernel[0], self.strides[0], top, self.dilations[0])
                       * inside_pairs(w, out_w, self.kernel[1], self.strides[1], left, self.dilations[1]))
        self.dense_macs = b * taps_inside * c_in * c_out
        self.list_cost_rate = LIST_COST * b * c_in * h * w / max(self.dense_macs, 1)  # lists, as a nonzero rate
        if self.integer:
            if layer.packed_integer is None:
                layer.packed_integer = E.pack_weights(layer.integer_weight, lanes_for(c_out))
            self.packed = layer.packed_integer
            self.scale = (layer.weight_scale.astype(np.float64) * float(self.input_scale))
            self.accumulator = np.int32
            self.list_dtype = np.dtype(np.int8)
        else:
            if layer.packed is None:
                layer.packed = E.pack_weights(layer.weight.astype(np.float32), lanes_for(c_out))
            self.packed = layer.packed
            self.scale = np.ones(c_out, np.float64)
            self.accumulator = np.float32
            self.list_dtype = np.dtype(np.float32)
        self.bias = np.zeros(c_out, np.float64) if layer.bias is None else layer.bias.astype(np.float64)
        layer.work.nodes += 1

    def group_key(self) -> tuple:
        """Nodes with equal keys compute the same convolution on different inputs (the steps of one layer)."""
        return id(self.layer), self.x_shape, self.attrs_key, self.integer, self.input_scale

    def dense_session(self, threads: int):
        key = (self.x_shape, self.attrs_key)
        if key not in self.layer.dense:
            from edge_snn.runtime.backends.sparse.dense import DenseConv

            self.layer.dense[key] = DenseConv("Conv", self.attrs, self.x_shape, self.layer.weight, self.layer.bias, threads)
        return self.layer.dense[key]


class ConvGroup:
    """Conv nodes of one layer with one geometry (the T steps of a time-major graph), run as one unit.

    Each node's input picks its own mode from its nonzero rate. The inputs in
    event mode are compressed together and go through one
    :func:`.event_conv.event_conv` call, which loads each weight slab once for
    all of them: on dl-vgg9's conv8 (9.4 MB of float weights) that took the
    layer from 51 to 30 ms per frame against one call per step. A group of
    one node is the plain case (a step graph, or when grouping would make the
    schedule circular, see :mod:`.program`).
    """

    chain_positions = CHAIN_POSITIONS

    def __init__(self, members: list[ConvUnit], graph_outputs=()):
        self.members = members
        self.order = min(m.order for m in members)
        self.inputs = [m.data for m in members]
        self.outputs = [m.y_name for m in members]
        first = members[0]
        self._idx = np.empty(1, np.int32)  # grow-only list buffers, reused from call to call
        self._vals = np.empty(1, first.list_dtype)
        # The event outputs of a call, one slot per member. Reused from call to call when no output
        # leaves the graph (a call's conv outputs are dead before the next call): allocating them anew
        # made the process fault in up to 21 MB per layer and frame. (ChainUnit keeps the same rule.)
        leaving = set(graph_outputs).intersection(self.outputs)
        self._outputs = None if leaving else aligned_empty((len(members), *first.y_shape), np.float32)

    def run(self, env: dict, context, chain=None) -> bool:
        """Convolve every member into ``env``; True if ``chain`` (a chain unit and its step data) ran too.

        The chain runs fused (:mod:`.conv_chain`) when every member is
        event-driven in this call. Otherwise, when the chain was matched as LIF
        steps, each step's convolution (dense or event) is followed at once by
        that step of the chain, over the whole layer (:func:`.lif_steps.lif_step`):
        the step's output is still in cache. Else the chain is left to the caller.
        """
        from edge_snn.runtime.backends.sparse import event_conv as E

        start = time.perf_counter()
        first = self.members[0]
        work = first.layer.work
        planned = []
        for m in self.members:
            x = np.ascontiguousarray(env[m.data])
            if x.dtype != m.list_dtype:
                x = x.astype(m.list_dtype)
            known = env.get(nonzero_key(m.data))  # a chain's exact spike count (program.ChainUnit)
            nonzero = int(E.count_nonzero(x)) if known is None else known
            work.calls += 1
            work.input_elements += x.size
            work.input_nonzero += nonzero
            crossover = context.crossover - m.list_cost_rate
            work.crossover = crossover
            mode = context.mode if context.mode != "auto" else ("event" if nonzero <= crossover * x.size else "dense")
            planned.append((m, x, nonzero, mode))
        events = [(m, x, nonzero) for m, x, nonzero, mode in planned if mode == "event"]
        all_events = len(events) == len(self.members)
        lif_matched = chain is not None and chain[2].shape[0] > 0  # chain = (unit, bounds, lif steps, state, final)
        ran = chain is not None and (all_events or lif_matched)
        if ran and all_events:
            self._run_fused(env, events, *chain)
        elif ran:
            self._run_stepwise(env, planned, context, *chain)
        else:
            for m, x, nonzero, mode in planned:
                if mode == "dense":
                    env[m.y_name] = self._dense(m, x, nonzero, context)
            if events:
                self._run_events(env, events)
        work.seconds += time.perf_counter() - start
        return ran

    def _dense(self, m, x, nonzero: int, context, out=None) -> np.ndarray:
        """One member through the dense layer (into ``out`` when given), counted."""
        work = m.layer.work
        dense_x = x.astype(np.float32) * m.input_scale if m.integer else x
        work.dense_calls += 1
        work.dense_macs += m.dense_macs
        work._dense_needed += m.dense_macs * nonzero / x.size
        return m.dense_session(context.threads)(dense_x, out)

    def _run_stepwise(self, env: dict, planned: list, context, chain, bounds, lif, lif_state, lif_final) -> None:
        """Step by step: a member's convolution, then that step of the matched LIF chain over the layer."""
        from edge_snn.runtime.backends.sparse import event_conv as E
        from edge_snn.runtime.backends.sparse.lif_steps import lif_step

        first = self.members[0]
        for (m, _, _, _), out in zip(planned, self._outputs):
            env[m.y_name] = out
        bound = chain.bind(env)
        sums = np.zeros(max(len(chain.program.sums), 1), np.float64)
        membrane = np.empty(chain.rows * chain.length, np.float32)
        for k, ((m, x, nonzero, mode), out) in enumerate(zip(planned, self._outputs)):
            if mode == "dense":
                self._dense(m, x, nonzero, context, out)
            else:
                starts, not_one = self._build_lists([(m, x, nonzero)])
                self._count(1, E.event_conv(starts, self._idx, self._vals, not_one == 0, *self._kernel_arguments(),
                                            out.reshape(-1, *first.y_shape[1:])))
            lif_step(lif, k, lif_state, lif_final, membrane, bound.full_addresses, bound.rows, bound.out_addresses, sums,
                     chain.rows, chain.length)
        chain.finish(env, bound, sums)

    def _run_events(self, env: dict, events: list) -> None:
        """The event-mode members, a run of them per call: lists built, then convolved while still in cache."""
        from edge_snn.runtime.backends.sparse import event_conv as E

        first = self.members[0]
        synaptic = 0
        for a, b in _runs([nonzero for _, _, nonzero in events], first.list_dtype.itemsize + 4):
            starts, not_one = self._build_lists(events[a:b])
            y = np.empty((b - a, *first.y_shape), np.float32) if self._outputs is None else self._outputs[a:b]
            synaptic += E.event_conv(starts, self._idx, self._vals, not_one == 0, *self._kernel_arguments(),
                                     y.reshape(-1, *first.y_shape[1:]))
            for (m, _, _), out in zip(events[a:b], y):
                env[m.y_name] = out
        self._count(len(events), synaptic)

    def _run_fused(self, env: dict, events: list, chain, bounds: np.ndarray, lif: np.ndarray, lif_state: int,
                   lif_final: int) -> None:
        """All members event-driven, and the chain that reads them run inside the convolution's work items."""
        from edge_snn.runtime.backends.sparse.conv_chain import event_conv_chain

        first = self.members[0]
        starts, not_one = self._build_lists(events)
        y = self._outputs
        for (m, _, _), out in zip(events, y):
            env[m.y_name] = out
        bound = chain.bind(env)
        program = chain.program
        synaptic, sums = event_conv_chain(starts, self._idx, self._vals, not_one == 0, *self._kernel_arguments(),
                                          y.reshape(-1, *first.y_shape[1:]), first.y_shape[0], program.code, bounds,
                                          program.registers, bound.full_addresses, bound.rows, bound.out_addresses,
                                          len(program.sums), lif, lif_state, lif_final, self.chain_positions)
        chain.finish(env, bound, sums)
        self._count(len(events), synaptic)

    def _build_lists(self, events: list) -> tuple[np.ndarray, np.ndarray]:
        """The compressed inputs of ``events`` (see :func:`.event_conv.build_lists`) into the reused list buffers."""
        from edge_snn.runtime.backends.sparse import event_conv as E
        from edge_snn.runtime.backends.sparse.simd import image_addresses

        first = self.members[0]
        _, c_in, h, w = first.x_shape
        # the kernels read each input in place, by address; ``events`` keeps the arrays alive meanwhile
        addresses = image_addresses([x for _, x, _ in events])
        total = sum(nonzero for _, _, nonzero in events)
        if self._idx.size <= total:
            self._idx = np.empty(total + 1, np.int32)
            self._vals = np.empty(total + 1, first.list_dtype)
        starts = np.empty((addresses.size, first.grid[0] * first.grid[1] + 1), np.int64)
        not_one = np.empty(addresses.size, np.int64)
        E.build_lists(addresses, c_in, h, w, first.pads[0], first.pads[1], first.grid[0], first.grid[1],
                      starts, self._idx, self._vals, not_one)
        return starts, not_one

    def _kernel_arguments(self) -> tuple:
        """The weights, geometry and epilogue of the layer, as :func:`.event_conv.event_conv` takes them after the lists."""
        first = self.members[0]
        return (first.packed, first.x_shape[1], *first.kernel, first.grid[1], *first.strides, *first.dilations,
                first.scale, first.bias, first.accumulator)

    def _count(self, calls: int, synaptic: int) -> None:
        work = self.members[0].layer.work
        work.event_calls += calls
        work.synaptic_ops += synaptic * self.members[0].y_shape[1]


def _runs(nonzeros: list[int], entry_bytes: int) -> list[tuple[int, int]]:
    """Runs of consecutive members whose lists together fit in ``LIST_CACHE_BYTES`` (at least one member each).

    Every block of output channels reads the lists of all inputs of a call;
    while they fit in the core's cache, the lists just built are still there,
    and blocks after the first find them there too.
    """
    runs, a, held = [], 0, 0
    for n, count in enumerate(nonzeros):
        size = count * entry_bytes
        if n > a and held + size > LIST_CACHE_BYTES:
            runs.append((a, n))
            a, held = n, 0
        held += size
    runs.append((a, len(nonzeros)))
    return runs


def group_convolutions(units: list, graph_outputs, *, grouped: bool = True) -> list:
    """Conv units as :class:`ConvGroup` units: one per layer and geometry, or (``grouped=False``) one per node.

    Other units are returned unchanged. A group reuses its output buffers when
    none of its outputs is one of ``graph_outputs``.
    """
    groups: dict[tuple, list[ConvUnit]] = {}
    rest = []
    for unit in units:
        if isinstance(unit, ConvUnit):
            groups.setdefault(unit.group_key() if grouped else (id(unit),), []).append(unit)
        else:
            rest.append(unit)
    return [*rest, *(ConvGroup(members, graph_outputs) for members in groups.values())]


class ConvTransposeUnit:
    """One ConvTranspose node, always dense (the FCN upsampler: a few thousand MACs per step)."""

    def __init__(self, node, graph: Graph, layer: ConvLayer, order: int):
        self.node, self.layer, self.order = node, layer, order
        self.attrs = node_attributes(node)
        if self.attrs.get("group", 1) != 1:
            raise UserError(f"{graph.source}: grouped ConvTranspose (node {node.name}) is not supported by the sparse backend")
        self.x_name, self.y_name = node.input[0], node.output[0]
        self.x_shape = graph.shapes.get(self.x_name)
        if self.x_shape is None or len(self.x_shape) != 4:
            raise UserError(f"{graph.source}: ConvTranspose node {node.name} needs a static 4-D input shape")
        c_out = layer.weight.shape[1]
        self.dense_macs = int(np.prod(self.x_shape)) * c_out * layer.weight.shape[2] * layer.weight.shape[3]
        layer.work.nodes += 1
        self.session = None

    @property
    def inputs(self) -> list[str]:
        return [self.x_name]

    @property
    def outputs(self) -> list[str]:
        return [self.y_name]

    def run(self, env: dict, context) -> None:
        start = time.perf_counter()
        if self.session is None:
            from edge_snn.runtime.backends.sparse.dense import DenseConv

            self.session = DenseConv("ConvTranspose", self.attrs, self.x_shape, self.layer.weight, self.layer.bias, context.threads)
        x = env[self.x_name]
        work = self.layer.work
        work.calls += 1
        work.dense_calls += 1
        work.input_elements += x.size
        nonzero = int(np.count_nonzero(x))
        work.input_nonzero += nonzero
        work.dense_macs += self.dense_macs
        work._dense_needed += self.dense_macs * nonzero / x.size
        env[self.y_name] = self.session(x)
        work.seconds += time.perf_counter() - start


def _constant(graph: Graph, name: str, what: str, node) -> np.ndarray:
    if name not in graph.constants:
        raise UserError(f"{graph.source}: the {what} of {node.op_type} node {node.name} is not a constant; the sparse "
                        "backend needs constant weights (edge-snn export writes them)")
    return graph.constants[name]


def _integer_weight(graph: Graph, name: str, c_out: int):
    """(int8 weight, per-output-channel scale) behind a folded ``DequantizeLinear`` weight, or None."""
    dq = graph.folded_from.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        return None
    ints = graph.constants.get(dq.input[0])
    scale = graph.constants.get(dq.input[1])
    zero = graph.constants.get(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else None
    if ints is None or scale is None or ints.dtype != np.int8 or (zero is not None and np.any(zero != 0)):
        return None
    if scale.size == 1:
        scale = np.full(c_out, float(scale.reshape(-1)[0]), np.float32)
    elif node_attributes(dq).get("axis", 1) != 0 or scale.size != c_out:
        return None
    return ints, scale.astype(np.float32).reshape(c_out), dq.input[0]


def _integer_input(graph: Graph, name: str, producer: dict):
    """(int8 tensor name, scale) when ``name`` is ``DequantizeLinear(int8, scalar scale, zero point 0)``."""
    dq = producer.get(name)
    if dq is None or dq.op_type != "DequantizeLinear" or graph.dtypes.get(dq.input[0]) != np.dtype(np.int8):
        return None
    scale = graph.constants.get(dq.input[1])
    zero = graph.constants.get(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else None
    if scale is None or scale.size != 1 or (zero is not None and np.any(zero != 0)):
        return None
    return dq.input[0], float(scale.reshape(-1)[0])


def plan_convolutions(graph: Graph, known_layers: list[str], *, integer: bool = True) -> tuple[list, dict[str, LayerWork]]:
    """A unit per Conv/ConvTranspose node (in graph order) and the work counters of their layers."""
    producer = graph.producer_of()
    layers: dict[str, ConvLayer] = {}
    units = []
    for order, node in enumerate(graph.nodes):
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        weight = _constant(graph, node.input[1], "weight", node)
        bias = _constant(graph, node.input[2], "bias", node).astype(np.float32) if len(node.input) > 2 and node.input[2] else None
        c_out = weight.shape[0] if node.op_type == "Conv" else weight.shape[1]
        int_weight = _integer_weight(graph, node.input[1], c_out) if integer and node.op_type == "Conv" else None
        source = int_weight[2] if int_weight else (graph.folded_from[node.input[1]].input[0] if node.input[1] in graph.folded_from else node.input[1])
        key = f"{node.input[1]}|{node.input[2] if len(node.input) > 2 else ''}"
        if key not in layers:
            layers[key] = ConvLayer(LayerWork(layer_name(source, known_layers), node.op_type, int_weight is not None),
                                    weight.astype(np.float32), bias,
                                    integer_weight=int_weight[0] if int_weight else None,
                                    weight_scale=int_weight[1] if int_weight else None)
        layer = layers[key]
        if node.op_type == "Conv":
            int_input = _integer_input(graph, node.input[0], producer) if int_weight else None
            units.append(ConvUnit(node, graph, layer, order, int_input))
        else:
            units.append(ConvTransposeUnit(node, graph, layer, order))
    works: dict[str, LayerWork] = {}
    for layer in layers.values():
        name, n = layer.work.name, 2
        while name in works:  # two weights mapped to one name: keep both, distinctly
            name, n = f"{layer.work.name}#{n}", n + 1
        layer.work.name = name
        works[name] = layer.work
    return units, works
