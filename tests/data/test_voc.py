"""PASCAL VOC2012 and VOC2012 + SBD (train_aug) read from trees in the public layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from edge_snn.data.pixels import CAFFE_MEAN_RGB
from edge_snn.data.voc import VOC_CLASSES, VOCAugSegmentation, VOCSegmentation
from edge_snn.errors import UserError


def recovered_color(x: torch.Tensor) -> np.ndarray:
    """Undo the reference normalization at the image centre."""
    centre = x[:, x.shape[1] // 2, x.shape[2] // 2].numpy()
    return centre * 255.0 + np.array(CAFFE_MEAN_RGB)


def test_train_split_shapes_pairing_and_void(make_voc, trees):
    H, W = trees.VOC_H, trees.VOC_W
    root = make_voc({"train": [0, 2], "val": [1]})
    ds = VOCSegmentation(root, "train")
    assert (ds.num_classes, ds.kind, ds.ignore_index) == (21, "image", 255)
    assert ds.class_names == VOC_CLASSES and ds.class_names[15] == "person"
    assert len(ds) == 2
    for i, k in enumerate([0, 2]):
        x, y = ds[i]
        assert x.dtype == torch.float32 and x.shape == (3, H, W)
        assert y.dtype == torch.int64 and y.shape == (H, W)
        assert x.abs().max() <= 1.0
        np.testing.assert_allclose(recovered_color(x), trees.sample_color(k), atol=4)
        # palette indices, not colours; the void border stays 255
        assert set(torch.unique(y).tolist()) == {0, k + 1, 255}
        assert (y[0] == 255).all() and (y[:, -1] == 255).all()
        assert y[H // 2, W - 4] == k + 1


def test_val_split_and_root_variants(make_voc, trees):
    root = make_voc({"train": [0, 2], "val": [1]})
    for where in (root, root / "VOCdevkit", root / "VOCdevkit" / "VOC2012"):
        ds = VOCSegmentation(where, "val")
        assert len(ds) == 1
        np.testing.assert_allclose(recovered_color(ds[0][0]), trees.sample_color(1), atol=4)


def test_aug_reads_train_aug_list_and_aug_labels(make_voc, trees):
    root = make_voc({"val": [1]}, aug_splits={"train_aug": [0, 2, 3]})
    ds = VOCAugSegmentation(root, "train")
    assert len(ds) == 3
    x, y = ds[2]
    np.testing.assert_allclose(recovered_color(x), trees.sample_color(3), atol=4)
    assert set(torch.unique(y).tolist()) == {0, 3 + 11, 255}  # SegmentationClassAug, void kept
    val = VOCAugSegmentation(root, "val")
    assert set(torch.unique(val[0][1]).tolist()) == {0, 1 + 11, 255}


def test_resize_and_symmetric_normalization(make_voc, trees):
    root = make_voc({"train": [0]})
    x, y = VOCSegmentation(root, "train", size=(12, 20), normalize="symmetric")[0]
    assert x.shape == (3, 12, 20) and y.shape == (12, 20)
    assert set(torch.unique(y).tolist()) <= {0, 1, 255}
    expected = (np.array(trees.sample_color(0)) / 255 - 0.5) * 2
    np.testing.assert_allclose(x[:, 6, 10].numpy(), expected, atol=0.03)


def test_labels_beyond_the_classes_become_void(make_voc):
    root = make_voc({"train": [0]})
    path = root / "VOCdevkit/VOC2012/SegmentationClass/2007_000000.png"
    arr = np.array(Image.open(path))
    arr[5, 5] = 40
    Image.fromarray(arr).save(path)
    assert VOCSegmentation(root, "train")[0][1][5, 5] == 255


def test_missing_root_split_and_files_are_user_errors(make_voc, tmp_path):
    with pytest.raises(UserError, match="JPEGImages"):
        VOCSegmentation(tmp_path / "nowhere", "train")
    root = make_voc({"train": [0]})
    with pytest.raises(UserError, match="trainval.txt"):
        VOCSegmentation(root, "trainval")
    with pytest.raises(UserError, match="train_aug.txt"):
        VOCAugSegmentation(root, "train")
    (root / "VOCdevkit/VOC2012/SegmentationClass/2007_000000.png").unlink()
    with pytest.raises(UserError, match="2007_000000.png"):
        VOCSegmentation(root, "train")
    with pytest.raises(UserError, match="normalization"):
        VOCSegmentation(root, "train", normalize="imagenet")


def test_colour_label_is_refused(make_voc):
    root = make_voc({"train": [0]})
    path = root / "VOCdevkit/VOC2012/SegmentationClass/2007_000000.png"
    Image.open(path).convert("RGB").save(path)
    with pytest.raises(UserError, match="index PNG"):
        VOCSegmentation(root, "train")[0]
