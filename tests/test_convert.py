"""ANN-to-SNN conversion: the folded, normalized ANN is the same function; the SNN's rates approach it."""

import copy

import pytest
import torch
from typer.testing import CliRunner

from model_fixtures import randomized
from edge_snn.cli import app
from edge_snn.convert import apply_parameters, calibrate, convert_checkpoint, convert_model, normalized_parameters
from edge_snn.encoding import encode_batch
from edge_snn.errors import UserError
from edge_snn.models import build_model
from edge_snn.training.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from edge_snn.training.config import TrainConfig
from edge_snn.training.evaluate import evaluate_checkpoint


def ann_twin(arch, seed=1, in_channels=3):
    torch.manual_seed(seed)
    return randomized(build_model(arch, in_channels=in_channels, num_classes=4, width=0.125, spiking=False), seed)


def inputs(seed=0, batch=4, size=(16, 20)):
    return torch.rand(batch, 3, *size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("arch", ["dl-vgg9", "fcn-vgg9"])
@pytest.mark.parametrize("mode", ["layer", "channel"])
def test_normalization_keeps_the_ann_function_and_puts_every_max_at_one(arch, mode):
    ann, x = ann_twin(arch), inputs()
    lambdas = calibrate(ann, [x], mode=mode, percentile=100)
    lambdas["input"] = torch.ones(3)
    normalized = apply_parameters(copy.deepcopy(ann), *normalized_parameters(ann, lambdas))
    ref = ann.run(x).logits
    # ReLU is positively homogeneous: rescaling layer by layer leaves the logits unchanged
    assert torch.allclose(normalized.run(x).logits, ref, atol=1e-4 * ref.abs().max().item())
    # ... while every layer's (channel's) largest activation is now exactly the threshold
    after = calibrate(normalized, [x], mode=mode, percentile=100)
    for name, lam in after.items():
        assert (lam - 1).abs().max() < 1e-3, (name, lam)


def test_percentile_and_scale_set_lambda():
    ann, x = ann_twin("dl-vgg9"), inputs()
    top = calibrate(ann, [x], percentile=100)["conv1"]
    p99 = calibrate(ann, [x], percentile=99)["conv1"]
    scaled = calibrate(ann, [x], percentile=100, scale=0.5)["conv1"]
    assert (p99 < top).all() and torch.allclose(scaled, 0.5 * top)
    assert calibrate(ann, [x], mode="channel", percentile=100)["conv1"].max() == top[0]


def test_first_layer_current_peaks_at_threshold():
    ann, x = ann_twin("dl-vgg9"), inputs()
    snn, _ = convert_model(ann, [x], timesteps=2, percentile=100)
    currents = []
    snn.norms["conv1"].register_forward_hook(lambda m, args, out: currents.append(out))
    snn.run(encode_batch(x, "direct", 1))
    assert currents[0].max().item() == pytest.approx(1.0, abs=1e-5)
    assert snn.lif.leak == 1.0 and snn.lif.threshold == 1.0 and snn.timesteps == 2


@pytest.mark.parametrize("arch, mode", [("dl-vgg9", "channel"), ("fcn-vgg9", "channel"), ("dl-vgg9", "layer")])
def test_snn_rate_approaches_the_ann_with_many_steps(arch, mode):
    ann, x = ann_twin(arch), inputs()
    ref = ann.run(x).logits
    snn, _ = convert_model(ann, [x], timesteps=96, mode=mode, percentile=100)

    def error_at(steps):
        out = snn.run(encode_batch(x, "direct", steps), layout="layer-major").logits
        return out, ((out - ref).norm() / ref.norm()).item()

    out, error = error_at(96)
    agreement = (out.argmax(1) == ref.argmax(1)).float().mean().item()
    correlation = torch.corrcoef(torch.stack([out.flatten(), ref.flatten()]))[0, 1].item()
    assert agreement > 0.9 and correlation > 0.98, (agreement, correlation)
    assert error < error_at(8)[1]  # more steps, closer to the ANN


def test_refusals():
    ann, x = ann_twin("dl-vgg9"), inputs()
    with pytest.raises(UserError, match="already spiking"):
        convert_model(build_model("dl-vgg9", width=0.125, timesteps=2), [x], timesteps=4)
    with pytest.raises(UserError, match="unknown normalization mode"):
        convert_model(ann, [x], timesteps=4, mode="neuron")
    with pytest.raises(UserError, match="percentile"):
        convert_model(ann, [x], timesteps=4, percentile=0)
    with pytest.raises(UserError, match="calibration data"):
        convert_model(ann, [], timesteps=4)


def write_ann_checkpoint(path, *, dataset="synthetic-images", timesteps=4):
    in_channels = 2 if dataset == "synthetic-events" else 3
    model = ann_twin("dl-vgg9", in_channels=in_channels)
    config = TrainConfig(arch="dl-vgg9", width_mult=0.125, timesteps=timesteps, dataset=dataset, encoding="direct",
                         height=16, width=16, train_samples=8, val_samples=4, epochs=1, batch_size=4)
    save_checkpoint(path, model, data={"dataset": dataset, "encoding": "direct", "height": 16, "width": 16},
                    train_config=config.to_dict(), epoch=1, step_in_epoch=0)
    return model


def test_convert_checkpoint_writes_a_loadable_snn(tmp_path):
    write_ann_checkpoint(tmp_path / "ann.pt")
    summary = convert_checkpoint(tmp_path / "ann.pt", tmp_path / "snn.pt", timesteps=6, samples=8, batch_size=4)
    snn, ckpt = model_from_checkpoint(tmp_path / "snn.pt")
    assert snn.spiking and snn.timesteps == 6 and snn.lif.leak == 1.0
    assert ckpt["train_config"]["timesteps"] == 6 and ckpt["data"]["encoding"] == "direct"
    assert ckpt["conversion"]["mode"] == "layer" and summary["calibration_samples"] == 8
    assert summary["input_scale"] == 1.0
    assert 0 <= evaluate_checkpoint(tmp_path / "snn.pt", samples=4, batch_size=4)["miou"] <= 1
    with pytest.raises(UserError, match="conversion takes an ANN-twin checkpoint"):
        convert_checkpoint(tmp_path / "snn.pt", tmp_path / "again.pt", timesteps=6, samples=4)


def test_event_input_scale_is_the_ann_to_snn_input_ratio(tmp_path):
    # synthetic events bin a fixed time window into T frames: the ANN twin reads the sum
    # over the window, the SNN one frame per step, i.e. about 1/T of it
    write_ann_checkpoint(tmp_path / "ann.pt", dataset="synthetic-events", timesteps=4)
    summary = convert_checkpoint(tmp_path / "ann.pt", tmp_path / "snn.pt", timesteps=8, samples=4, batch_size=4)
    assert summary["input_scale"] == pytest.approx(8, rel=0.25)
    assert load_checkpoint(tmp_path / "snn.pt")["data"]["encoding"] == "events"


def test_cli_convert(tmp_path):
    import edge_snn.cli.convert_cmds  # noqa: F401 - registers the command

    write_ann_checkpoint(tmp_path / "ann.pt")
    args = ["convert", str(tmp_path / "ann.pt"), "-o", str(tmp_path / "snn.pt"), "--timesteps", "4", "--samples", "4",
            "--mode", "channel", "--percentile", "99.9"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "channel-wise" in result.output and load_checkpoint(tmp_path / "snn.pt")["conversion"]["percentile"] == 99.9
    result = CliRunner().invoke(app, args[:-2] + ["--percentile", "101"])
    assert result.exit_code == 2 and "percentile must be in (0, 100]" in result.output
