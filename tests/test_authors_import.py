"""Importing the authors' SNN-Segmentation checkpoints (edge_snn.authors).

The reference is a test oracle written here from the equations of the
authors' ``SNN_VGG("dl-vgg9")`` forward, keeping their module layout
(``features``, ``bn_features[K][t]``, ``classifier``, ``bn_classifier``) so
its ``state_dict`` has their key names. A checkpoint in their format
(``{"config", "state_dict", "epoch", "max_miou"}``) is made from it with
random weights and BN statistics, imported, and run on the same spikes.
"""

from __future__ import annotations

import torch

import pytest

from edge_snn.authors import authors_key, import_authors_checkpoint, write_imported_checkpoint
from edge_snn.errors import UserError
from edge_snn.runtime.files import file_sha256
from edge_snn.training.checkpoint import model_from_checkpoint

from authors_fixtures import SIZE, T, authors_checkpoint

BATCH = 2


@pytest.fixture(scope="module")
def ddd17():
    return authors_checkpoint("ddd17", 2, 6, leak=0.99, threshold=1.0, seed=1)


@pytest.fixture(scope="module")
def voc():
    return authors_checkpoint("voc2012", 3, 21, leak=0.95, threshold=0.5, seed=2)


def _spikes(channels: int, seed: int) -> torch.Tensor:
    """Signed rate-coded input ``[T, B, C, H, W]`` in {-1, 0, 1}."""
    g = torch.Generator().manual_seed(seed)
    fire = torch.rand(T, BATCH, channels, SIZE, SIZE, generator=g) < 0.4
    sign = torch.where(torch.rand(T, BATCH, channels, SIZE, SIZE, generator=g) < 0.5, -1.0, 1.0)
    return fire * sign


def _save(tmp_path, ckpt, name="authors.pth"):
    path = tmp_path / name
    torch.save(ckpt, path)
    return path


def _assert_equal_runs(model, oracle, ours_in, theirs_in):
    expected, expected_counts = oracle(theirs_in)
    with torch.no_grad():
        result = model.run(ours_in)
    counts = [result.spike_counts[name].item() for name in model.spiking_layers]
    assert all(0 < c for c in expected_counts), "every layer should fire, or the test proves little"
    assert counts == expected_counts
    torch.testing.assert_close(result.logits, expected, rtol=0, atol=1e-5)


def test_key_table_covers_their_layout(ddd17):
    from edge_snn.models import build_model

    oracle, _ = ddd17
    ours = build_model("dl-vgg9", in_channels=2, num_classes=6, timesteps=T)
    assert sorted(authors_key(k) for k in ours.state_dict()) == sorted(oracle.state_dict())
    assert authors_key("convs.conv8.weight") == "classifier.0.weight"
    assert authors_key("norms.conv3.steps.2.running_var") == "bn_features.2.2.running_var"
    assert authors_key("classifier.weight") == "classifier.1.weight"


def test_imported_model_equals_authors_forward_on_same_spikes(tmp_path, ddd17):
    oracle, ckpt = ddd17
    model, info = import_authors_checkpoint(_save(tmp_path, ckpt))
    assert (model.in_channels, model.num_classes, model.timesteps) == (2, 6, T)
    assert (model.lif.leak, model.lif.threshold) == (0.99, 1.0)
    assert info["source"]["input_channels"] == "as-saved"  # events: no channel reordering
    assert info["data"] == {"dataset": "ddd17", "encoding": "poisson", "height": SIZE, "width": SIZE,
                            "class_names": [f"class{i}" for i in range(6)], "frames": "repeat"}
    x = _spikes(2, seed=10)
    _assert_equal_runs(model, oracle, x, x)


def test_voc_checkpoint_reads_rgb_by_default_and_bgr_as_saved(tmp_path, voc):
    oracle, ckpt = voc
    path = _save(tmp_path, ckpt)
    x = _spikes(3, seed=11)
    model, info = import_authors_checkpoint(path)
    assert info["source"]["input_channels"] == "bgr->rgb"
    assert (model.lif.leak, model.lif.threshold) == (0.95, 0.5)
    _assert_equal_runs(model, oracle, x, x.flip(2))  # their conv1 reads B, G, R
    as_saved, _ = import_authors_checkpoint(path, channel_order="as-saved")
    _assert_equal_runs(as_saved, oracle, x, x)


