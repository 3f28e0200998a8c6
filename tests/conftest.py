"""Shared fixtures: small spiking checkpoints (see model_fixtures.py)."""

from __future__ import annotations

import pytest

from model_fixtures import write_small_checkpoint


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory):
    """(path, model) of a small event-input Spiking-DeepLab, T=6, 24x32."""
    path = tmp_path_factory.mktemp("ckpt") / "small.pt"
    model = write_small_checkpoint(path)
    return path, model


@pytest.fixture(scope="session")
def small_image_checkpoint(tmp_path_factory):
    """(path, model) of a small Poisson-input Spiking-FCN, T=4, 20x28."""
    path = tmp_path_factory.mktemp("ckpt") / "small_fcn.pt"
    model = write_small_checkpoint(path, arch="fcn-vgg9", timesteps=4, height=20, width=28, dataset="synthetic-images")
    return path, model
