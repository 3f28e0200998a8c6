"""The int8-integer form on ONNX Runtime releases whose CPU ConvInteger takes uint8 activations only.

``edge-snn export --int8-form integer`` feeds spike-fed convs int8 activations
(int8 x uint8 is MLAS's fast GEMM on x86, see :mod:`edge_snn.export.integer`).
ONNX Runtime's CPU ConvInteger accepts int8 activations from 1.24 on; 1.23,
the oldest release a Jetson has, only uint8 x uint8 ("NOT_IMPLEMENTED: Could
not find an implementation for ConvInteger"). Those activations are spikes or
pooled spikes, integers 0..9: int8 and uint8 hold the same bytes, and the
QuantizeLinear in front saturates at 127 or 255, neither of which is reached.
So retyping their zero points to uint8 gives the same numbers on any release.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

INT8_ACTIVATIONS_SINCE = (1, 24)  # first onnxruntime whose CPU ConvInteger takes int8 X
UINT8_ZERO = "integer_compat.uint8_zero"
_PASS_THROUGH = ("Slice",)  # between the QuantizeLinear and a ConvInteger of a tap block (files that carry blocks)


def takes_int8_activations(onnxruntime_version: str) -> bool:
    """Whether this onnxruntime release runs ConvInteger on int8 activations (``"1.23.2"`` -> False)."""
    parts = []
    for piece in onnxruntime_version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts) >= INT8_ACTIVATIONS_SINCE


def uint8_activations(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of an int8-integer graph whose ConvIntegers all read uint8 activations (same numbers).

    Each ConvInteger with an int8 zero point gets a uint8 one, and so does the
    QuantizeLinear that produces its input (directly or through the Slice of a
    tap block). A ConvInteger whose input does not come from such a
    QuantizeLinear is left alone (ONNX Runtime will then say it cannot run it).
    """
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    graph = out.graph
    int8_inits = {t.name for t in graph.initializer if t.data_type == TensorProto.INT8 and not t.dims}
    producer = {o: n for n in graph.node for o in n.output}
    changed = False
    for node in graph.node:
        if node.op_type != "ConvInteger" or len(node.input) < 3 or node.input[2] not in int8_inits:
            continue
        source = producer.get(node.input[0])
        while source is not None and source.op_type in _PASS_THROUGH:
            source = producer.get(source.input[0])
        if source is None or source.op_type != "QuantizeLinear" or len(source.input) < 3:
            continue
        node.input[2] = UINT8_ZERO
        source.input[2] = UINT8_ZERO
        changed = True
    if changed:
        graph.initializer.append(helper.make_tensor(UINT8_ZERO, TensorProto.UINT8, [], [0]))
        del graph.value_info[:]  # optional, and would still say int8 for the retyped tensors
        used = {name for n in graph.node for name in n.input}
        unused = [t for t in graph.initializer if t.name in int8_inits and t.name not in used]
        for t in unused:  # the int8 zero points nothing reads any more
            graph.initializer.remove(t)
    return out


def needs_uint8_activations(proto: onnx.ModelProto, onnxruntime_version: str) -> bool:
    """Whether ``proto`` is an int8-integer file this onnxruntime release can run only retyped."""
    precision = {p.key: p.value for p in proto.metadata_props}.get("edge_snn.precision")
    return precision == "int8-integer" and not takes_int8_activations(onnxruntime_version)
