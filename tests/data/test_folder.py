"""A folder of images + index-PNG labels, paired by stem."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edge_snn.data.folder import ImageFolderSegmentation
from edge_snn.errors import UserError


def colour_at_centre(x: torch.Tensor) -> np.ndarray:
    return (x[:, x.shape[1] // 2, x.shape[2] // 2].numpy() / 2 + 0.5) * 255


def test_pairs_by_stem_and_keeps_void(make_folder, trees):
    root = make_folder(["b", "a", "c"], classes=["sky", "road", "car"])
    ds = ImageFolderSegmentation(root, normalize="symmetric")
    assert ds.kind == "image" and ds.ignore_index == 255
    assert ds.class_names == ("sky", "road", "car") and ds.num_classes == 3
    assert [p.stem for p, _ in ds.samples] == ["a", "b", "c"]
    # written order b=0, a=1, c=2; sorted order is a, b, c
    for i, k in enumerate([1, 0, 2]):
        x, y = ds[i]
        assert x.shape == (3, trees.VOC_H, trees.VOC_W) and x.dtype == torch.float32
        assert y.shape == (trees.VOC_H, trees.VOC_W) and y.dtype == torch.int64
        np.testing.assert_allclose(colour_at_centre(x), trees.sample_color(k), atol=4)
        assert (y[0] == 255).all()
        assert y[5, -1] == k and y[5, 0] == 0


def test_infers_num_classes_from_labels(make_folder):
    root = make_folder(["s0", "s1", "s2", "s3"], max_class=3)
    ds = ImageFolderSegmentation(root)
    assert ds.num_classes == 4 and ds.class_names == ("class0", "class1", "class2", "class3")
    # only the first file scanned: it holds class 0 only
    assert ImageFolderSegmentation(root, infer_from=2).num_classes == 2
    assert ImageFolderSegmentation(root, num_classes=7).num_classes == 7


def test_split_subfolder_and_resize(tmp_path, trees):
    root = tmp_path / "ds"
    trees.write_folder(root / "train", ["t0", "t1", "t2"])
    trees.write_folder(root / "val", ["v0"])
    (root / "classes.txt").write_text("bg\nfg\nother\n")
    train = ImageFolderSegmentation(root, "train", size=(8, 10))
    assert len(train) == 3 and train.class_names == ("bg", "fg", "other")
    x, y = train[2]
    assert x.shape == (3, 8, 10) and y.shape == (8, 10)
    assert set(torch.unique(y).tolist()) == {0, 2, 255}
    assert len(ImageFolderSegmentation(root, "val")) == 1


def test_missing_pieces_are_user_errors(make_folder, tmp_path):
    with pytest.raises(UserError, match="images"):
        ImageFolderSegmentation(tmp_path / "nothing")
    root = make_folder(["a", "b"], classes=["x", "y", "z"])
    with pytest.raises(UserError, match="conflicts"):
        ImageFolderSegmentation(root, num_classes=5)
    with pytest.raises(UserError, match="train"):
        ImageFolderSegmentation(root, "train")
    (root / "labels" / "b.png").unlink()
    with pytest.raises(UserError, match="b.png"):
        ImageFolderSegmentation(root)
