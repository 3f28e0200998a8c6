"""How a convolution's weights enter the graph: float, or INT8 with DequantizeLinear.

One initializer per module, whatever the number of timesteps: a module seen
again (every step of a time-major graph) reuses the tensors already stored.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from edge_snn.errors import UserError
from edge_snn.export.graph import GraphBuilder, Sym

INT8_FORMS = ("qdq", "integer")  # edge-snn export --int8-form; precision metadata int8-qdq / int8-integer


def conv_output_shape(module, shape: tuple[int, ...]) -> tuple[int, ...]:
    n, _, h, w = shape
    if isinstance(module, nn.ConvTranspose2d):
        (kh, kw), (sh, sw), (ph, pw) = module.kernel_size, module.stride, module.padding
        oh, ow = (h - 1) * sh - 2 * ph + kh + module.output_padding[0], (w - 1) * sw - 2 * pw + kw + module.output_padding[1]
    else:
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = module.kernel_size, module.stride, module.padding, module.dilation
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return (n, module.out_channels, oh, ow)


def conv_attributes(module) -> dict:
    attrs = dict(kernel_shape=list(module.kernel_size), strides=list(module.stride),
                 pads=[module.padding[0], module.padding[1], module.padding[0], module.padding[1]])
    if isinstance(module, nn.Conv2d):
        attrs["dilations"] = list(module.dilation)
        attrs["group"] = module.groups
    return attrs


class FloatWeights:
    """FP32 weights as plain initializers."""

    precision = "fp32"

    def __init__(self, names: dict):
        self.names = names  # module -> dotted name in the model, for readable initializer names
        self._cache: dict[int, list[str]] = {}

    def weight_inputs(self, g: GraphBuilder, module) -> list[str]:
        name = self.names.get(module, "conv")
        inputs = [g.initializer(module.weight.detach().numpy().astype(np.float32), f"{name}.weight")]
        if module.bias is not None:
            inputs.append(g.initializer(module.bias.detach().numpy().astype(np.float32), f"{name}.bias"))
        return inputs

    def activation_input(self, g: GraphBuilder, x: Sym, module) -> str:
        return x.name

    def conv(self, g: GraphBuilder, x: Sym, module) -> Sym:
        key = id(module)
        if key not in self._cache:
            self._cache[key] = self.weight_inputs(g, module)
        op = "ConvTranspose" if isinstance(module, nn.ConvTranspose2d) else "Conv"
        out = g.node(op, [self.activation_input(g, x, module), *self._cache[key]], **conv_attributes(module))[0]
        return Sym(g, out, conv_output_shape(module, x.shape))


def int8_weights(model, names: dict, form: str = "qdq") -> FloatWeights:
    """The weights of a Brevitas-quantized model in INT8 form ``form``.

    ``qdq``: QuantizeLinear/DequantizeLinear around float convs, what TensorRT builds INT8 from
    (:mod:`edge_snn.export.qdq`); ``integer``: ConvInteger with one rescale per layer, for ONNX
    Runtime's CPU integer kernels (:mod:`edge_snn.export.integer`).
    """
    if form not in INT8_FORMS:
        raise UserError(f"unknown --int8-form {form!r}; choose one of {', '.join(INT8_FORMS)}")
    if not getattr(model, "quantized", False):
        raise UserError(f"--int8-form {form} needs a quantized checkpoint; make one with edge-snn quantize CKPT --ptq "
                        "(or --qat), or export this one without --int8-form (FP32)")
    if form == "integer":
        from edge_snn.export.integer import IntegerWeights

        return IntegerWeights.for_model(model, names)
    from edge_snn.export.qdq import QdqWeights

    return QdqWeights(names)
