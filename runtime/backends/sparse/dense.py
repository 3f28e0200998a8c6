"""Dense convolutions through ONNX Runtime's CPU kernels (MLAS), one tiny single-node session per convolution.

Where the input is dense (the analog or Poisson-encoded first layer, pooled
spikes at 70% nonzero, any layer past the crossover rate) skipping zeros
saves nothing and a register-blocked GEMM wins by 5x over adding weight rows.
MLAS is that GEMM on x86-64 (AVX2/AVX-512) and aarch64 (NEON), already a
dependency of the runtime, and the very kernel of the ONNX Runtime baseline,
so the dense layers compute what the dense backend computes. Each session
holds one Conv (or ConvTranspose) node with the layer's weight and
attributes, built once per distinct (weight, attributes, input shape).
"""

from __future__ import annotations

import numpy as np

from edge_snn.errors import UserError

OPSET = 17


def single_node_model(op: str, attrs: dict, x_shape, weight: np.ndarray, bias: np.ndarray | None):
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.ascontiguousarray(weight, np.float32), "w")]
    names = ["x", "w"]
    if bias is not None:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(bias, np.float32), "b"))
        names.append("b")
    kept = {k: v for k, v in attrs.items() if not k.startswith("_")}
    node = helper.make_node(op, names, ["y"], **kept)
    graph = helper.make_graph([node], f"sparse_dense_{op.lower()}", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model


def blocked_layout_pays(op: str, weight: np.ndarray) -> bool:
    """Whether ONNX Runtime's NCHWc convolution (its ``ORT_ENABLE_ALL`` layout transform) should run this conv.

    It pads channels to blocks of 8 and reorders the input and output on every
    call. That paid for dl-vgg9's conv3 (64 -> 128, 3x3: 1.9 vs 2.4 ms per call),
    and cost on the 2-channel first layer (0.26-0.33 vs 0.18-0.20 ms) and on the 1x1
    classifier to 21 channels (0.27-0.28 vs 0.22-0.24), which then run im2col and a GEMM
    (``ORT_ENABLE_EXTENDED``; one thread, this VM).
    """
    c_out, c_in, kh, kw = weight.shape if op == "Conv" else (weight.shape[1], weight.shape[0], *weight.shape[2:])
    return c_in % 8 == 0 and c_out % 8 == 0 and kh * kw > 1


class DenseConv:
    """``DenseConv(op, attrs, x_shape, weight, bias, threads)(x) -> y`` on ONNX Runtime's CPU provider."""

    def __init__(self, op: str, attrs: dict, x_shape, weight, bias, threads: int):
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError("the sparse backend runs its dense convolutions on onnxruntime, which is not installed: "
                            "pip install onnxruntime") from None
        options = ort.SessionOptions()
        options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if blocked_layout_pays(op, weight)
                                            else ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
        if threads:
            options.intra_op_num_threads = threads
        # ONNX Runtime's pool threads spin after each run, waiting for the next one; here the next
        # work is numba's (event kernels, BN/LIF chains), whose threads they would keep off the
        # cores: full-width dl-vgg9 with 2 threads took 444 ms per frame spinning, 250-272 not
        # (1 thread: 284-332), on the 2-core VM.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        model = single_node_model(op, attrs, x_shape, weight, bias)
        self.session = ort.InferenceSession(model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The conv of ``x``; into ``out`` (C-contiguous float32 of the output's shape) when given."""
        x = np.ascontiguousarray(x, np.float32)
        if out is None:
            return self.session.run(None, {"x": x})[0]
        binding = self.session.io_binding()
        binding.bind_cpu_input("x", x)
        binding.bind_output("y", "cpu", 0, np.float32, list(out.shape), out.ctypes.data)
        self.session.run_with_iobinding(binding)
        return out
