"""INT8 quantization with Brevitas, shaped for TensorRT's explicit-quantization rules.

Every convolution becomes a Brevitas ``QuantConv2d`` / ``QuantConvTranspose2d``:

* weights: signed, per output channel, symmetric (zero point 0), ``weight_bits``
  (8, or 4 stored in an INT8 container) - ``Int8WeightPerChannelFloat``;
* input: signed per-tensor INT8 with zero point 0 (TensorRT takes nothing else:
  Brevitas' default unsigned activations would not build). The scale is chosen
  per convolution from calibration data:

  - inputs that are integers (spikes 0/1, signed Poisson spikes, event
    counts up to 127) get the fixed scale 1: quantization is *exact*;
  - inputs that are multiples of 1/9 (spikes through the 3x3 average pool,
    padding counted) get the fixed scale 1/9: also exact;
  - anything else (an analog first layer under direct encoding, a current
    that feeds a deconvolution) gets a calibrated per-tensor scale
    (``Int8ActPerTensorFloat``, statistics from training data).

Membranes, BNTT and the LIF comparison stay in float: the spikes they produce
are exactly representable, so INT8 only has to get the weights right.
"""

from __future__ import annotations

import warnings
from typing import Iterable

import torch
from torch import nn

from edge_snn.errors import UserError

EXACT_GRIDS = (1.0, 1.0 / 9.0)  # spikes; spikes through AvgPool2d(3, 2, 1, count_include_pad=True)
INT8_MAX = 127


def _brevitas():
    warnings.filterwarnings("ignore", module="brevitas")
    try:
        from brevitas import nn as qnn
        from brevitas.inject.enum import RestrictValueType, ScalingImplType
        from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerChannelFloat
    except ImportError:
        raise UserError("quantization needs brevitas: pip install 'edge-snn[train]'") from None
    return qnn, Int8ActPerTensorFloat, Int8WeightPerChannelFloat, ScalingImplType, RestrictValueType


def fixed_scale_quant(scale: float):
    """A signed INT8 per-tensor activation quantizer with a constant scale (no calibration)."""
    _, act, _, scaling, restrict = _brevitas()
    return type(f"FixedScale{scale:.6g}Quant", (act,), {
        "scaling_impl_type": scaling.CONST, "scaling_const": INT8_MAX * scale,
        "max_val": INT8_MAX * scale, "min_val": -(INT8_MAX + 1) * scale, "restrict_scaling_type": restrict.FP,
    })


def _conv_modules(model) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))}


@torch.no_grad()
def plan_inputs(model, batches: Iterable[torch.Tensor]) -> dict[str, dict]:
    """Observe every conv's input on calibration data and pick its quantizer (see module doc)."""
    convs = _conv_modules(model)
    stats = {name: {"max": 0.0, "grids": set(EXACT_GRIDS)} for name in convs}

    def observer(name):
        def hook(module, args):
            x = args[0].detach()
            s = stats[name]
            s["max"] = max(s["max"], float(x.abs().max()))
            for grid in list(s["grids"]):
                scaled = x / grid
                if not torch.allclose(scaled, scaled.round(), atol=1e-4):
                    s["grids"].discard(grid)
        return hook

    handles = [m.register_forward_pre_hook(observer(n)) for n, m in convs.items()]
    try:
        model.eval()
        for spikes in batches:
            model.run(spikes)
    finally:
        for h in handles:
            h.remove()
    plan = {}
    for name, s in stats.items():
        exact = [g for g in EXACT_GRIDS if g in s["grids"] and s["max"] / g <= INT8_MAX]
        plan[name] = {"kind": "fixed", "scale": exact[0]} if exact else {"kind": "calibrated"}
    return plan


def _replace(model, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    if isinstance(parent, nn.ModuleDict):
        parent[child] = new
    else:
        setattr(parent, child, new)


def quantize_structure(model, plan: dict[str, dict], *, weight_bits: int = 8):
    """Swap the convs for Brevitas layers per ``plan`` (weights copied, no calibration yet)."""
    if weight_bits not in (4, 8):
        raise UserError(f"--weight-bits must be 8 or 4, got {weight_bits}")
    qnn, act, weight_quant, _, _ = _brevitas()
    for name, conv in _conv_modules(model).items():
        entry = plan.get(name)
        if entry is None:
            raise UserError(f"quantization plan has no entry for conv {name!r}; re-run edge-snn quantize")
        input_quant = fixed_scale_quant(entry["scale"]) if entry["kind"] == "fixed" else act
        common = dict(kernel_size=conv.kernel_size, stride=conv.stride, padding=conv.padding,
                      bias=conv.bias is not None, weight_quant=weight_quant, weight_bit_width=weight_bits,
                      input_quant=input_quant, return_quant_tensor=False)
        if isinstance(conv, nn.ConvTranspose2d):
            new = qnn.QuantConvTranspose2d(conv.in_channels, conv.out_channels, output_padding=conv.output_padding, **common)
        else:
            new = qnn.QuantConv2d(conv.in_channels, conv.out_channels, dilation=conv.dilation, groups=conv.groups, **common)
        new.weight.data.copy_(conv.weight.data)
        if conv.bias is not None:
            new.bias.data.copy_(conv.bias.data)
        _replace(model, name, new)
    model.quantized = True
    model.quantization = {"weight_bits": weight_bits, "inputs": plan, "precision": "int8-qdq"}
    return model


@torch.no_grad()
def calibrate(model, batches: Iterable[torch.Tensor]) -> None:
    """Collect activation statistics for the calibrated input quantizers."""
    from brevitas.graph.calibrate import calibration_mode

    model.eval()
    with calibration_mode(model):
        for spikes in batches:
            model.run(spikes)


def quantize_ptq(model, batches, *, weight_bits: int = 8):
    """Post-training quantization: plan the input quantizers, swap layers, calibrate. ``batches`` is re-iterable."""
    batches = list(batches)
    if not batches:
        raise UserError("calibration needs at least one batch of training data")
    plan = plan_inputs(model, batches)
    quantize_structure(model, plan, weight_bits=weight_bits)
    calibrate(model, batches)
    return model.eval()
