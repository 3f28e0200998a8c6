"""Deployment targets: device profiles, a static TensorRT/DLA readiness check, a roofline floor.

Runs on the device side too: imports onnx and numpy only, never torch.

    from edge_snn.targets import load_target, check_model, estimate_floor
    target = load_target("orin-nx-16gb")
    print(check_model("model.onnx", target, dla_core=0).format())
    print(estimate_floor("model.onnx", target, "int8").format())
"""

from edge_snn.targets.check import CheckReport, Finding, check_model
from edge_snn.targets.estimate import Estimate, estimate_floor
from edge_snn.targets.profiles import Target, list_targets, load_target

__all__ = ["CheckReport", "Estimate", "Finding", "Target", "check_model", "estimate_floor", "list_targets",
           "load_target"]
