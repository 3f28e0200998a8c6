"""How close a runtime must come to the PyTorch reference, per precision (torch-free: the selftest uses it too).

A parity run compares two views (see :mod:`edge_snn.parity`):

* **teacher-forced**, the verdict on the graph's arithmetic: every layer reads
  the *reference's* input spikes, so a layer's spike disagreement is its own
  numeric error, not a cascade, and the readout's logits differ only by the
  rounding of its own sums. A threshold turns rounding into a spike flip only
  where the membrane lies within rounding distance of theta, so in FP32
  essentially no spike may flip. A flip is *explained* when the reference's
  membrane was within ``margin * theta`` of the threshold at that step, or the
  same neuron already flipped earlier in the frame (its reset then differs by
  theta, so it may go on differing). Every unexplained flip fails the
  verdict; and at most ``1 - spike_agreement`` of a layer's neuron-steps may
  flip at all. A 1.5x weight or a threshold moved from 1.0 to 1.01 in one
  layer and step gives unexplained flips. Logits:
  ``|runtime - reference| <= logit_atol + logit_rtol * max|reference|``.
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
    """Teacher-forced spike agreement and near-threshold margin, logit bounds, class maps, mIoU difference."""

    spike_agreement: float
    margin: float
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
    "fp32": Tolerance(spike_agreement=0.9999, margin=1e-3, logit_atol=1e-5, logit_rtol=1e-5, pixel_agreement=0.999, miou_delta=0.002),
    "int8-qdq": Tolerance(spike_agreement=0.9999, margin=1e-3, logit_atol=1e-5, logit_rtol=1e-5, pixel_agreement=0.999, miou_delta=0.002),
    "int8-integer": Tolerance(spike_agreement=0.999, margin=1e-3, logit_atol=1e-4, logit_rtol=1e-4, pixel_agreement=0.999, miou_delta=0.005),
    "fp16": Tolerance(spike_agreement=0.99, margin=2e-2, logit_atol=1e-2, logit_rtol=1e-2, pixel_agreement=0.995, miou_delta=0.01),
}


def tolerance_for(precision: str) -> Tolerance:
    """The tolerance of a graph's ``edge_snn.precision`` (unknown precisions get FP32's, the strictest)."""
    return TOLERANCES.get(precision, TOLERANCES["fp32"])
