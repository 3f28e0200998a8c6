"""The shipped selftest fixture is exactly what the generator writes today, and its reference is the model's own."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_snn import selftest_fixture as F


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    return F.write_fixture(tmp_path_factory.mktemp("fixture"))


def test_regenerating_gives_the_shipped_files(regenerated):
    shipped = F.shipped_folder()
    for name in F.PRECISIONS.values():
        assert (regenerated / name).read_bytes() == (shipped / name).read_bytes(), (
            f"{name} is stale: run `python tools/make_selftest_fixture.py` and commit runtime/data/selftest")
    assert json.loads((regenerated / "fixture.json").read_text()) == json.loads((shipped / "fixture.json").read_text())
    with np.load(regenerated / "reference.npz", allow_pickle=False) as new, \
            np.load(shipped / "reference.npz", allow_pickle=False) as old:
        assert sorted(new.files) == sorted(old.files)
        for key in new.files:
            np.testing.assert_array_equal(new[key], old[key], err_msg=f"reference.npz[{key}] is stale")


def test_every_spiking_layer_of_the_fixture_fires(regenerated):
    with np.load(regenerated / "reference.npz", allow_pickle=False) as ref:
        for precision in F.PRECISIONS:
            counts = ref[f"{precision}.spike_counts"]
            assert counts.shape == (F.FRAMES, 8, F.TIMESTEPS)
            assert (counts.sum(axis=(0, 2)) > 0).all(), precision
            assert len(np.unique(ref[f"{precision}.class_map"])) > 1  # the class map is not constant
