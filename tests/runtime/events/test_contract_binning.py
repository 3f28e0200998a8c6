"""The binning travels in the ONNX metadata (contract version 2); version-1 files still read."""

from __future__ import annotations

import json

import onnx
import pytest

from edge_snn.runtime.contract import FORMAT_VERSION, PREFIX, ContractError, read_contract
from edge_snn.runtime.model_file import load_onnx_contract


def _metadata(path):
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def test_export_writes_the_checkpoints_binning(event_models):
    from event_model_fixtures import RECORDING_SPEC

    meta = _metadata(event_models["fresh"])
    assert FORMAT_VERSION == 2 and meta[PREFIX + "format_version"] == "2"
    assert json.loads(meta[PREFIX + "binning"]) == RECORDING_SPEC.to_dict()
    assert load_onnx_contract(event_models["fresh"]).binning == RECORDING_SPEC.to_dict()


def test_version_1_files_read_without_binning_and_damage_is_refused(event_models):
    meta = _metadata(event_models["fresh"])
    old = {k: v for k, v in meta.items() if k != PREFIX + "binning"}
    old[PREFIX + "format_version"] = "1"
    contract = read_contract(old)
    assert contract.format_version == 1 and contract.binning is None
    with pytest.raises(ContractError, match="damaged"):
        read_contract({**meta, PREFIX + "binning": "{not json"})
    assert PREFIX + "binning" not in contract.to_metadata()
