"""Record a network body as an ONNX graph by running it on symbolic tensors.

The models' bodies are written against a handful of operations (see
:mod:`edge_snn.models.torch_ops`). :class:`OnnxOps` implements the same
operations by appending ONNX nodes, and :class:`Sym` is the value they pass
around: a tensor name with its static shape, supporting ``+``, ``-``, ``*``
and ``fire`` so that :func:`edge_snn.neuron.lif_step` itself emits the
neuron. The exported graph is therefore derived from the very code the
PyTorch reference runs, not from a second description of the network.

Weights become initializers once per module, whatever the number of
timesteps; node and tensor names are deterministic (spike tensors are named by
:func:`edge_snn.runtime.contract.spike_tensor_name`).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge_snn.runtime.contract import spike_tensor_name

FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64


class GraphBuilder:
    """Nodes, initializers and I/O of one graph, with unique deterministic names."""

    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._counts: dict[str, int] = {}
        self._consts: dict[tuple, str] = {}

    def fresh(self, hint: str) -> str:
        n = self._counts.get(hint, 0)
        self._counts[hint] = n + 1
        return f"{hint}_{n}" if n else hint

    def initializer(self, array: np.ndarray, name: str) -> str:
        name = self.fresh(name)
        self.initializers.append(numpy_helper.from_array(np.array(array, order="C"), name))  # 0-d stays 0-d
        return name

    def const(self, value, dtype=np.float32) -> str:
        """A small constant, shared between all nodes that use the same value."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            self._consts[key] = self.initializer(array, "const")
        return self._consts[key]

    def node(self, op: str, inputs: list[str], *, name: str | None = None, outputs: int = 1, **attrs) -> list[str]:
        base = name or self.fresh(op.lower())
        outs = [base] if outputs == 1 else [f"{base}:{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=base, **attrs))
        return outs

    def add_input(self, name: str, shape, elem=FLOAT) -> None:
        self.inputs.append(helper.make_tensor_value_info(name, elem, list(shape)))

    def add_output(self, sym: Sym, name: str) -> None:
        """Expose ``sym`` as graph output ``name`` (through Identity when it has another name)."""
        source = sym.name
        if source != name:
            self.node("Identity", [source], name=name)
        self.outputs.append(helper.make_tensor_value_info(name, sym.elem, list(sym.shape)))


class Sym:
    """A graph value with a static shape; arithmetic appends nodes."""

    def __init__(self, graph: GraphBuilder, name: str, shape: tuple[int, ...], elem=FLOAT):
        self.g, self.name, self.shape, self.elem = graph, name, tuple(shape), elem

    def _dtype(self):
        return np.int64 if self.elem == INT64 else np.float32

    def _operand(self, other) -> str:
        return other.name if isinstance(other, Sym) else self.g.const(other, self._dtype())

    def _binary(self, op: str, a: str, b: str, other) -> Sym:
        shape = np.broadcast_shapes(self.shape, other.shape if isinstance(other, Sym) else np.shape(other))
        return Sym(self.g, self.g.node(op, [a, b])[0], shape, self.elem)

    def __add__(self, other):
        if isinstance(other, int) and other == 0:
            return self
        return self._binary("Add", self.name, self._operand(other), other)

    __radd__ = __add__

    def __mul__(self, other):
        return self._binary("Mul", self.name, self._operand(other), other)

    __rmul__ = __mul__

    def __sub__(self, other):
        return self._binary("Sub", self.name, self._operand(other), other)

    def detach(self) -> Sym:
        return self

    def fire(self, threshold: float) -> Sym:
        """Spikes ``1[U > theta]`` as float32 (Greater then Cast)."""
        above = self.g.node("Greater", [self.name, self.g.const(threshold)])[0]
        return Sym(self.g, self.g.node("Cast", [above], to=FLOAT)[0], self.shape)

    def rename(self, name: str) -> Sym:
        return Sym(self.g, self.g.node("Identity", [self.name], name=self.g.fresh(name))[0], self.shape, self.elem)


class OnnxOps:
    """The ONNX implementation of the body operations (see ``TorchOps`` for the semantics).

    ``weights`` turns a conv module into ONNX weight values (float, or int8
    with DequantizeLinear for quantized modules): see :mod:`edge_snn.export.weights`.
    """

    def __init__(self, graph: GraphBuilder, weights):
        self.g = graph
        self.weights = weights
        self.spike_counts: dict[str, Sym] = {}
        self.spike_tensors: dict[str, list[str]] = {}
        self._bn_tables: dict[int, tuple[str, str]] = {}

    # --- time ------------------------------------------------------------
    def select_step(self, x_seq: Sym, t: int) -> Sym:
        out = self.g.node("Gather", [x_seq.name, self.g.const(t, np.int64)], axis=0)[0]
        return Sym(self.g, out, x_seq.shape[1:])

    def fold_time(self, x_seq: Sym) -> Sym:
        return self._reshape(x_seq, (x_seq.shape[0] * x_seq.shape[1], *x_seq.shape[2:]))

    def _reshape(self, x: Sym, shape) -> Sym:
        out = self.g.node("Reshape", [x.name, self.g.const(list(shape), np.int64)])[0]
        return Sym(self.g, out, tuple(shape), x.elem)

    # --- layers ----------------------------------------------------------
    def conv(self, x: Sym, module) -> Sym:
        return self.weights.conv(self.g, x, module)

    def norm(self, x: Sym, bn, step: Sym, steps: int) -> Sym:
        """Per-timestep affine ``x * scale[t] + shift[t]`` from the folded BNTT tables."""
        key = id(bn)
        if key not in self._bn_tables:
            scale, shift = (t.numpy().astype(np.float32) for t in bn.folded())
            self._bn_tables[key] = (self.g.initializer(scale, "bntt_scale"), self.g.initializer(shift, "bntt_shift"))
        scale, shift = self._bn_tables[key]
        trained = bn.timesteps
        index = step + np.arange(steps, dtype=np.int64) if steps > 1 else step
        # Steps beyond the trained T: "cycle" wraps, "last" (and "error", which the runtime enforces) clamp.
        if bn.beyond == "cycle":
            index_name = self.g.node("Mod", [index.name, self.g.const(trained, np.int64)])[0]
        else:
            index_name = self.g.node("Min", [index.name, self.g.const([trained - 1], np.int64)])[0]
        channels = x.shape[1]
        batch = x.shape[0] // steps
        gathered = [self.g.node("Gather", [table, index_name], axis=0)[0] for table in (scale, shift)]
        if steps == 1:  # [1, C] -> [1, C, 1, 1], broadcast over [B, C, H, W]
            s, b = (Sym(self.g, self.g.node("Reshape", [n, self.g.const([1, channels, 1, 1], np.int64)])[0], (1, channels, 1, 1)) for n in gathered)
            return x * s + b
        s, b = (Sym(self.g, self.g.node("Reshape", [n, self.g.const([steps, 1, channels, 1, 1], np.int64)])[0], (steps, 1, channels, 1, 1)) for n in gathered)
        seq = self._reshape(x, (steps, batch, *x.shape[1:]))
        return self._reshape(seq * s + b, x.shape)

    def neuron(self, name: str, current: Sym, membrane: Sym, steps: int, params):
        """LIF over ``steps`` steps via :func:`edge_snn.neuron.lif_step`; spikes get contract names."""
        from edge_snn.neuron import lif_step

        names = self.spike_tensors.setdefault(name, [])
        if steps == 1:  # time-major: one named spike tensor per step of the call
            spikes, membrane = lif_step(current, membrane, params)
            spikes = spikes.rename(spike_tensor_name(name, len(names)))
        else:  # layer-major: the steps' spikes concatenated under one name
            per_step = []
            for chunk in self._split(current, steps):
                step_spikes, membrane = lif_step(chunk, membrane, params)
                per_step.append(step_spikes)
            spikes = self._concat(per_step, spike_tensor_name(name, None))
        names.append(spikes.name)
        count = Sym(self.g, self.g.node("ReduceSum", [spikes.name], keepdims=0)[0], ())
        self.spike_counts[name] = self.spike_counts[name] + count if name in self.spike_counts else count
        return spikes, membrane

    def _split(self, x: Sym, steps: int) -> list[Sym]:
        per = x.shape[0] // steps
        outs = self.g.node("Split", [x.name, self.g.const([per] * steps, np.int64)], outputs=steps, axis=0)
        return [Sym(self.g, o, (per, *x.shape[1:])) for o in outs]

    def _concat(self, parts: list[Sym], name: str) -> Sym:
        out = self.g.node("Concat", [p.name for p in parts], name=self.g.fresh(name), axis=0)[0]
        return Sym(self.g, out, (sum(p.shape[0] for p in parts), *parts[0].shape[1:]))

    def relu(self, x: Sym) -> Sym:
        return Sym(self.g, self.g.node("Relu", [x.name])[0], x.shape)

    def pool(self, x: Sym) -> Sym:
        out = self.g.node("AveragePool", [x.name], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)[0]
        h, w = ((d - 1) // 2 + 1 for d in x.shape[-2:])
        return Sym(self.g, out, (*x.shape[:-2], h, w))

    def resize(self, x: Sym, size) -> Sym:
        size = tuple(int(v) for v in size)
        if tuple(x.shape[-2:]) == size:
            return x
        shape = (*x.shape[:-2], *size)
        out = self.g.node("Resize", [x.name, "", "", self.g.const(list(shape), np.int64)],
                          mode="linear", coordinate_transformation_mode="align_corners")[0]
        return Sym(self.g, out, shape)

    def add(self, a: Sym, b: Sym) -> Sym:
        return a + b

    def sum_steps(self, x: Sym, steps: int) -> Sym:
        if steps == 1:
            return x
        seq = self._reshape(x, (steps, x.shape[0] // steps, *x.shape[1:]))
        out = self.g.node("ReduceSum", [seq.name, self.g.const([0], np.int64)], keepdims=0)[0]
        return Sym(self.g, out, seq.shape[1:])

    def mean_over_steps(self, acc: Sym, steps_done: Sym) -> Sym:
        denom = self.g.node("Cast", [steps_done.name], to=FLOAT)[0]
        return Sym(self.g, self.g.node("Div", [acc.name, denom])[0], acc.shape)
