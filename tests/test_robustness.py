"""Input corruptions (deterministic, range-preserving) and the SNN-vs-ANN noise sweep."""

import json

import pytest
import torch
from typer.testing import CliRunner

from model_fixtures import randomized
from edge_snn.cli import app
from edge_snn.data.synthetic_dataset import SyntheticSegmentation
from edge_snn.errors import UserError
from edge_snn.models import build_model
from edge_snn.robustness import blur, corruption, format_table, gaussian, parse_levels, salt_pepper, sweep
from edge_snn.training.checkpoint import save_checkpoint
from edge_snn.training.config import TrainConfig


def image(seed=0, shape=(2, 3, 16, 20)):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("make", [gaussian, salt_pepper, blur])
def test_level_zero_is_identity_and_a_seed_fixes_the_noise(make):
    x = image()
    assert torch.equal(make(0)(x, seed=1), x)
    noisy = make(0.3)(x, seed=1)
    assert torch.equal(noisy, make(0.3)(x, seed=1)) and not torch.equal(noisy, x)
    assert noisy.min() >= -1 and noisy.max() <= 1  # clipped to the rate code's range
    if make is not blur:
        assert not torch.equal(noisy, make(0.3)(x, seed=2))


def test_gaussian_std_is_the_level_in_image_units():
    noisy = gaussian(0.1)(torch.zeros(4, 3, 32, 32), seed=0)
    assert noisy.std().item() == pytest.approx(0.1, rel=0.05)


def test_salt_pepper_hits_whole_pixels_at_the_given_rate():
    x = torch.zeros(8, 3, 32, 32)
    noisy = salt_pepper(0.1)(x, seed=0)
    hit = noisy != 0
    assert torch.equal(hit, hit[:, :1].expand_as(hit))  # all channels of a pixel together
    assert hit[:, 0].float().mean().item() == pytest.approx(0.1, abs=0.02)
    assert set(noisy[hit].tolist()) == {-1.0, 1.0}


def test_blur_keeps_constants_and_spreads_an_impulse():
    assert torch.allclose(blur(1.5)(torch.full((1, 1, 12, 12), 0.25), seed=0), torch.full((1, 1, 12, 12), 0.25))
    impulse = torch.zeros(1, 1, 15, 15)
    impulse[0, 0, 7, 7] = 1.0
    out = blur(1.0)(impulse, seed=0)
    assert out.sum().item() == pytest.approx(1.0, abs=1e-5) and out[0, 0, 7, 7] < 0.2
    assert torch.allclose(out, out.flip(-1)) and torch.allclose(out, out.transpose(-1, -2))


def test_event_noise_stays_in_each_samples_range():
    events = torch.zeros(2, 4, 2, 8, 8)
    events[0, :, :, 2:4, 2:4] = 3.0  # counts 0..3; sample 1 holds no events at all
    noisy = salt_pepper(0.2)(events, seed=0, events=True)
    assert set(noisy[0].unique().tolist()) <= {0.0, 3.0} and (noisy[1] == 0).all()
    spread = gaussian(0.5)(events, seed=0, events=True)
    assert spread[0].min() >= 0 and spread[0].max() <= 3 and not torch.equal(spread[0], events[0])


def test_bad_names_and_levels():
    with pytest.raises(UserError, match="unknown noise 'speckle'"):
        corruption("speckle", 0.1)
    with pytest.raises(UserError, match="at most 1"):
        salt_pepper(2)
    with pytest.raises(UserError, match=">= 0"):
        gaussian(-0.1)
    assert parse_levels(["0.1,0.2", "0.4"]) == [0.1, 0.2, 0.4] and corruption("salt_pepper", 0.1).noise == "salt-pepper"
    with pytest.raises(UserError, match="--level takes numbers"):
        parse_levels(["0.1,x"])


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(SNN, ANN twin) checkpoints of a tiny Spiking-DeepLab on synthetic images, 16x16."""
    folder = tmp_path_factory.mktemp("robust")
    config = TrainConfig(width_mult=0.125, timesteps=3, dataset="synthetic-images", height=16, width=16)
    paths = {}
    for kind, spiking in (("snn", True), ("ann", False)):
        torch.manual_seed(0)
        model = randomized(build_model("dl-vgg9", in_channels=3, num_classes=4, timesteps=3, width=0.125,
                                       spiking=spiking))
        paths[kind] = folder / f"{kind}.pt"
        save_checkpoint(paths[kind], model, data={"dataset": "synthetic-images", "encoding": "poisson"},
                        train_config=config.to_dict())
    return paths


def test_sweep_scores_snn_and_ann_under_each_noise(pair):
    dataset = SyntheticSegmentation("test", kind="image", size=(16, 16), num_samples=4)
    rows = sweep({"snn": pair["snn"], "ann": pair["ann"]}, dataset, ["gaussian", "blur"], [0.3], batch_size=4)
    assert [(r["checkpoint"], r["model"], r["noise"], r["level"]) for r in rows] == [
        ("snn", "snn", "gaussian", 0.0), ("snn", "snn", "gaussian", 0.3), ("snn", "snn", "blur", 0.0),
        ("snn", "snn", "blur", 0.3),
        ("ann", "ann", "gaussian", 0.0), ("ann", "ann", "gaussian", 0.3), ("ann", "ann", "blur", 0.0),
        ("ann", "ann", "blur", 0.3)]
    assert all(0 <= r["miou"] <= 1 for r in rows)
    assert rows == sweep({"snn": pair["snn"], "ann": pair["ann"]}, dataset, ["gaussian", "blur"], [0.3], batch_size=4)
    table = format_table(rows)
    assert "snn:snn" in table and "ann:ann" in table and len(table.splitlines()) == 5


def test_cli_eval_noise_sweep(pair, tmp_path):
    args = ["eval", str(pair["snn"]), "--samples", "4", "--batch-size", "4", "--noise", "salt-pepper",
            "--level", "0.05,0.1", "--compare", str(pair["ann"]), "--json", str(tmp_path / "sweep.json"),
            "--plot", str(tmp_path / "sweep.png")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "sweep.json").read_text())
    assert len(rows) == 6 and {r["model"] for r in rows} == {"snn", "ann"}
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "skipping the plot" in result.output
    else:
        assert (tmp_path / "sweep.png").is_file()
    result = CliRunner().invoke(app, ["eval", str(pair["snn"]), "--noise", "fog"])
    assert result.exit_code == 2 and "unknown noise 'fog'" in result.output
    result = CliRunner().invoke(app, ["eval", str(pair["snn"]), "--level", "0.1"])
    assert result.exit_code == 2 and "add --noise" in result.output
