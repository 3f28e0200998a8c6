"""Checkpoints: plain data only, atomic writes, refusal of files that would run code."""

import os
import pickle

import pytest
import torch

from edge_snn.errors import UserError
from edge_snn.models import build_model
from edge_snn.training.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint


class RunsCode:
    """Unpickling this calls os.system: the classic malicious checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_roundtrip(tmp_path):
    model = build_model("dl-vgg9", in_channels=2, num_classes=3, timesteps=2, width=0.125)
    save_checkpoint(tmp_path / "c.pt", model, data={"height": 8, "width": 8}, epoch=3)
    ckpt = load_checkpoint(tmp_path / "c.pt")
    assert ckpt["epoch"] == 3 and ckpt["model"]["arch"] == "dl-vgg9"
    rebuilt, _ = model_from_checkpoint(ckpt)
    for (k, a), (_, b) in zip(model.state_dict().items(), rebuilt.state_dict().items()):
        assert torch.equal(a, b), k
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp files left behind


@pytest.mark.parametrize("wrap", [lambda evil: evil, lambda evil: {"format": "edge-snn-checkpoint", "state_dict": {"w": evil}}])
def test_pickled_code_is_refused_and_never_runs(tmp_path, wrap):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save(wrap(RunsCode(marker)), path)
    with pytest.raises(UserError, match="refusing to load"):
        load_checkpoint(path)
    assert not marker.exists()
    with pytest.raises(UserError):
        model_from_checkpoint(path)
    assert not marker.exists()


def test_plain_pickle_file_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(UserError):
        load_checkpoint(path)
    assert not marker.exists()


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="import-checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
