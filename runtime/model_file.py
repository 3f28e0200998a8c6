"""Open an exported model file and read its contract, with errors a user can act on.

Every command that reads an ``.onnx`` file (run, parity, bench, check, build)
opens it through :func:`load_onnx_file`, so a missing file or a file that is
not ONNX gives the same one-line message everywhere, and reads its contract
through :func:`contract_of`, which checks the metadata against the graph's own
inputs, outputs, shapes and dtypes before anything is allocated.
"""

from __future__ import annotations

from pathlib import Path

from edge_snn.errors import UserError
from edge_snn.runtime.contract import GraphIO, ModelContract, check_against_graph, read_contract


def load_onnx_file(path: str | Path, *, load_weights: bool = False):
    """The ``onnx.ModelProto`` in ``path``; external weight files are read only with ``load_weights``."""
    import onnx

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a model file; pass the .onnx file (e.g. {path / 'model.onnx'})")
    if not path.is_file():
        raise UserError(f"model file {path} does not exist; export one with `edge-snn export CHECKPOINT -o {path.name}`")
    try:
        proto = onnx.load(str(path), load_external_data=load_weights)
    except Exception as err:  # protobuf DecodeError and friends
        raise UserError(f"{path} is not an ONNX file ({type(err).__name__}: it is not an ONNX model); "
                        f"pass a .onnx file written by `edge-snn export`") from None
    if proto.ir_version == 0 or not proto.graph.node or not proto.opset_import:
        raise UserError(f"{path} is not an ONNX file (no IR version, graph or opset: it is not an ONNX model); "
                        f"pass a .onnx file written by `edge-snn export`")
    return proto


def node_attributes(node) -> dict:
    """An ONNX node's attributes as Python values, strings decoded (``auto_pad``, ``mode``, ...)."""
    from onnx import helper

    values = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        values[a.name] = value.decode() if isinstance(value, bytes) else value
    return values


def graph_io(proto) -> GraphIO:
    """What the graph itself declares: its inputs and outputs (shape, dtype), initializer shapes, node outputs."""
    from onnx import helper

    def described(values) -> dict:
        out = {}
        for v in values:
            t = v.type.tensor_type
            shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim)
            try:
                dtype = helper.tensor_dtype_to_np_dtype(t.elem_type).name
            except (KeyError, TypeError, ValueError):
                dtype = f"onnx type {t.elem_type}"
            out[v.name] = (shape, dtype)
        return out

    graph = proto.graph
    initializers = {t.name: tuple(int(d) for d in t.dims) for t in graph.initializer}
    return GraphIO(inputs=described(i for i in graph.input if i.name not in initializers),
                   outputs=described(graph.output), initializers=initializers,
                   values=frozenset(o for node in graph.node for o in node.output))


def contract_of(proto, source: str) -> ModelContract:
    """The :class:`ModelContract` in a loaded model's metadata, checked against the graph itself."""
    contract = read_contract({p.key: p.value for p in proto.metadata_props}, source=source)
    check_against_graph(contract, graph_io(proto), source)
    return contract


def load_onnx_contract(path: str | Path) -> ModelContract:
    """The :class:`ModelContract` of an edge-snn ONNX file (weights are not loaded)."""
    return contract_of(load_onnx_file(path), str(path))


def load_contract(path: str | Path) -> ModelContract:
    """Contract of an ONNX file, or of a TensorRT engine through its sidecar JSON."""
    from edge_snn.runtime.backends import ENGINE_SUFFIXES

    if str(path).endswith(ENGINE_SUFFIXES):
        from edge_snn.runtime.backends.trt import engine_contract

        return engine_contract(path)
    return load_onnx_contract(path)
