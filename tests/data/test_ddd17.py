"""DDD17 in the Ev-SegNet release format and in the ESS re-release format."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from edge_snn.data.ddd17 import DDD17_CLASSES, DDD17EvSegNet
from edge_snn.data.ddd17_ess import DDD17ESS
from edge_snn.errors import UserError

REC = "rec1487417411_export"


def names(*frames: int) -> list[str]:
    return [f"{REC}_{f}" for f in frames]


def hot_row(x_frame: torch.Tensor) -> int:
    """Row of the one pixel where the OFF channel is at its max (the frame's id, mod 200)."""
    return int(torch.nonzero(x_frame[1] == 0.5)[0, 0])


# ---- Ev-SegNet release ---------------------------------------------------


@pytest.mark.parametrize("split_first", [True, False])
def test_evsegnet_shapes_scaling_pairing(make_evsegnet, trees, split_first):
    root = make_evsegnet({"train": names(3, 4, 12), "test": names(40)}, split_first=split_first)
    ds = DDD17EvSegNet(root, "train", timesteps=4)
    assert (ds.num_classes, ds.kind, ds.ignore_index) == (6, "events", 255)
    assert ds.class_names == DDD17_CLASSES == ("flat", "construction+sky", "object", "nature", "human", "vehicle")
    assert len(ds) == 3
    # natural order by frame number: 3, 4, 12 (not "12" < "3")
    for i, frame in enumerate([3, 4, 12]):
        x, y = ds[i]
        assert x.dtype == torch.float32 and x.shape == (4, 2, trees.DDD_H, trees.DDD_W)
        assert y.dtype == torch.int64 and y.shape == (trees.DDD_H, trees.DDD_W)
        # channels 0 and 1 only, each min-max scaled to [-0.5, 0.5] (channels 2..5 hold 1e6)
        assert x.min() == -0.5 and x.max() == 0.5
        ramp = torch.arange(trees.DDD_W, dtype=torch.float32) / (trees.DDD_W - 1) - 0.5
        torch.testing.assert_close(x[0, 0, 50], ramp)
        assert hot_row(x[0]) == frame and (x[1:] == x[0]).all()  # the one frame, repeated T times
        assert set(torch.unique(y).tolist()) == {frame % 6, 255} and (y[:10] == 255).all()
    test = DDD17EvSegNet(root, "test", timesteps=2)
    assert len(test) == 1 and hot_row(test[0][0][0]) == 40


def test_evsegnet_consecutive_frames_stay_in_their_recording(make_evsegnet):
    root = make_evsegnet({"train": names(5, 6, 7, 9) + ["rec1487779465_export_10"]})
    ds = DDD17EvSegNet(root, "train", timesteps=3, frames="consecutive")
    order = [p.stem for p, _ in ds.samples]
    assert order == names(5, 6, 7, 9) + ["rec1487779465_export_10"]  # by (recording, frame number)
    by_name = {stem: i for i, stem in enumerate(order)}
    rows = lambda x: [hot_row(x[t]) for t in range(x.shape[0])]  # noqa: E731
    assert rows(ds[by_name[f"{REC}_7"]][0]) == [5, 6, 7]
    assert rows(ds[by_name[f"{REC}_6"]][0]) == [5, 5, 6]  # padded with the recording's first frame
    assert rows(ds[by_name[f"{REC}_9"]][0]) == [9, 9, 9]  # 8 is missing: 9 starts a new run
    assert rows(ds[by_name["rec1487779465_export_10"]][0]) == [10, 10, 10]  # other recording: 9 is not its past


def test_evsegnet_resize_keeps_void(make_evsegnet):
    root = make_evsegnet({"train": names(1)})
    x, y = DDD17EvSegNet(root, "train", size=(50, 86), timesteps=1)[0]
    assert x.shape == (1, 2, 50, 86) and y.shape == (50, 86)
    assert set(torch.unique(y).tolist()) == {1, 255}
    assert -0.5 <= x.min() and x.max() <= 0.5


def test_evsegnet_errors(make_evsegnet, tmp_path):
    with pytest.raises(UserError, match="not found"):
        DDD17EvSegNet(tmp_path / "missing", "train")
    root = make_evsegnet({"train": names(1, 2)})
    with pytest.raises(UserError, match="'test'.*events"):
        DDD17EvSegNet(root, "test")
    with pytest.raises(UserError, match="frames mode"):
        DDD17EvSegNet(root, "train", frames="stack")
    with pytest.raises(UserError, match="timesteps"):
        DDD17EvSegNet(root, "train", timesteps=0)
    np.save(root / "train" / "events" / f"{REC}_2.npy", np.zeros((200, 346, 6), np.float32)[:, :300])
    with pytest.raises(UserError, match="H x W x 6"):
        DDD17EvSegNet(root, "train")[1]
    (root / "train" / "labels" / f"{REC}_1.png").unlink()
    with pytest.raises(UserError, match=f"{REC}_1.png"):
        DDD17EvSegNet(root, "train")


# ---- ESS re-release --------------------------------------------------------


def test_ess_splits_counts_and_pairing(ess_root, trees):
    ds = DDD17ESS(ess_root, "test", timesteps=5)
    assert (ds.num_classes, ds.kind, ds.class_names) == (6, "events", DDD17_CLASSES)
    assert len(ds) == 2  # masks of frames 2 and 3 of dir4
    for i, n in enumerate([2, 3]):
        x, y = ds[i]
        assert x.dtype == torch.float32 and x.shape == (5, 2, trees.DDD_H, trees.DDD_W)
        assert y.dtype == torch.int64 and y.shape == (trees.DDD_H, trees.DDD_W)
        assert set(torch.unique(y).tolist()) == {(4 + n) % 6, 255} and (y[0] == 255).all()
        # dir4's events sit at x = 14, y = 5: ON at bins 0, 1, 2, OFF at bin 4; y = 230 dropped
        on, off = x[:, 0, 5, 14], x[:, 1, 5, 14]
        assert on.tolist() == [1, 1, 1, 0, 0] and off.tolist() == [0, 0, 0, 0, 1]
        assert x.sum() == 4
    assert len(DDD17ESS(ess_root, "train", timesteps=2)) == 10
    valid = DDD17ESS(ess_root, "val", timesteps=1)
    assert len(valid) == 2 and valid[0][0][0, 0, 5, 11] == 3  # dir1 -> x = 11, all 3 ON in one bin


def test_ess_resize(ess_root):
    x, y = DDD17ESS(ess_root, "test", timesteps=2, size=(100, 173))[0]
    assert x.shape == (2, 2, 100, 173) and y.shape == (100, 173)


def test_both_loaders_record_the_binning_a_recording_run_must_redo():
    from edge_snn.data.ddd17 import evsegnet_binning
    from edge_snn.data.ddd17_ess import ess_binning

    repeat = evsegnet_binning(4, "repeat", None)
    assert (repeat.bins, repeat.timesteps, repeat.normalize, repeat.output_size) == (1, 4, "minmax_half", (200, 346))
    assert evsegnet_binning(4, "consecutive", (100, 173)).window_us == 4 * 50_000
    ess = ess_binning(5, None)
    assert (ess.time_bins, ess.normalize, ess.sensor, ess.crop) == ("event_span", "none", (260, 346), (0, 0, 200, 346))


def test_ess_errors(ess_root, tmp_path):
    with pytest.raises(UserError, match="not found"):
        DDD17ESS(tmp_path / "missing", "train")
    with pytest.raises(UserError, match="split"):
        DDD17ESS(ess_root, "other")
    (ess_root / "dir4" / "index" / "index_50ms.npy").unlink()
    with pytest.raises(UserError, match="index_50ms.npy"):
        DDD17ESS(ess_root, "test")
    masks = ess_root / "dir1" / "segmentation_masks"
    shutil.make_archive(str(ess_root / "dir1" / "segmentation_masks"), "zip", masks)
    shutil.rmtree(masks)
    with pytest.raises(UserError, match="Unzip segmentation_masks.zip"):
        DDD17ESS(ess_root, "valid")
    shutil.rmtree(ess_root / "dir6")
    with pytest.raises(UserError, match="7"):
        DDD17ESS(ess_root, "train")