def test_written_checkpoint_loads_as_edge_snn_checkpoint(tmp_path, ddd17):
    oracle, ckpt = ddd17
    src, out = _save(tmp_path, ckpt), tmp_path / "imported.pt"
    write_imported_checkpoint(src, out)
    model, saved = model_from_checkpoint(out)
    assert saved["source"]["kind"] == "authors-snn-segmentation"
    assert saved["source"]["sha256"] == file_sha256(src)
    assert saved["epoch"] == 50 and saved["metrics"] == {}
    assert saved["data"]["dataset"] == "ddd17" and saved["model"]["arch"] == "dl-vgg9"
    x = _spikes(2, seed=12)
    _assert_equal_runs(model, oracle, x, x)


def test_cli_import_checkpoint(tmp_path, ddd17):
    import typer
    from typer.testing import CliRunner

    import edge_snn.cli.import_cmds  # noqa: F401  registers the command
    from edge_snn.cli import app

    # typer runs a lone registered command without its name; with the others it is a subcommand.
    name = ["import-checkpoint"] if hasattr(typer.main.get_command(app), "commands") else []
    src, out = _save(tmp_path, ddd17[1]), tmp_path / "imported.pt"
    result = CliRunner().invoke(app, [*name, str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "dl-vgg9" in result.output
    bad = _save(tmp_path, {"config": {}, "state_dict": {}}, "bad.pth")
    result = CliRunner().invoke(app, [*name, str(bad), "-o", str(tmp_path / "x.pt")])
    assert result.exit_code == 2 and "architecture" in result.output
    assert not (tmp_path / "x.pt").exists()


# --- refusals ---------------------------------------------------------------
def _with(ckpt, *, config=None, state=None):
    return {**ckpt, "config": {**ckpt["config"], **(config or {})}, "state_dict": state if state is not None else ckpt["state_dict"]}


@pytest.mark.parametrize("config, words", [
    ({"architecture": "fcn-vgg9"}, "'fcn-vgg9'"),
    ({"architecture": "dl-vgg16"}, "'dl-vgg16'"),
    ({"model_type": "ann"}, "'ann'"),
    ({"bn": False}, "bn=False"),
    ({"full_prop": True}, "full_prop=True"),
    ({"timesteps": 0}, "timesteps"),
    ({"dataset": {"name": "mine"}}, "dataset.num_cls"),
])
def test_refuses_configs_it_cannot_reproduce(tmp_path, ddd17, config, words):
    ckpt = {"config": {**ddd17[1]["config"], **config}, "state_dict": {}}
    with pytest.raises(UserError, match=words):
        import_authors_checkpoint(_save(tmp_path, ckpt))


def test_refuses_file_without_config(tmp_path):
    with pytest.raises(UserError, match="'state_dict' and 'config'"):
        import_authors_checkpoint(_save(tmp_path, {"state_dict": {}}))


def test_names_a_missing_key(tmp_path, ddd17):
    state = dict(ddd17[1]["state_dict"])
    del state["bn_features.3.2.running_var"]
    with pytest.raises(UserError, match=r"lacks 1 key.*bn_features\.3\.2\.running_var"):
        import_authors_checkpoint(_save(tmp_path, _with(ddd17[1], state=state)))


def test_names_an_unused_key(tmp_path, ddd17):
    state = {**ddd17[1]["state_dict"], "bn_features.0.0.bias": torch.zeros(64)}
    with pytest.raises(UserError, match=r"bn_features\.0\.0\.bias"):
        import_authors_checkpoint(_save(tmp_path, _with(ddd17[1], state=state)))


def test_more_bn_sets_than_timesteps_is_refused(tmp_path, ddd17):
    with pytest.raises(UserError, match=r"32 state_dict key\(s\) have no place.*bn_classifier\.0\.2\."):
        import_authors_checkpoint(_save(tmp_path, _with(ddd17[1], config={"timesteps": T - 1})))


def test_names_a_shape_mismatch(tmp_path, ddd17):
    state = {**ddd17[1]["state_dict"], "classifier.1.weight": torch.zeros(7, 1024, 1, 1)}
    with pytest.raises(UserError, match=r"classifier\.1\.weight.*\(7, 1024, 1, 1\).*\(6, 1024, 1, 1\)"):
        import_authors_checkpoint(_save(tmp_path, _with(ddd17[1], state=state)))


class _RunsCode:
    """Unpickling this calls exec(): it would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def test_refuses_pickled_code_without_running_it(tmp_path):
    marker = tmp_path / "side_effect"
    path = _save(tmp_path, {"config": _RunsCode(marker), "state_dict": {}})
    with pytest.raises(UserError, match="refusing to load"):
        import_authors_checkpoint(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the payload is live: an unsafe load runs it
    assert marker.read_text() == "pwned"
