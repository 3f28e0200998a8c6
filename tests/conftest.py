"""Shared fixtures (small spiking checkpoints, see model_fixtures.py) and the torch-free test selection.

Tests of the device side that need neither torch nor brevitas carry the ``runtime`` marker
(``pytestmark = pytest.mark.runtime`` at module level). ``make test-oldest`` runs exactly those
(``pytest -m runtime``) in an environment without torch, on the oldest versions the device side
claims; there, modules without the marker are not even imported (they import torch at the top).
``tests/test_runtime_marker.py`` checks that every marked module imports with torch blocked.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from runtime_marker import declares_runtime_marker



def _torch_absent() -> bool:
    try:
        return importlib.util.find_spec("torch") is None
    except ImportError:  # a blocker (tests/torch_blocking.py) refuses even the look-up
        return True


TORCH_ABSENT = _torch_absent()


def pytest_ignore_collect(collection_path: Path, config):
    """Without torch, collect only the modules marked ``runtime`` (others would fail to import)."""
    if TORCH_ABSENT and collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        return not declares_runtime_marker(collection_path)
    return None


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory):
    """(path, model) of a small event-input Spiking-DeepLab, T=6, 24x32."""
    from model_fixtures import write_small_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "small.pt"
    model = write_small_checkpoint(path)
    return path, model


@pytest.fixture(scope="session")
def small_image_checkpoint(tmp_path_factory):
    """(path, model) of a small Poisson-input Spiking-FCN, T=4, 20x28."""
    from model_fixtures import write_small_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "small_fcn.pt"
    model = write_small_checkpoint(path, arch="fcn-vgg9", timesteps=4, height=20, width=28, dataset="synthetic-images")
    return path, model
