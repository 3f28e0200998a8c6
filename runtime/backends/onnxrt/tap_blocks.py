"""Convolutions whose taps mostly read zero padding, split into blocks that read none (ONNX Runtime CPU only).

dl-vgg9's conv8 has dilation 12 and padding 12; on the 16x16 map of a 64x64
input, output ``o`` reads ``o - 12``, ``o`` and ``o + 12``, so 75% of its
(output, tap) pairs read padding. ONNX Runtime's CPU kernels multiply most of
them anyway: the NCHWc direct convolution skips only part (conv8 ran at half
the FP32 conv ceiling, 127-147 ms of a 540-600 ms frame), and ConvInteger's
im2col GEMM skips none. Along each axis the outputs fall into a few bands that
see the same contiguous taps (:func:`tap_bands`); each block of outputs is then
a small convolution with only those taps on the slice of the input it reads,
and the blocks are concatenated back into the conv's output: the same sums
without the padding taps (integers bit-identical, floats to summation order).

It is a load-time rewrite of the session's copy, not of the file: TensorRT,
the DLA and the sparse backend handle dilation their own way (the sparse
backend never visits padding), and cuDNN has dilated kernels, so only sessions
on ONNX Runtime's CPU provider get it. Measured on conv8 alone (2-core x86 VM,
onnxruntime 1.32, 1 thread): FP32 6.1 -> 4.9 ms per step; ConvInteger 2.0x.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edge_snn.runtime.conv_taps import padding_share, tap_bands
from edge_snn.runtime.model_file import node_attributes

BLOCK_WHEN_PADDING = 0.5  # split a conv when this share of its (output, tap) pairs reads padding
# ... and the padding taps it skips add up to this many MACs per call: below, the extra nodes cost
# more than they save (the demo's width-1/8 conv8, 7 M MACs skipped: 25.1 -> 26.7 ms per frame split)
MIN_SKIPPED_MACS = 50e6
TAP_BLOCK = "/tap_block"  # block node names: the file's node name, this, then the block's row and column
SPLIT_OPS = ("Conv", "ConvInteger")


def source_node(session_node: str) -> str:
    """The file's node a session node comes from (block nodes, and ONNX Runtime's ``_nchwc`` renames)."""
    return session_node.removesuffix("_nchwc").split(TAP_BLOCK)[0]


def _bands_of(node, x_shape, weight_shape) -> list | None:
    """Per spatial axis, the conv's tap bands, or None when it is not worth splitting (or cannot be)."""
    attrs = node_attributes(node)
    kernel = list(weight_shape[2:])
    if (len(kernel) != 2 or attrs.get("group", 1) != 1 or attrs.get("auto_pad", "NOTSET") != "NOTSET"
            or x_shape is None or len(x_shape) != 4 or not all(isinstance(d, int) and d > 0 for d in x_shape[2:])):
        return None
    strides, dilations = attrs.get("strides", [1, 1]), attrs.get("dilations", [1, 1])
    pads = attrs.get("pads", [0, 0, 0, 0])
    bands = []
    for axis in range(2):
        size_in, k, s, d = x_shape[2 + axis], kernel[axis], strides[axis], dilations[axis]
        size_out = (size_in + pads[axis] + pads[axis + 2] - d * (k - 1) - 1) // s + 1
        if size_out < 1:
            return None
        bands.append(tap_bands(size_in, size_out, k, s, pads[axis], d))
    if any(j1 < j0 for axis in bands for _, _, j0, j1 in axis):  # an output seeing only padding: keep it whole
        return None
    share = padding_share(bands, kernel)
    nominal_macs = (x_shape[0] or 1) * np.prod(weight_shape) * bands[0][-1][1] * bands[1][-1][1]
    return bands if share >= BLOCK_WHEN_PADDING and share * nominal_macs >= MIN_SKIPPED_MACS else None


def _input_shapes(proto: onnx.ModelProto) -> dict[str, list]:
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=False)
    shapes = {}
    for info in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return shapes


