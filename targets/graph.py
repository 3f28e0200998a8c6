"""Read an ONNX file once, with inferred tensor types and shapes, for the static checks and the roofline.

The checker and the estimate ask the same questions of a graph: what type and
shape has tensor ``x`` (after ONNX shape inference), which node produces or
consumes it, is it a build-time constant, and what is its value. This module
answers them and nothing else. It imports only ``onnx`` and ``numpy``, so it
runs on the device side too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from edge_snn.runtime.model_file import load_onnx_file

# ONNX element types under the names the TensorRT support tables use.
TYPE_NAMES = {
    TensorProto.FLOAT: "FP32", TensorProto.FLOAT16: "FP16", TensorProto.BFLOAT16: "BF16",
    TensorProto.DOUBLE: "FP64", TensorProto.INT8: "INT8", TensorProto.UINT8: "UINT8",
    TensorProto.INT16: "INT16", TensorProto.UINT16: "UINT16", TensorProto.INT32: "INT32",
    TensorProto.UINT32: "UINT32", TensorProto.INT64: "INT64", TensorProto.UINT64: "UINT64",
    TensorProto.BOOL: "BOOL", TensorProto.STRING: "STRING", TensorProto.COMPLEX64: "COMPLEX64",
    TensorProto.COMPLEX128: "COMPLEX128", TensorProto.FLOAT8E4M3FN: "FP8", TensorProto.FLOAT8E5M2: "FP8",
    TensorProto.INT4: "INT4", TensorProto.UINT4: "UINT4",
}
if hasattr(TensorProto, "FLOAT4E2M1"):  # onnx >= 1.18
    TYPE_NAMES[TensorProto.FLOAT4E2M1] = "FP4"



@dataclass(frozen=True)
class TensorInfo:
    """Type and shape of one tensor; ``shape`` is None when the rank is unknown."""

    name: str
    elem_type: int | None
    shape: tuple[int | str | None, ...] | None

    @property
    def type_name(self) -> str | None:
        return None if self.elem_type is None else TYPE_NAMES.get(self.elem_type, f"type{self.elem_type}")

    @property
    def static_shape(self) -> tuple[int, ...] | None:
        """The shape if every dim is a known positive integer, else None."""
        if self.shape is None or not all(isinstance(d, int) and d > 0 for d in self.shape):
            return None
        return tuple(self.shape)  # type: ignore[arg-type]

    @property
    def numel(self) -> int | None:
        shape = self.static_shape
        return None if shape is None else int(np.prod(shape, dtype=np.int64))


@dataclass
class Graph:
    """One ONNX model with the lookups the checks need (built by :func:`load_graph`)."""

    path: Path
    model: onnx.ModelProto
    opset: int
    checker_error: str | None
    inference_error: str | None
    nodes: list[onnx.NodeProto] = field(default_factory=list)  # kept so node identity is stable
    tensors: dict[str, TensorInfo] = field(default_factory=dict)
    initializers: dict[str, TensorProto] = field(default_factory=dict)
    producer: dict[str, onnx.NodeProto] = field(default_factory=dict)
    consumers: dict[str, list[onnx.NodeProto]] = field(default_factory=dict)
    _constant_nodes: dict[str, TensorProto] = field(default_factory=dict)
    _position: dict[int, int] = field(default_factory=dict)

    @property
    def metadata(self) -> dict[str, str]:
        return {p.key: p.value for p in self.model.metadata_props}

    def info(self, name: str) -> TensorInfo:
        return self.tensors.get(name, TensorInfo(name, None, None))

    def label(self, node: onnx.NodeProto) -> str:
        """:func:`node_label` of a node of this graph."""
        return node_label(node, self._position.get(id(node), -1))

    def is_constant(self, name: str) -> bool:
        """True for initializers and outputs of Constant nodes (what the parser folds at build time)."""
        return name in self.initializers or name in self._constant_nodes

    def folds_to_constant(self, name: str) -> bool:
        """True if ``name`` is constant or computed only from constants (TensorRT folds it at build time).

        Covers the Q -> DQ chains on weights and Cast/Reshape/Concat of
        constants; random ops never fold.
        """
        return self._folds(name, depth=0)

    def _folds(self, name: str, depth: int) -> bool:
        if self.is_constant(name):
            return True
        node = self.producer.get(name)
        if node is None or depth > 16 or node.op_type.startswith("Random") or not any(node.input):
            return False
        return all(self._folds(i, depth + 1) for i in node.input if i)

    def value(self, name: str) -> np.ndarray | None:
        """Value of a constant tensor, or None (not constant, or its data lives in an external file)."""
        proto = self.initializers.get(name)
        if proto is None:
            proto = self._constant_nodes.get(name)
        if proto is None or proto.data_location == TensorProto.EXTERNAL:
            return None
        return numpy_helper.to_array(proto)


def node_label(node: onnx.NodeProto, index: int) -> str:
    """The node's name, or ``OpType#index`` for unnamed nodes, so every finding points somewhere."""
    return node.name or f"{node.op_type}#{index}"


def load_graph(path: str | Path) -> Graph:
    """Load ``path``, run the ONNX checker and shape inference, and index the graph.

    A file that is not ONNX at all is a :class:`UserError`; a file that is ONNX
    but fails the checker or shape inference is returned with the error text in
    ``checker_error`` / ``inference_error`` so the caller can report it.
    Weights stored in external data files are not loaded (only their shapes are
    needed); a missing external file is reported by the checker.
    """
    path = Path(path)
    model = load_onnx_file(path)
    try:
        onnx.checker.check_model(str(path))
        checker_error = None
    except Exception as exc:  # ValidationError, or a missing external-data file
        checker_error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
        inference_error = None
    except Exception as exc:
        inferred, inference_error = model, (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    g = Graph(path=path, model=inferred, opset=opset, checker_error=checker_error, inference_error=inference_error)
    _index(g)
    return g


def _index(g: Graph) -> None:
    graph = g.model.graph
    for vi in [*graph.input, *graph.output, *graph.value_info]:
        g.tensors[vi.name] = _from_value_info(vi)
    for init in graph.initializer:
        g.initializers[init.name] = init
        g.tensors.setdefault(init.name, TensorInfo(init.name, init.data_type, tuple(int(d) for d in init.dims)))
    g.nodes = list(graph.node)
    for position, node in enumerate(g.nodes):
        g._position[id(node)] = position
        for out in node.output:
            if out:
                g.producer[out] = node
        for inp in node.input:
            if inp:
                g.consumers.setdefault(inp, []).append(node)
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            tensor = next((a.t for a in node.attribute if a.name == "value"), None)
            if tensor is not None and node.output:
                g._constant_nodes[node.output[0]] = tensor
                g.tensors.setdefault(node.output[0],
                                     TensorInfo(node.output[0], tensor.data_type, tuple(int(d) for d in tensor.dims)))


def _from_value_info(vi: onnx.ValueInfoProto) -> TensorInfo:
    t = vi.type
    if not t.HasField("tensor_type"):
        return TensorInfo(vi.name, None, None)
    tt = t.tensor_type
    elem = tt.elem_type or None
    if not tt.HasField("shape"):
        return TensorInfo(vi.name, elem, None)
    dims: list[int | str | None] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return TensorInfo(vi.name, elem, tuple(dims))
