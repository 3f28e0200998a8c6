"""The device side of edge-snn: numpy + ONNX Runtime (or TensorRT), never torch.

``Session(path)`` opens an exported model, reads its contract from the
metadata, encodes inputs and streams state between calls.
"""

from edge_snn.runtime.backends import make_runner
from edge_snn.runtime.session import FrameResult, Session, Stream

__all__ = ["FrameResult", "Session", "Stream", "make_runner"]