def split_padded_convs(proto: onnx.ModelProto) -> onnx.ModelProto | None:
    """A copy of ``proto`` with every padding-heavy conv split into tap blocks, or None when none is.

    Candidates are Conv and ConvInteger nodes with a constant 4-D weight, one group and a known
    input shape whose (output, tap) pairs read padding at least ``BLOCK_WHEN_PADDING`` of the time,
    skipping at least ``MIN_SKIPPED_MACS`` per call.
    A block is ``Slice`` of the input (the rows and columns its taps read, all inside the map), the
    same op with the weight's taps sliced at load time (one initializer per distinct slice, shared
    by the time steps that read the same weight), no padding; rows of blocks are concatenated along
    the width, then the rows along the height, into the original output name. Zero points and bias
    pass through unchanged: each output lies in exactly one block.
    """
    weights = {t.name: t for t in proto.graph.initializer}
    candidates = [i for i, n in enumerate(proto.graph.node) if n.op_type in SPLIT_OPS and len(n.input) > 1
                  and n.input[1] in weights and len(weights[n.input[1]].dims) == 4]
    if not candidates:
        return None
    shapes = _input_shapes(proto)
    plans = {}  # node index -> per-axis bands
    for i in candidates:
        node = proto.graph.node[i]
        bands = _bands_of(node, shapes.get(node.input[0]), list(weights[node.input[1]].dims))
        if bands is not None:
            plans[i] = bands
    if not plans:
        return None
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    graph = out.graph
    added: dict[tuple, str] = {}

    def initializer(key: tuple, make) -> str:
        if key not in added:
            name = f"tap_blocks.{len(added)}"
            graph.initializer.append(numpy_helper.from_array(make(), name))
            added[key] = name
        return added[key]

    arrays = {}
    nodes = []
    for index, node in enumerate(list(graph.node)):
        if index not in plans:
            nodes.append(node)
            continue
        row_bands, col_bands = plans[index]
        stem = node.name or node.output[0]
        attrs = node_attributes(node)
        (sh, sw), (dh, dw) = attrs.get("strides", [1, 1]), attrs.get("dilations", [1, 1])
        pads = attrs.get("pads", [0, 0, 0, 0])
        w_name = node.input[1]
        if w_name not in arrays:
            arrays[w_name] = numpy_helper.to_array(weights[w_name])
        rows_out = []
        for r, (r0, r1, i0, i1) in enumerate(row_bands):
            blocks = []
            for c, (c0, c1, j0, j1) in enumerate(col_bands):
                base = f"{stem}{TAP_BLOCK}{r}_{c}"
                starts = (r0 * sh - pads[0] + i0 * dh, c0 * sw - pads[1] + j0 * dw)
                ends = ((r1 - 1) * sh - pads[0] + i1 * dh + 1, (c1 - 1) * sw - pads[1] + j1 * dw + 1)
                x_block = f"{base}/x"
                nodes.append(helper.make_node("Slice", [
                    node.input[0],
                    initializer(("i64", starts), lambda v=starts: np.array(v, np.int64)),
                    initializer(("i64", ends), lambda v=ends: np.array(v, np.int64)),
                    initializer(("i64", (2, 3)), lambda: np.array([2, 3], np.int64)),
                ], [x_block], name=f"{base}/slice"))
                w_block = initializer(("w", w_name, i0, i1, j0, j1),
                                      lambda: np.ascontiguousarray(arrays[w_name][:, :, i0:i1 + 1, j0:j1 + 1]))
                y_block = f"{base}/y" if len(row_bands) * len(col_bands) > 1 else node.output[0]
                nodes.append(helper.make_node(node.op_type, [x_block, w_block, *node.input[2:]], [y_block], name=base,
                                              strides=[sh, sw], dilations=[dh, dw], pads=[0, 0, 0, 0],
                                              kernel_shape=[i1 - i0 + 1, j1 - j0 + 1]))
                blocks.append(y_block)
            if len(blocks) > 1:
                row = f"{stem}{TAP_BLOCK}{r}/row"
                nodes.append(helper.make_node("Concat", blocks, [row], name=row, axis=3))
                blocks = [row]
            rows_out.extend(blocks)
        if len(rows_out) > 1:
            nodes.append(helper.make_node("Concat", rows_out, [node.output[0]], name=f"{stem}{TAP_BLOCK}/rows", axis=2))
        elif rows_out[0] != node.output[0]:
            nodes.append(helper.make_node("Identity", rows_out, [node.output[0]], name=f"{stem}{TAP_BLOCK}/out"))
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for n in graph.node for name in n.input}
    for t in [t for t in graph.initializer if t.name in arrays and t.name not in used]:
        graph.initializer.remove(t)  # whole weights no node reads any more (ONNX Runtime would warn)
    return out
