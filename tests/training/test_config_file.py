"""Config files: the shipped experiment configs, key and type checking, command-line precedence."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_snn.cli import app
from edge_snn.errors import UserError
from edge_snn.training.config import TrainConfig
from edge_snn.training.config_file import load_config_file, merge

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PAPER = dict(timesteps=20, leak=0.99, threshold=1.0, optimizer="sgd", lr=1e-3, momentum=0.9, weight_decay=5e-4,
             epochs=60, batch_size=16, milestones=(0.5, 0.8))


@pytest.mark.parametrize("name, arch, dataset, size", [
    ("ddd17_deeplab", "dl-vgg9", "ddd17", (200, 346)),
    ("ddd17_fcn", "fcn-vgg9", "ddd17", (200, 346)),
    ("voc_deeplab", "dl-vgg9", "voc2012-aug", (64, 64)),
    ("voc_fcn", "fcn-vgg9", "voc2012-aug", (64, 64)),
])
def test_paper_configs_hold_the_paper_setup(name, arch, dataset, size):
    config = merge(load_config_file(CONFIGS / f"{name}.toml"), {})
    assert (config.arch, config.dataset, (config.height, config.width), config.width_mult) == (arch, dataset, size, 1.0)
    assert {k: getattr(config, k) for k in PAPER} == PAPER


def test_demo_config_file_is_the_demos_config():
    from edge_snn.demo import DEMO_CONFIG

    assert merge(load_config_file(CONFIGS / "synthetic_demo.toml"), {}) == DEMO_CONFIG


def write(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_unknown_key_is_named_with_the_valid_ones(tmp_path):
    with pytest.raises(UserError, match=r"unknown key 'time_steps'; valid keys are: arch, width_mult, timesteps"):
        load_config_file(write(tmp_path, "time_steps = 20\n"))


@pytest.mark.parametrize("line, message", [
    ('timesteps = "20"', "timesteps must be an integer"),
    ("epochs = 1.5", "epochs must be an integer"),
    ("batch_size = true", "batch_size must be an integer"),
    ('lr = "fast"', "lr must be a number"),
    ("arch = 9", "arch must be a string"),
    ('milestones = ["a"]', "milestones must be a list of numbers"),
    ("[train]\nlr = 0.1", r"\[train\] is a table"),
])
def test_wrong_types_are_refused(tmp_path, line, message):
    with pytest.raises(UserError, match=message):
        load_config_file(write(tmp_path, line + "\n"))


def test_values_are_coerced_to_field_types(tmp_path):
    values = load_config_file(write(tmp_path, "lr = 1\nmilestones = [0.25, 1]\n"))
    assert values == {"lr": 1.0, "milestones": (0.25, 1.0)} and isinstance(values["lr"], float)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_config_file(tmp_path / "nope.toml")
    with pytest.raises(UserError, match="not valid TOML"):
        load_config_file(write(tmp_path, "lr = = 1\n"))


def test_only_explicit_command_line_values_override():
    config = merge({"epochs": 7, "lr": 0.5, "arch": "fcn-vgg9"}, {"epochs": 3, "lr": None, "seed": None})
    assert (config.epochs, config.lr, config.arch, config.seed) == (3, 0.5, "fcn-vgg9", TrainConfig().seed)
    assert merge({}, {"epochs": None}) == TrainConfig()


def test_cli_train_reads_the_file_and_lets_options_win(tmp_path, monkeypatch):
    seen = {}

    def fake_train(config, out, **kwargs):
        seen["config"] = config
        return {}

    monkeypatch.setattr("edge_snn.training.trainer.train", fake_train)
    path = write(tmp_path, 'arch = "fcn-vgg9"\nepochs = 7\nheight = 32\nmomentum = 0.5\n')
    result = CliRunner().invoke(app, ["train", "--config", str(path), "--epochs", "2", "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert (config.arch, config.epochs, config.height, config.momentum, config.width) == ("fcn-vgg9", 2, 32, 0.5, 64)

    result = CliRunner().invoke(app, ["train", "-o", str(tmp_path / "run")])  # no file: the defaults, as before
    assert result.exit_code == 0 and seen["config"] == TrainConfig()

    result = CliRunner().invoke(app, ["train", "--config", str(write(tmp_path, "epoch = 3\n"))])
    assert result.exit_code == 2 and "unknown key 'epoch'" in result.output
