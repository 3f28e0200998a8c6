"""INT8 weights and activations as standard ONNX QDQ, the form TensorRT builds INT8 from.

For each Brevitas conv: the weight is an INT8 initializer with a
``DequantizeLinear`` (per output channel: axis 0 for Conv, axis 1 for
ConvTranspose, zero point 0), and the conv input passes through a
``QuantizeLinear``/``DequantizeLinear`` pair with the layer's per-tensor scale
and INT8 zero point 0. No UINT8, no Clip: what TensorRT's explicit
quantization accepts. Scales and integers are read from Brevitas
(``quant_weight()``, the input quantizer's ``scale()``), so the graph computes
what the quantized PyTorch reference computes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edge_snn.export.graph import GraphBuilder, Sym
from edge_snn.export.weights import FloatWeights


def brevitas_weight(module) -> tuple[np.ndarray, np.ndarray, int]:
    """(INT8 weight integers, their float32 scale, the output-channel axis: 0 Conv, 1 ConvTranspose)."""
    with torch.no_grad():
        qw = module.quant_weight()
        integers = qw.int().numpy().astype(np.int8)
        scale = qw.scale.detach().numpy().astype(np.float32)
    return integers, scale, 1 if isinstance(module, nn.ConvTranspose2d) else 0


def input_scale(module) -> float:
    """The per-tensor scale of a Brevitas conv's input quantizer (zero point 0)."""
    with torch.no_grad():
        return float(module.input_quant.scale())


def quantize_dequantize(g: GraphBuilder, x: str, scale: float) -> str:
    """``DequantizeLinear(QuantizeLinear(x))``, signed INT8 with zero point 0: what the reference's input quantizer does."""
    s = g.const(np.float32(scale))
    zero = g.const(np.int8(0), np.int8)
    q = g.node("QuantizeLinear", [x, s, zero])[0]
    return g.node("DequantizeLinear", [q, s, zero])[0]


class QdqWeights(FloatWeights):
    precision = "int8-qdq"

    def weight_inputs(self, g: GraphBuilder, module) -> list[str]:
        name = self.names.get(module, "conv")
        integers, scale, axis = brevitas_weight(module)
        scale = scale.reshape(-1) if scale.size > 1 else scale.reshape(())
        w_int = g.initializer(integers, f"{name}.weight_int8")
        w_scale = g.initializer(scale, f"{name}.weight_scale")
        zero = g.initializer(np.zeros(scale.shape, dtype=np.int8), f"{name}.weight_zero_point")
        attrs = {"axis": axis} if scale.ndim else {}
        weight = g.node("DequantizeLinear", [w_int, w_scale, zero], name=g.fresh(f"{name}.weight_dq"), **attrs)[0]
        inputs = [weight]
        if module.bias is not None:
            inputs.append(g.initializer(module.bias.detach().numpy().astype(np.float32), f"{name}.bias"))
        return inputs

    def activation_input(self, g: GraphBuilder, x: Sym, module) -> str:
        return quantize_dequantize(g, x.name, input_scale(module))
