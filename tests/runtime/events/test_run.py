"""``edge-snn run MODEL --input RECORDING``: masks, overlays, run.json and a video per recording, without torch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dsec_fixtures import write_npz_events
from edge_snn.errors import UserError
from edge_snn.runtime.events.run import run_recording
from torch_blocking import run_blocked


def _cli(model, recording, out, *extra):
    return f"""
        import sys
        sys.argv = ["edge-snn", "run", {str(model)!r}, "--input", {str(recording)!r}, "-o", {str(out)!r},
                    "--window-ms", "50", "--quiet", *{list(extra)!r}]
        from edge_snn.cli import main
        try:
            main()
        except SystemExit as e:
            print("exit", e.code)
        assert "torch" not in sys.modules
        print("torch-free")
    """


@pytest.mark.parametrize("kind", ["h5", "npz"])
def test_a_400ms_recording_in_50ms_windows_gives_8_masks_a_video_and_run_json(event_models, recordings, tmp_path,
                                                                              kind):
    out = tmp_path / "out"
    result = run_blocked(_cli(event_models["fresh"], recordings[kind], out), tmp_path)
    assert result.returncode == 0 and "torch-free" in result.stdout, result.stderr[-2000:]
    assert "exit 0" in result.stdout or "exit" not in result.stdout, result.stdout
    assert sorted(p.name for p in out.glob("*.mask.png")) == [f"window_{k:04d}.mask.png" for k in range(8)]
    assert len(list(out.glob("*.overlay.png"))) == 8
    summary = json.loads((out / "run.json").read_text())
    assert summary["windows"] == 8 and summary["window_ms"] == 50 and summary["video"].endswith("overlay.mp4")
    rows = summary["per_window"]
    x, y, t, p = recordings["events"]
    assert [r["start_s"] for r in rows] == pytest.approx([k * 0.05 for k in range(8)])
    assert [r["t_end_us"] - r["t_start_us"] for r in rows] == [50_000] * 8
    assert [r["events"] for r in rows] == [int(((t >= 50_000 * k) & (t < 50_000 * (k + 1))).sum()) for k in range(8)]
    assert all(r["latency_ms"] > 0 and r["calls"] == 1 for r in rows)
    assert summary["binning"]["sensor"] == [480, 640] and summary["binning"]["resize"] == [24, 32]
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(summary["video"])
    meta = next(reader)
    assert sum(1 for _ in reader) == 8 and meta["size"][0] >= 512  # upscaled panels plus the legend


def test_runs_match_between_formats_and_the_video_falls_back_to_gif(event_models, recordings, tmp_path):
    a = run_recording(event_models["fresh"], recordings["h5"], tmp_path / "a", progress=False, video="gif")
    b = run_recording(event_models["fresh"], recordings["npz"], tmp_path / "b", progress=False, video="none")
    assert a["video"].endswith(".gif") and b["video"] is None
    assert [r["class_pixels"] for r in a["per_window"]] == [r["class_pixels"] for r in b["per_window"]]
    from PIL import Image

    with Image.open(a["video"]) as gif:
        assert gif.n_frames == 8


def test_start_and_duration_select_windows(event_models, recordings, tmp_path):
    s = run_recording(event_models["fresh"], recordings["npz"], tmp_path / "o", start_s=0.1, duration_s=0.12,
                      progress=False, video="none")
    assert s["windows"] == 3 and [r["partial"] for r in s["per_window"]] == [False, False, True]
    assert s["per_window"][0]["t_start_us"] == 100_000


def test_carry_state_streams_across_windows_and_needs_bn_beyond(event_models, recordings, tmp_path):
    with pytest.raises(UserError, match="--bn-beyond last"):
        run_recording(event_models["fresh"], recordings["npz"], tmp_path / "x", carry_state=True, progress=False)
    fresh = run_recording(event_models["carry"], recordings["npz"], tmp_path / "f", progress=False, video="none")
    carried = run_recording(event_models["carry"], recordings["npz"], tmp_path / "c", carry_state=True,
                            progress=False, video="none")
    assert carried["carry_state"] and carried["windows"] == 8
    # window 0 starts from a fresh state either way; later windows see the streamed membrane
    assert carried["per_window"][0]["class_pixels"] == fresh["per_window"][0]["class_pixels"]
    assert any(a["class_pixels"] != b["class_pixels"]
               for a, b in zip(carried["per_window"][1:], fresh["per_window"][1:]))


def test_another_sensor_is_one_clear_error_or_fitted_by_crop_and_resize(event_models, recordings, tmp_path):
    x, y, t, p = recordings["events"]
    big = write_npz_events(tmp_path / "big.npz", x + 40, y + 20, t, p, sensor_size=(720, 1280))
    result = run_blocked(_cli(event_models["fresh"], big, tmp_path / "o"), tmp_path)
    assert "exit 2" in result.stdout and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "720x1280" in lines[0] and "--crop" in lines[0] and "--resize" in lines[0]
    cropped = run_recording(event_models["fresh"], big, tmp_path / "c", crop=(20, 40), progress=False, video="none")
    plain = run_recording(event_models["fresh"], recordings["npz"], tmp_path / "p", progress=False, video="none")
    assert [r["class_pixels"] for r in cropped["per_window"]] == [r["class_pixels"] for r in plain["per_window"]]
    resized = run_recording(event_models["fresh"], big, tmp_path / "r", resize=True, progress=False, video="none")
    assert resized["sensor"]["fit"]["mode"] == "resize" and resized["windows"] == 8
    unknown = write_npz_events(tmp_path / "unknown.npz", x + 40, y, t, p)  # no sensor_size: checked per event
    with pytest.raises(UserError, match="outside the 480x640 sensor"):
        run_recording(event_models["fresh"], unknown, tmp_path / "u", progress=False, video="none")


def test_models_without_binning_or_for_images_are_refused(small_checkpoint, small_image_checkpoint, recordings,
                                                         tmp_path):
    from edge_snn.export.exporter import ExportOptions, export_checkpoint

    old = tmp_path / "old.onnx"
    export_checkpoint(small_checkpoint[0], old, ExportOptions(timesteps=3))
    with pytest.raises(UserError, match="does not record how its event frames were binned"):
        run_recording(old, recordings["npz"], tmp_path / "o", progress=False)
    image = tmp_path / "image.onnx"
    export_checkpoint(small_image_checkpoint[0], image, ExportOptions(timesteps=2))
    with pytest.raises(UserError, match="not events"):
        run_recording(image, recordings["npz"], tmp_path / "o", progress=False)


def test_frames_npy_still_take_the_frame_path(small_checkpoint, tmp_path):
    from edge_snn.export.exporter import ExportOptions, export_checkpoint
    from edge_snn.runtime.events.readers import is_recording

    frames = tmp_path / "scene.npy"
    np.save(frames, np.zeros((6, 2, 24, 32), np.float32))
    events = tmp_path / "events.npy"
    np.save(events, np.zeros(3, dtype=[("x", "<u2"), ("y", "<u2"), ("t", "<i8"), ("p", "i1")]))
    assert not is_recording(frames) and is_recording(events) and not is_recording(tmp_path)
    model = tmp_path / "m.onnx"
    export_checkpoint(small_checkpoint[0], model, ExportOptions(timesteps=3))
    from typer.testing import CliRunner

    from edge_snn.cli import app

    result = CliRunner().invoke(app, ["run", str(model), "--input", str(frames), "-o", str(tmp_path / "o"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "scene.mask.png").is_file()
