"""An edge-snn ONNX file as the sparse backend executes it: ordered nodes, constants, static shapes.

:func:`load_graph` reads the file through the runtime's one ONNX loader,
orders the nodes topologically, turns initializers into numpy constants and
folds every node whose inputs are all constants (``DequantizeLinear`` of INT8
weights, constant reshapes) by running it once through the same op
implementations the executor uses, so a folded value is what the graph says.
The int8 integers behind a folded weight stay reachable (:attr:`Graph.folded_from`)
for the integer-add path. Shapes and dtypes come from ONNX shape inference;
the exporter gives every tensor a static shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge_snn.errors import UserError


@dataclass
class Graph:
    nodes: list  # onnx.NodeProto, topologically ordered, constants folded away
    constants: dict[str, np.ndarray]
    inputs: dict[str, tuple[tuple[int, ...], np.dtype]]  # graph inputs (not initializers): shape, dtype
    outputs: list[str]
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, np.dtype]
    folded_from: dict = field(default_factory=dict)  # constant name -> the node (and its constant inputs) it was folded from
    source: str = "model"
    metadata: dict[str, str] = field(default_factory=dict)  # metadata_props (the edge-snn contract, when present)

    def producer_of(self) -> dict:
        return {out: node for node in self.nodes for out in node.output if out}

    def consumers_of(self) -> dict[str, list]:
        users: dict[str, list] = {}
        for node in self.nodes:
            for name in node.input:
                if name:
                    users.setdefault(name, []).append(node)
        return users


def _static_shape(type_proto) -> tuple[int, ...] | None:
    tensor = type_proto.tensor_type
    if not tensor.HasField("shape"):
        return None
    dims = []
    for d in tensor.shape.dim:
        if not d.HasField("dim_value"):
            return None
        dims.append(int(d.dim_value))
    return tuple(dims)


def _np_dtype(elem_type: int):
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))


def topological_order(nodes, available: set[str]) -> list:
    """Kahn's algorithm, keeping the file's order among ready nodes; a cycle is a damaged file."""
    produced_by = {out: i for i, node in enumerate(nodes) for out in node.output if out}
    waiting = [sum(1 for name in set(n.input) if name and name not in available and name in produced_by) for n in nodes]
    users: dict[int, list[int]] = {}
    for i, node in enumerate(nodes):
        for name in set(node.input):
            if name and name not in available and name in produced_by:
                users.setdefault(produced_by[name], []).append(i)
    import heapq

    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(nodes[i])
        for j in users.get(i, []):
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    if len(order) != len(nodes):
        stuck = next(n for i, n in enumerate(nodes) if waiting[i] > 0)
        raise UserError(f"the graph has a cycle or reads a value nothing produces (node {stuck.name or stuck.op_type}); "
                        "re-export the model")
    return order


def load_graph(path: str, run_node) -> Graph:
    """The executable :class:`Graph` of ``path``; ``run_node(node, inputs) -> outputs`` folds constants."""
    import onnx
    from onnx import numpy_helper

    from edge_snn.runtime.model_file import load_onnx_file

    proto = load_onnx_file(path, load_weights=True)
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception as err:  # onnx raises InferenceError and friends
        raise UserError(f"{path}: ONNX shape inference failed ({str(err).splitlines()[0][:160]}); re-export the model") from None
    g = inferred.graph
    constants = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    shapes, dtypes = {}, {}
    for info in list(g.value_info) + list(g.input) + list(g.output):
        shape = _static_shape(info.type)
        if shape is not None:
            shapes[info.name] = shape
        if info.type.tensor_type.elem_type:
            dtypes[info.name] = _np_dtype(info.type.tensor_type.elem_type)
    for name, value in constants.items():
        shapes[name], dtypes[name] = tuple(value.shape), value.dtype
    inputs = {}
    for info in g.input:
        if info.name in constants:
            continue
        if info.name not in shapes:
            raise UserError(f"{path}: graph input {info.name!r} has no static shape; the sparse backend runs "
                            "fixed-shape graphs (edge-snn export writes them)")
        inputs[info.name] = (shapes[info.name], dtypes[info.name])
    nodes = topological_order(list(g.node), set(constants) | set(inputs))
    graph = Graph(nodes=[], constants=constants, inputs=inputs, outputs=[o.name for o in g.output], shapes=shapes,
                  dtypes=dtypes, source=str(path), metadata={p.key: p.value for p in proto.metadata_props})
    for node in nodes:
        values = [n for n in node.input if n]
        if values and all(n in constants for n in values) or (node.op_type == "Constant"):
            results = run_node(node, [constants[n] if n else None for n in node.input])
            for name, value in zip(node.output, results):
                constants[name] = value
                shapes[name], dtypes[name] = tuple(value.shape), value.dtype
                graph.folded_from[name] = node
        else:
            graph.nodes.append(node)
    missing = [o for o in graph.outputs if o not in constants and o not in inputs and not any(o in n.output for n in graph.nodes)]
    if missing:
        raise UserError(f"{path}: graph output(s) {missing[:3]} are produced by no node; re-export the model")
    return graph
