"""The demo's pictures: four titled panels (events, ground truth, prediction, errors) and a legend, readable size."""

from __future__ import annotations

import numpy as np

from edge_snn.demo import error_map, panel_picture, write_panels


def test_error_map_marks_wrong_right_and_void():
    label = np.array([[0, 1], [255, 2]])
    pred = np.array([[0, 2], [1, 2]])
    errors = error_map(label, pred)
    assert tuple(errors[0, 1]) == (220, 30, 30) and tuple(errors[0, 0]) == (225, 225, 225)
    assert tuple(errors[1, 0]) == (90, 90, 90)  # void is never an error


def test_panel_is_upscaled_titled_and_carries_a_legend():
    label = np.zeros((24, 32), dtype=np.int64)
    label[5:10, 5:10] = 2
    picture = panel_picture(np.zeros((4, 2, 24, 32), np.float32), label, label, ["bg", "a", "b", "c"],
                            caption="scene 0")
    assert picture.dtype == np.uint8 and picture.shape[0] >= 256 + 20 and picture.shape[1] >= 4 * 256
    # the ground-truth panel (second) shows class 2 upscaled 11x: VOC colour of class 2 is (0, 128, 0)
    assert (picture == np.array([0, 128, 0], np.uint8)).all(-1).sum() >= 2 * 25 * 11 * 11


def test_write_panels_from_a_model(small_checkpoint, tmp_path):
    from edge_snn.data.synthetic_dataset import SyntheticSegmentation

    _, model = small_checkpoint
    dataset = SyntheticSegmentation("test", size=(24, 32), timesteps=6, num_samples=2)
    paths = write_panels(model, dataset, tmp_path, count=2)
    assert [p.split("/")[-1] for p in paths] == ["panel_00.png", "panel_01.png"]
    from PIL import Image

    with Image.open(paths[0]) as im:
        assert im.size[0] >= 1024 and im.size[1] >= 256
