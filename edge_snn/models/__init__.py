"""Model registry: keyword-only builders, one name per architecture.

``build_model("dl-vgg9", num_classes=6, in_channels=2, timesteps=20, width=0.25)``
builds Spiking-DeepLab; ``spiking=False`` gives its ANN twin (same layers,
ReLU instead of LIF, one BatchNorm per layer).
"""

from __future__ import annotations

from edge_snn.errors import UserError
from edge_snn.models.base import LAYOUTS, RunResult, SegmentationNet, SpikingState
from edge_snn.models.deeplab import SpikingDeepLab
from edge_snn.models.fcn import SpikingFCN
from edge_snn.neuron import LIFParams

ARCHITECTURES: dict[str, type[SegmentationNet]] = {
    SpikingDeepLab.arch: SpikingDeepLab,
    SpikingFCN.arch: SpikingFCN,
}


def build_model(
    arch: str,
    *,
    in_channels: int = 3,
    num_classes: int = 21,
    timesteps: int = 20,
    width: float = 1.0,
    spiking: bool = True,
    leak: float = 0.99,
    threshold: float = 1.0,
    surrogate: str = "linear",
) -> SegmentationNet:
    """Build an architecture by name (``dl-vgg9`` or ``fcn-vgg9``)."""
    if arch not in ARCHITECTURES:
        raise UserError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    from edge_snn.surrogate import surrogate_gradient

    surrogate_gradient(surrogate)  # validates the name early
    return ARCHITECTURES[arch](
        in_channels=in_channels,
        num_classes=num_classes,
        timesteps=timesteps,
        width=width,
        spiking=spiking,
        lif=LIFParams(leak=leak, threshold=threshold, surrogate=surrogate),
    )


__all__ = ["ARCHITECTURES", "LAYOUTS", "RunResult", "SegmentationNet", "SpikingState", "build_model"]
