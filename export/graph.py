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

The **DLA form** (``OnnxOps(..., dla=True)`` on a ``GraphBuilder(spike_gains=...)``,
``edge-snn export --dla``) is another driver of the same body, whose spiking
part uses only layers NVIDIA's DLA matrix lists as native: the step counter is
a Python int (the graph runs one whole frame from step 0), so each step's BNTT
scale and shift are constants (Scale layer, no Gather, no INT64); a step's
input is a channel Slice of the input folded to ``[1, T*C, H, W]``; the
threshold is ``Clip((U - theta) * g1 * g2, 0, 1)`` instead of Greater+Cast
(exact for every representable U, see :func:`edge_snn.export.dla.spike_gains`);
spike counts are dropped (no ReduceSum); tensors are named by renaming their
producer's output instead of through Identity; the mean over steps is a
multiplication by 1/T.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge_snn.runtime.contract import spike_tensor_name

FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64


class GraphBuilder:
    """Nodes, initializers and I/O of one graph, with unique deterministic names."""

    def __init__(self, *, spike_gains: tuple[float, ...] = ()):
        self.spike_gains = tuple(spike_gains)  # non-empty: the DLA form of the threshold (Sym.fire)
        self.renamed: dict[str, str] = {}
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

    def rename_tensor(self, old: str, new: str) -> None:
        """Give the tensor ``old`` (a node output) the name ``new``, in its producer and every consumer."""
        for node in self.nodes:
            for field in (node.output, node.input):
                for i, value in enumerate(field):
                    if value == old:
                        field[i] = new
        self.renamed[old] = new

    def resolve(self, name: str) -> str:
        """The current name of a tensor that may have been renamed since."""
        while name in self.renamed:
            name = self.renamed[name]
        return name

    def _produced(self, name: str) -> bool:
        return any(name in node.output for node in self.nodes)

    def add_output(self, sym: Sym, name: str) -> None:
        """Expose ``sym`` as graph output ``name``: through Identity when it has another name, or, in the
        DLA form (Identity is not a DLA layer), by renaming its producer's output."""
        source = self.resolve(sym.name)
        taken = {o.name for o in self.outputs}
        if source != name:
            if self.spike_gains and self._produced(source) and source not in taken:
                self.rename_tensor(source, name)
            else:
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
        """Spikes ``1[U > theta]`` as float32: Greater then Cast, or in the DLA form ``Clip((U - theta) * g, 0, 1)``.

        The DLA form multiplies by the powers of two ``g.spike_gains`` (their product g = 2 / ulp(theta)
        in the finest precision, each factor finite in FP16), so every U > theta gives at least 2 before
        the clip and every U <= theta at most 0: the same 0/1 as the comparison.
        """
        if not self.g.spike_gains:
            above = self.g.node("Greater", [self.name, self.g.const(threshold)])[0]
            return Sym(self.g, self.g.node("Cast", [above], to=FLOAT)[0], self.shape)
        scaled = self - threshold
        for gain in self.g.spike_gains:
            scaled = scaled * np.float32(gain)
        out = self.g.node("Clip", [scaled.name, self.g.const(np.float32(0)), self.g.const(np.float32(1))])[0]
        return Sym(self.g, out, self.shape)

    def rename(self, name: str) -> Sym:
        return Sym(self.g, self.g.node("Identity", [self.name], name=self.g.fresh(name))[0], self.shape, self.elem)


class OnnxOps:
    """The ONNX implementation of the body operations (see ``TorchOps`` for the semantics).

    ``weights`` turns a conv module into ONNX weight values (float, or int8
    with DequantizeLinear for quantized modules): see :mod:`edge_snn.export.weights`.
    """

    def __init__(self, graph: GraphBuilder, weights, *, dla: bool = False):
        self.g = graph
        self.weights = weights
        self.dla = dla  # the DLA form (module docstring): steps are Python ints, one frame per call
        self.spike_counts: dict[str, Sym] = {}
        self.spike_tensors: dict[str, list[str]] = {}
        self._bn_tables: dict[int, tuple[str, str]] = {}
        self._folded_input: Sym | None = None

    # --- time ------------------------------------------------------------
    def select_step(self, x_seq: Sym, t: int) -> Sym:
        if self.dla:  # [T, 1, C, H, W] -> [1, T*C, H, W] once, then a channel Slice per step (no Gather)
            steps, batch, channels = x_seq.shape[:3]
            if self._folded_input is None:
                self._folded_input = self._reshape(x_seq, (batch, steps * channels, *x_seq.shape[3:]))
            out = self.g.node("Slice", [self._folded_input.name, self.g.const([t * channels], np.int64),
                                        self.g.const([(t + 1) * channels], np.int64), self.g.const([1], np.int64)])[0]
            return Sym(self.g, out, (batch, channels, *x_seq.shape[3:]))
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
        """Per-timestep affine ``x * scale[t] + shift[t]`` from the folded BNTT tables.

        DLA form: ``step`` is an int, so the set is chosen here (``bn_index``, the same rule as the
        PyTorch BNTT) and its scale and shift are ``[1, C, 1, 1]`` constants (a Scale layer).
        """
        if self.dla:
            from edge_snn.models.bntt import bn_index

            scale, shift = (t.numpy().astype(np.float32) for t in bn.folded())
            t = bn_index(int(step), bn.timesteps, bn.beyond)
            return x * scale[t].reshape(1, -1, 1, 1) + shift[t].reshape(1, -1, 1, 1)
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
        if self.dla:  # time-major only; spikes named by renaming the Clip's output; no spike count
            spikes, membrane = lif_step(current, membrane, params)
            self.g.rename_tensor(spikes.name, spike_tensor_name(name, len(names)))
            spikes = Sym(self.g, spike_tensor_name(name, len(names)), spikes.shape)
            names.append(spikes.name)
            return spikes, membrane
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
        if isinstance(steps_done, int):  # DLA form: T is known, multiply by 1/T (a Scale layer; Div is not native)
            return acc * np.float32(1.0 / steps_done)
        denom = self.g.node("Cast", [steps_done.name], to=FLOAT)[0]
        return Sym(self.g, self.g.node("Div", [acc.name, denom])[0], acc.shape)
