"""edge-snn: spiking segmentation networks from training to a Jetson Orin.

The core package (neurons, models, data, training) needs torch. The deploy side,
``edge_snn.runtime``, needs only numpy and ONNX Runtime (or TensorRT) and never
imports torch, so it can be installed on the drone on its own.
"""

__version__ = "0.1.0"
