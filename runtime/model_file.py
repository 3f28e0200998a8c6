"""Open an exported model file and read its contract, with errors a user can act on."""

from __future__ import annotations

from pathlib import Path

from edge_snn.errors import UserError
from edge_snn.runtime.contract import ContractError, ModelContract, read_contract


def load_onnx_contract(path: str | Path) -> ModelContract:
    """The :class:`ModelContract` of an edge-snn ONNX file (weights are not loaded)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} does not exist; export one with `edge-snn export CHECKPOINT -o {path.name}`")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:
        raise UserError(f"{path} is not an ONNX file (it does not parse as an ONNX model); pass a .onnx file written by `edge-snn export`") from None
    if not proto.graph.node:
        raise UserError(f"{path} is not an ONNX model (no graph); pass a .onnx file written by `edge-snn export`")
    try:
        return read_contract({p.key: p.value for p in proto.metadata_props}, source=str(path))
    except ContractError as err:
        raise UserError(str(err)) from None
