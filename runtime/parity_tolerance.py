"""How close a runtime must come to the PyTorch reference, per precision (torch-free: the selftest uses it too).

A parity run compares two views (see :mod:`edge_snn.parity`):

* **teacher-forced**, the verdict on the graph's arithmetic: every layer reads
  the *reference's* input spikes, so a layer's spike disagreement is its own
  numeric error, not a cascade, and the readout's logits differ only by the
  rounding of its own sums. A threshold turns rounding into a spike flip only
  where the membrane lies within rounding distance of theta, so in FP32
  essentially no spike may flip: ``spike_agreement`` 0.9999 allows one flip in
  10^4 neuron-steps (a scaled weight or a threshold moved by 1% flips 10-100x
  more). Logits: ``|runtime - reference| <= logit_atol + logit_rtol * max|reference|``.
* **free-running**, what a user sees: each path feeds itself, so one flip can
  cascade; judged on class maps (``pixel_agreement``) and, where labels
  exist, on mIoU (``miou_delta``, a fraction: 0.002 = 0.2 points).

INT8 graphs are compared with the *quantized* reference: the QDQ form computes
the same fake-quantized products in float (FP32 rounding again); the integer
form sums exact integers and scales once, a different rounding of the same
value, hence its slightly wider spike tolerance. FP16 (TensorRT) rounds every
membrane to 11 bits: flips near theta are frequent and legitimate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Tolerance:
    """Minimum teacher-forced spike agreement per layer, logit bounds, class-map agreement, mIoU difference."""

    spike_agreement: float
    logit_atol: float
    logit_rtol: float
    pixel_agreement: float
    miou_delta: float

    def to_dict(self) -> dict:
        return asdict(self)

    def logit_bound(self, reference_scale: float) -> float:
        """Largest allowed |logit error| when the reference's logits reach ``reference_scale`` in magnitude."""
        return self.logit_atol + self.logit_rtol * float(reference_scale)


TOLERANCES = {
    "fp32": Tolerance(spike_agreement=0.9999, logit_atol=1e-5, logit_rtol=1e-5, pixel_agreement=0.999, miou_delta=0.002),
    "int8-qdq": Tolerance(spike_agreement=0.9999, logit_atol=1e-5, logit_rtol=1e-5, pixel_agreement=0.999, miou_delta=0.002),
    "int8-integer": Tolerance(spike_agreement=0.999, logit_atol=1e-4, logit_rtol=1e-4, pixel_agreement=0.999, miou_delta=0.005),
    "fp16": Tolerance(spike_agreement=0.99, logit_atol=1e-2, logit_rtol=1e-2, pixel_agreement=0.995, miou_delta=0.01),
}


def tolerance_for(precision: str) -> Tolerance:
    """The tolerance of a graph's ``edge_snn.precision`` (unknown precisions get FP32's, the strictest)."""
    return TOLERANCES.get(precision, TOLERANCES["fp32"])
