"""Overlay videos: MP4 through imageio-ffmpeg, GIF through Pillow; files appear whole or not at all."""

from __future__ import annotations

import numpy as np
import pytest

from edge_snn.errors import UserError
from edge_snn.runtime import video
from edge_snn.runtime.video import VideoWriter


def _frames(n=5, shape=(37, 50)):
    return [np.full((*shape, 3), 40 * k, dtype=np.uint8) for k in range(n)]


def test_mp4_has_every_frame_padded_to_a_macroblock(tmp_path):
    import imageio_ffmpeg

    writer = VideoWriter(tmp_path / "v", fmt="mp4")
    for frame in _frames():
        writer.add(frame)
    assert not (tmp_path / "v.mp4").exists()  # only the temp file until close
    path = writer.close()
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    frames = [np.frombuffer(f, np.uint8).reshape(meta["size"][1], meta["size"][0], 3) for f in reader]
    assert len(frames) == 5 and meta["size"] == (64, 48)
    assert abs(int(frames[3][10, 10, 0]) - 120) < 6  # H.264 is lossy, but not by much on flat frames


def test_gif_fallback_and_auto_choice(tmp_path, monkeypatch):
    from PIL import Image

    writer = VideoWriter(tmp_path / "g", fmt="gif", fps=5)
    for frame in _frames(3):
        writer.add(frame)
    with Image.open(writer.close()) as gif:
        assert gif.n_frames == 3 and gif.info["duration"] == 200
    monkeypatch.setattr(video, "mp4_available", lambda: False)
    assert video.choose_format("auto") == "gif"
    with pytest.raises(UserError, match="edge-snn\\[events\\]"):
        video.choose_format("mp4")
    with pytest.raises(ValueError, match="differs"):
        w = VideoWriter(tmp_path / "x", fmt="gif")
        w.add(_frames(1)[0])
        w.add(np.zeros((10, 10, 3), np.uint8))


def test_abort_leaves_nothing(tmp_path):
    writer = VideoWriter(tmp_path / "a", fmt="mp4")
    writer.add(_frames(1)[0])
    writer.abort()
    assert list(tmp_path.iterdir()) == []
