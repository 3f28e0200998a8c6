"""Spiking-DeepLab (``dl-vgg9``), PAPER.md "Architectures".

VGG9-style backbone with dilated convolutions, output stride 4::

    conv1 64, conv2 64, pool, conv3 128, conv4 128, pool,
    conv5 256, conv6 256 (dilation 2), conv7 256 (dilation 2), conv8 1024 (dilation 12),
    classifier 1x1 -> classes (no neuron: its membrane accumulates)

Every conv is 3x3, no bias, followed by BNTT and a LIF neuron. The readout
accumulator, divided by the steps done, is upsampled bilinearly
(``align_corners=True``) to the input size. With 3 inputs and 21 classes the
convs hold 4,115,136 weights and cost about 1.37 G MAC per step at 64x64.
"""

from __future__ import annotations

from torch import nn

from edge_snn.models.base import ACC, SegmentationNet, pooled

# name, output channels, dilation; "pool" marks an AvgPool2d(3, 2, 1)
DEEPLAB_LAYERS = (
    ("conv1", 64, 1), ("conv2", 64, 1), "pool",
    ("conv3", 128, 1), ("conv4", 128, 1), "pool",
    ("conv5", 256, 1), ("conv6", 256, 2), ("conv7", 256, 2), ("conv8", 1024, 12),
)


class SpikingDeepLab(SegmentationNet):
    arch = "dl-vgg9"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.convs = nn.ModuleDict()
        self.norms = nn.ModuleDict()
        c_in, previous = self.in_channels, "input"
        for entry in DEEPLAB_LAYERS:
            if entry == "pool":
                continue
            name, c_out, dilation = entry
            c_out = self._channels(c_out)
            self.convs[name] = nn.Conv2d(c_in, c_out, 3, padding=dilation, dilation=dilation, bias=False)
            self.norms[name] = self._norm(c_out)
            self.spiking_layers.append(name)
            self.conv_inputs[name] = previous
            c_in, previous = c_out, name
        self.classifier = nn.Conv2d(c_in, self.num_classes, 1, bias=False)
        self.conv_inputs["classifier"] = previous
        self._init_weights(self)

    def _body(self, ops, x, mem, step, steps):
        new: dict = {}
        for entry in DEEPLAB_LAYERS:
            if entry == "pool":
                x = ops.pool(x)
            else:
                x = self._spiking_block(ops, entry[0], x, mem, new, step, steps)
        return ops.conv(x, self.classifier), new

    def _finish(self, ops, mean_readout, height, width):
        return ops.resize(mean_readout, (height, width))

    def membrane_shapes(self, height, width):
        shapes, h, w = {}, height, width
        for entry in DEEPLAB_LAYERS:
            if entry == "pool":
                h, w = pooled(h), pooled(w)
            else:
                shapes[entry[0]] = (self.convs[entry[0]].out_channels, h, w)
        shapes[ACC] = (self.num_classes, h, w)
        return shapes
