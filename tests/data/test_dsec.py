"""DSEC-Semantic in the ESS layout: blosc events, per-timestamp labels, 11/19 classes, the official split."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from dsec_fixtures import sequence_label, write_dsec_semantic
from edge_snn.data.dsec import CITYSCAPES_19_CLASSES, DSEC_11_CLASSES, DSECSemantic, DSECSemantic19
from edge_snn.data.registry import build_dataset
from edge_snn.errors import UserError


@pytest.fixture(scope="module")
def dsec_root(tmp_path_factory):
    return write_dsec_semantic(tmp_path_factory.mktemp("dsec") / "DSEC_Semantic")


def test_items_pair_windows_with_labels_at_native_size(dsec_root):
    ds = DSECSemantic(dsec_root, "train", timesteps=5)
    assert (ds.num_classes, ds.kind, ds.class_names) == (11, "events", DSEC_11_CLASSES)
    assert len(ds) == 16  # 8 labels (every 50 ms of 400 ms) in each of the two train sequences
    x, y = ds[3]
    assert x.dtype == torch.float32 and x.shape == (5, 2, 440, 640)
    assert 0 <= x.min() and x.max() <= 1
    np.testing.assert_array_equal(y.numpy(), np.where(sequence_label(11, 3) == 255, 255, sequence_label(11, 3)))
    # the sequence's marker: 1 ON event every 10 ms at (x=100, y=50): 5 in a 50 ms window, one per 10 ms bin
    assert x[:, 0, 50, 100].tolist() == [0.25] * 5
    assert ds.binning.to_dict()["rectify"] is True and ds.binning.window_us == 50_000


def test_windows_stay_inside_their_sequence(dsec_root):
    ds = DSECSemantic(dsec_root, "train", timesteps=1)
    first_of_second = [i for i, (s, k) in enumerate(ds.samples) if s == 1][0]
    x, _ = ds[first_of_second]
    assert x[0, 0, 50, 110] > 0 and x[0, 0, 50, 100] == 0  # its own marker, never the other sequence's


def test_test_split_nineteen_classes_and_resize(dsec_root):
    ds = DSECSemantic19(dsec_root, "test", timesteps=2, size=(55, 80))
    assert ds.class_names == CITYSCAPES_19_CLASSES and len(ds) == 8
    x, y = ds[0]
    assert x.shape == (2, 2, 55, 80) and y.shape == (55, 80)
    assert set(torch.unique(y).tolist()) <= set(range(19)) | {255}
    assert build_dataset("dsec-semantic", dsec_root, "val", timesteps=2).split == "test"


def test_layout_errors_name_the_file(dsec_root, tmp_path):
    root = tmp_path / "broken"
    shutil.copytree(dsec_root, root)
    seq = root / "train" / "zurich_city_00_a"
    (seq / "semantic" / "timestamps.txt").write_text("1\n2\n")
    with pytest.raises(UserError, match="8 labels but .*2 timestamps"):
        DSECSemantic(root, "train")
    shutil.rmtree(seq / "semantic")
    with pytest.raises(UserError, match="11classes label folder"):
        DSECSemantic(root, "train")
    with pytest.raises(UserError, match="split"):
        DSECSemantic(dsec_root, "valid-ish")
    with pytest.raises(UserError, match="not found"):
        DSECSemantic(tmp_path / "nowhere", "train")


def test_official_zip_layout_is_read_too(dsec_root, tmp_path):
    root = tmp_path / "zips"
    shutil.copytree(dsec_root, root)
    for seq in (root / "test").iterdir():
        (seq / "semantic" / "left" / "11classes" / "data").rename(seq / "11classes")
        (seq / "semantic" / "timestamps.txt").rename(seq / f"{seq.name}_semantic_timestamps.txt")
        shutil.rmtree(seq / "semantic")
    assert len(DSECSemantic(root, "test", timesteps=1)) == 8


def test_train_one_epoch_and_eval_report_miou(dsec_root, tmp_path):
    from typer.testing import CliRunner

    from edge_snn.cli import app

    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--config", "configs/dsec_deeplab.toml", "--data-root", str(dsec_root),
                                 "--height", "55", "--width", "80", "--timesteps", "2", "--width-mult", "0.125",
                                 "--epochs", "1", "--batch-size", "8", "--quiet", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "val mIoU" in result.output and (out / "best.pt").is_file()
    result = runner.invoke(app, ["eval", str(out / "best.pt"), "--split", "test"])
    assert result.exit_code == 0, result.output
    assert "mIoU" in result.output and "traffic-sign" in result.output
    from edge_snn.training.checkpoint import load_checkpoint

    assert load_checkpoint(out / "best.pt")["data"]["binning"]["sensor"] == [480, 640]
