"""Dataset names resolve to loaders; unknown names and options are user errors."""

from __future__ import annotations

import pytest

from edge_snn.data.ddd17 import DDD17EvSegNet
from edge_snn.data.folder import ImageFolderSegmentation
from edge_snn.data.registry import DATASETS, build_dataset, dataset_class
from edge_snn.data.voc import VOCAugSegmentation
from edge_snn.errors import UserError

PAPER_NAMES = ("voc2012", "voc2012-aug", "ddd17", "ddd17-ess", "folder")


@pytest.mark.parametrize("name", PAPER_NAMES)
def test_every_name_resolves_to_a_dataset_with_the_contract(name):
    cls = dataset_class(name)
    assert cls.ignore_index == 255 and cls.kind in ("image", "events")
    if name != "folder":  # the folder loader learns its classes from the data
        assert len(cls.class_names) == cls.num_classes


def test_build_passes_split_and_options(make_folder, make_evsegnet, make_voc):
    ds = build_dataset("folder", make_folder(["a", "b"]), None, size=(8, 8))
    assert isinstance(ds, ImageFolderSegmentation) and ds[0][0].shape == (3, 8, 8)
    ev = build_dataset("ddd17", make_evsegnet({"test": ["rec1_export_1"]}), "test", timesteps=3)
    assert isinstance(ev, DDD17EvSegNet) and ev[0][0].shape[0] == 3
    voc = build_dataset("voc2012-aug", make_voc({}, aug_splits={"train_aug": [0]}), "train")
    assert isinstance(voc, VOCAugSegmentation) and len(voc) == 1


def test_unknown_name_or_option_is_a_user_error(make_folder):
    with pytest.raises(UserError) as err:
        build_dataset("cityscapes", "/tmp", "train")
    assert all(name in str(err.value) for name in PAPER_NAMES)
    with pytest.raises(UserError, match="timesteps"):
        build_dataset("folder", make_folder(["a"]), None, timesteps=4)
    assert set(PAPER_NAMES) <= set(DATASETS)
