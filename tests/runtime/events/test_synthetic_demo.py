"""The demo's "recording segmented into a video": a synthetic recording, run like any other, scored."""

from __future__ import annotations

import json

import pytest

from torch_blocking import run_blocked


@pytest.fixture(scope="module")
def synthetic_model(tmp_path_factory):
    from event_model_fixtures import write_event_checkpoint

    from edge_snn.data.synthetic import SceneConfig, synthetic_binning
    from edge_snn.export.exporter import ExportOptions, export_checkpoint

    folder = tmp_path_factory.mktemp("synthetic_model")
    spec = synthetic_binning(SceneConfig(height=32, width=40, timesteps=4))
    export_checkpoint(write_event_checkpoint(folder / "m.pt", spec), folder / "m.onnx", ExportOptions(timesteps=4))
    return folder / "m.onnx"


def test_segment_synthetic_recording_writes_a_scored_video_without_torch(synthetic_model, tmp_path):
    out = tmp_path / "video"
    result = run_blocked(f"""
        import json, sys
        from edge_snn.runtime.events.synthetic_demo import segment_synthetic_recording
        s = segment_synthetic_recording({str(synthetic_model)!r}, {str(out)!r}, windows=6)
        assert "torch" not in sys.modules
        print(json.dumps({{"windows": s["windows"], "video": s["video"], "scores": s["scores"]}}))
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["windows"] == 6 and found["video"].endswith("overlay.mp4")
    assert len(found["scores"]["pixel_accuracy_per_window"]) == 6 and 0 <= found["scores"]["miou"] <= 1
    assert (out / "recording.npz").is_file() and len(list(out.glob("*.mask.png"))) == 6
    assert json.loads((out / "scores.json").read_text()) == found["scores"]


def test_recording_windows_carry_the_scenes_motion():
    """Consecutive windows of one scene: events in each, the labels move with the objects."""
    import numpy as np

    from edge_snn.data.synthetic import SceneConfig, render_recording, synthetic_binning

    config = SceneConfig(height=32, width=40, timesteps=4, seed=0)
    events, labels = render_recording(1, config, windows=5)
    window = synthetic_binning(config).window_us
    assert labels.shape == (5, 32, 40) and events.t.min() >= 0 and events.t.max() < 5 * window
    per_window = np.bincount(events.t // window, minlength=5)
    assert (per_window > 0).all()
    assert any(not np.array_equal(labels[k], labels[k + 1]) for k in range(4))


def test_a_model_of_other_data_is_refused(event_models, tmp_path):
    from edge_snn.errors import UserError
    from edge_snn.runtime.events.synthetic_demo import segment_synthetic_recording

    with pytest.raises(UserError, match="not trained on the built-in synthetic events"):
        segment_synthetic_recording(event_models["fresh"], tmp_path / "o")
