"""Spiking-FCN (``fcn-vgg9``), PAPER.md "Architectures".

Backbone (3x3 convs, no bias, BNTT + LIF each)::

    conv1 64, conv2 64 [skip1, 1/1], pool, conv3 128, conv4 128 [skip2, 1/2], pool,
    conv5 256, conv6 256, conv7 256 [skip3, 1/4], pool, conv8 1024, conv9 1024 [skip4, 1/8]

Each skip is a 1x1 conv to classes, with bias, applied to spikes. The
upsampler has three ConvTranspose2d(K, K, 3, stride 2) stages, each followed
by a bilinear resize (``align_corners=True``) to exactly 1/4, 1/2 and 1/1 of
the input (so any input size works, odd ones included)::

    up1 = LIF( resize(deconv1(skip4), 1/4) + skip3 )      spiking
    up2 = LIF( resize(deconv2(up1),  1/2) + skip2 )       spiking
    acc += resize(deconv3(up2), 1/1) + skip1              accumulating readout

The authors' code could not run this network (its upsampler state list was
built empty); here the upsampler membranes are ordinary explicit state.
"""

from __future__ import annotations

from torch import nn

from edge_snn.models.base import ACC, SegmentationNet, pooled

FCN_LAYERS = (
    ("conv1", 64), ("conv2", 64), "pool",
    ("conv3", 128), ("conv4", 128), "pool",
    ("conv5", 256), ("conv6", 256), ("conv7", 256), "pool",
    ("conv8", 1024), ("conv9", 1024),
)
SKIP_SOURCES = {"skip1": "conv2", "skip2": "conv4", "skip3": "conv7", "skip4": "conv9"}


class SpikingFCN(SegmentationNet):
    arch = "fcn-vgg9"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.convs = nn.ModuleDict()
        self.norms = nn.ModuleDict()
        c_in, previous, channels = self.in_channels, "input", {}
        for entry in FCN_LAYERS:
            if entry == "pool":
                continue
            name, c_out = entry
            c_out = self._channels(c_out)
            self.convs[name] = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
            self.norms[name] = self._norm(c_out)
            self.spiking_layers.append(name)
            self.conv_inputs[name] = previous
            channels[name] = c_out
            c_in, previous = c_out, name
        k = self.num_classes
        self.skips = nn.ModuleDict({s: nn.Conv2d(channels[src], k, 1, bias=True) for s, src in SKIP_SOURCES.items()})
        self.conv_inputs.update(SKIP_SOURCES)
        self.deconvs = nn.ModuleDict({d: nn.ConvTranspose2d(k, k, 3, stride=2, bias=False) for d in ("deconv1", "deconv2", "deconv3")})
        self.conv_inputs.update({"deconv1": "skip4", "deconv2": "up1", "deconv3": "up2"})
        self.spiking_layers += ["up1", "up2"]
        self._init_weights(self)

    def _sizes(self, height, width):
        half = (pooled(height), pooled(width))
        quarter = (pooled(half[0]), pooled(half[1]))
        eighth = (pooled(quarter[0]), pooled(quarter[1]))
        return (height, width), half, quarter, eighth

    def _body(self, ops, x, mem, step, steps):
        new: dict = {}
        taps = {}
        full, half, quarter, _ = self._sizes(*x.shape[-2:])
        for entry in FCN_LAYERS:
            if entry == "pool":
                x = ops.pool(x)
            else:
                x = self._spiking_block(ops, entry[0], x, mem, new, step, steps)
                taps[entry[0]] = x
        skip = {s: ops.conv(taps[src], self.skips[s]) for s, src in SKIP_SOURCES.items()}
        up = ops.add(ops.resize(ops.conv(skip["skip4"], self.deconvs["deconv1"]), quarter), skip["skip3"])
        up = self._fire(ops, "up1", up, mem, new, steps)
        up = ops.add(ops.resize(ops.conv(up, self.deconvs["deconv2"]), half), skip["skip2"])
        up = self._fire(ops, "up2", up, mem, new, steps)
        readout = ops.add(ops.resize(ops.conv(up, self.deconvs["deconv3"]), full), skip["skip1"])
        return readout, new

    def _finish(self, ops, mean_readout, height, width):
        return mean_readout

    def membrane_shapes(self, height, width):
        sizes = dict(zip(("conv1", "conv3", "conv5", "conv8"), self._sizes(height, width)))
        shapes, current = {}, sizes["conv1"]
        for entry in FCN_LAYERS:
            if entry == "pool":
                continue
            current = sizes.get(entry[0], current)
            shapes[entry[0]] = (self.convs[entry[0]].out_channels, *current)
        _, half, quarter, _ = self._sizes(height, width)
        k = self.num_classes
        shapes["up1"] = (k, *quarter)
        shapes["up2"] = (k, *half)
        shapes[ACC] = (k, height, width)
        return shapes
