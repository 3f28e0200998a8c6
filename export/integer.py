"""INT8 convolutions on ONNX Runtime's CPU integer kernels (``edge-snn export --int8-form integer``).

Each Brevitas ``QuantConv2d`` becomes::

    x_q = QuantizeLinear(x, s_x, z_x)                        8-bit, exactly Brevitas' input integers
    acc = ConvInteger(x_q, w + 128, z_x, 128)                int32, exact
    y   = DequantizeLinear(acc, s_x * s_w[c], axis=1)        float, once per layer  (+ bias)

``s_x`` is the conv's per-tensor input scale (1 for spikes, 1/9 for pooled
spikes, calibrated for an analog first layer; zero point 0) and ``s_w`` the
per-output-channel weight scale; the weights are Brevitas' signed integers
(|w| <= 127, or 7 at 4 bits) stored as uint8 with zero point 128. The
accumulator is exact, so the graph differs from the quantized PyTorch
reference (which convolves the dequantized float tensors) only by the float
rounding of the reference's own sums: a few ulps of the conv output, which
can flip a neuron sitting within those ulps of the threshold.

Two kernels, by what feeds the conv (ONNX Runtime 1.32, this x86 AVX2 CPU,
measured in docs/decisions.md):

* spikes or pooled spikes (integers 0..9): ``x_q`` int8 with zero point 0,
  i.e. the exact 0/1 spikes. int8 x uint8 is MLAS's fast u8s8 GEMM (the weights
  are its unsigned operand), 1.6x FP32 on a 3x3 256->256 conv. It is safe on
  AVX2: that kernel adds pairs of u8*s8 products in saturating int16, and
  2 * 255 * 9 is far below 32767.
* anything else (the encoder's frames: signed Poisson spikes, event counts,
  analog pixels): ``x_q`` uint8 with zero point 128 (the uint8 image of the
  signed range [-128, 127], same saturation), uint8 x uint8: the exact kernel
  on every CPU (int16 pairs of 255 * 255 would saturate in the u8s8 one).
  ConvInteger pads with ``z_x``, i.e. with a quantized zero.

ONNX Runtime's CPU ConvInteger takes int8 activations only from 1.24 on; 1.23
(the oldest a Jetson has) runs uint8 x uint8 only. For spikes, int8 and uint8
are the same bytes, so the runtime's ONNX Runtime loader retypes them to
uint8 on such a release without changing a number
(:mod:`edge_snn.runtime.backends.onnxrt.integer_compat`).

A conv whose taps mostly read zero padding (dl-vgg9's conv8, dilation 12 on a
16x16 map: 75%) stays one ConvInteger in the file; ONNX Runtime's loader splits
it into tap blocks for the CPU provider
(:mod:`edge_snn.runtime.backends.onnxrt.tap_blocks`), as it does FP32 convs.

Rejected (measured): ``QLinearConv`` requantizes its output to 8 bits, and
these conv outputs are membrane currents, not 8-bit tensors: not exact.
``MatMulInteger`` on an NHWC im2col (Transpose, 9 Slices, Concat) prepacks
the weights but loses the time to the data movement (1.36x vs 1.54x FP32 for
the whole network in the same run).

ConvTranspose has no integer ONNX op: a deconvolution stays float on the
dequantized tensors (its input through QuantizeLinear/DequantizeLinear, the
weights dequantized once at export), which is what the reference computes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edge_snn.export.graph import GraphBuilder, Sym
from edge_snn.export.qdq import brevitas_weight, input_scale, quantize_dequantize
from edge_snn.export.weights import FloatWeights, conv_attributes, conv_output_shape

WEIGHT_ZERO_POINT = 128  # uint8 image of the signed weight integers: w_u8 = w_int + 128
SIGNED_ZERO_POINT = 128  # uint8 image of a signed INT8 input: x_u8 = x_int + 128


class IntegerWeights(FloatWeights):
    """Quantized convs as ConvInteger with one rescale per layer (see the module doc).

    spike_fed: conv modules whose input is the spikes (or pooled spikes) of a
        spiking layer; they take int8 activations. Others take uint8 with zero point 128.
    """

    precision = "int8-integer"

    def __init__(self, names: dict, spike_fed=frozenset()):
        super().__init__(names)
        self.spike_fed = {id(m) for m in spike_fed}

    @classmethod
    def for_model(cls, model, names: dict) -> IntegerWeights:
        """Read which convs are spike-fed from the model's ``conv_inputs`` (conv -> the layer feeding it)."""
        convs = {n.rpartition(".")[2]: m for m, n in names.items() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))}
        spiking = set(model.spiking_layers)
        return cls(names, {convs[c] for c, source in model.conv_inputs.items() if source in spiking and c in convs})

    def conv(self, g: GraphBuilder, x: Sym, module) -> Sym:
        if isinstance(module, nn.ConvTranspose2d):
            return self._float_deconv(g, x, module)
        key = id(module)
        if key not in self._cache:
            self._cache[key] = self._integer_inputs(g, module)
        w_u8, rescale, bias = self._cache[key]
        if key in self.spike_fed:
            x_zero = g.const(np.int8(0), np.int8)
        else:
            x_zero = g.const(np.uint8(SIGNED_ZERO_POINT), np.uint8)
        x_q = g.node("QuantizeLinear", [x.name, g.const(np.float32(input_scale(module))), x_zero])[0]
        w_zero = g.const(np.uint8(WEIGHT_ZERO_POINT), np.uint8)
        acc = g.node("ConvInteger", [x_q, w_u8, x_zero, w_zero], **conv_attributes(module))[0]
        y = g.node("DequantizeLinear", [acc, rescale], axis=1)[0]
        if bias is not None:
            y = g.node("Add", [y, bias])[0]
        return Sym(g, y, conv_output_shape(module, x.shape))

    def _integer_inputs(self, g: GraphBuilder, module) -> tuple[str, str, str | None]:
        name = self.names.get(module, "conv")
        integers, w_scale, _ = brevitas_weight(module)
        w_scale = w_scale.reshape(-1)
        w_u8 = g.initializer((integers.astype(np.int16) + WEIGHT_ZERO_POINT).astype(np.uint8), f"{name}.weight_uint8")
        # s_x * s_w rounded to float32 once; the accumulator is exact, so this is the only rounding before BN
        rescale = g.initializer((np.float32(input_scale(module)) * w_scale).astype(np.float32), f"{name}.rescale")
        bias = None
        if module.bias is not None:
            bias = g.initializer(module.bias.detach().numpy().astype(np.float32).reshape(1, -1, 1, 1), f"{name}.bias")
        return w_u8, rescale, bias

    def _float_deconv(self, g: GraphBuilder, x: Sym, module) -> Sym:
        """A deconvolution on the dequantized input and weights (ONNX has no integer ConvTranspose)."""
        key = id(module)
        if key not in self._cache:
            name = self.names.get(module, "conv")
            with torch.no_grad():  # the dequantized weight the reference convolves with
                weight = module.quant_weight().value.detach().numpy().astype(np.float32)
            inputs = [g.initializer(weight, f"{name}.weight")]  # float, as FloatWeights names it
            if module.bias is not None:
                inputs.append(g.initializer(module.bias.detach().numpy().astype(np.float32), f"{name}.bias"))
            self._cache[key] = inputs
        dq = quantize_dequantize(g, x.name, input_scale(module))
        out = g.node("ConvTranspose", [dq, *self._cache[key]], **conv_attributes(module))[0]
        return Sym(g, out, conv_output_shape(module, x.shape))
