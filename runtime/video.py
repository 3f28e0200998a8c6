"""Write a sequence of RGB frames as a video: MP4 through imageio-ffmpeg, or GIF through Pillow.

MP4 (H.264, yuv420p) streams each frame to an ffmpeg process as it comes, so
memory stays flat however long the recording; imageio-ffmpeg ships an ffmpeg
binary in its wheels (x86-64 and aarch64) and is part of the ``events``
extra. GIF is the dependency-free fallback (Pillow only): it holds the
frames, palette-quantized (one byte a pixel), until :meth:`VideoWriter.close`,
so it suits short clips. Either way the file appears atomically at close.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime.files import commit_temp, reserve_temp, write_bytes_atomic

FORMATS = ("auto", "mp4", "gif", "none")


def mp4_available() -> bool:
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


def choose_format(requested: str = "auto") -> str:
    """``mp4`` when imageio-ffmpeg is installed (for ``auto``), else ``gif``; ``mp4`` without it is an error."""
    if requested not in FORMATS:
        raise UserError(f"unknown video format {requested!r}; choose one of {', '.join(FORMATS)}")
    if requested == "auto":
        return "mp4" if mp4_available() else "gif"
    if requested == "mp4" and not mp4_available():
        raise UserError("MP4 video needs imageio-ffmpeg, which is not installed: pip install 'edge-snn[events]' "
                        "(or pass --video gif)")
    return requested


class VideoWriter:
    """``add(frame)`` uint8 ``[H, W, 3]`` frames of one size, then ``close()``; ``path`` is ``stem`` + the suffix.

    fps: frames per second of playback (default 10: a 50 ms window plays at half speed).
    """

    def __init__(self, stem: str | os.PathLike, *, fps: float = 10.0, fmt: str = "auto"):
        self.format = choose_format(fmt)
        if self.format == "none":
            raise UserError("VideoWriter needs a format other than none")
        self.path = Path(f"{stem}.{self.format}")
        self.fps = float(fps)
        self.frames = 0
        self._size: tuple[int, int] | None = None
        self._gif: list = []
        self._ffmpeg = None
        self._tmp: str | None = None

    def add(self, frame: np.ndarray) -> None:
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"video frames are [H, W, 3] uint8, got {frame.shape}")
        if self._size is None:
            self._size = frame.shape[:2]
            if self.format == "mp4":
                self._start_mp4()
        elif frame.shape[:2] != self._size:
            raise ValueError(f"video frame {frame.shape[:2]} differs from the first frame {self._size}")
        if self.format == "mp4":
            self._ffmpeg.send(self._pad16(frame).tobytes())
        else:
            from PIL import Image

            self._gif.append(Image.fromarray(frame).quantize(colors=255, method=Image.Quantize.MEDIANCUT))
        self.frames += 1

    @staticmethod
    def _pad16(frame: np.ndarray) -> np.ndarray:
        """H.264 in yuv420p wants sizes in multiples of 16 here: pad white rather than rescale."""
        h, w = frame.shape[:2]
        return np.pad(frame, ((0, -h % 16), (0, -w % 16), (0, 0)), constant_values=255)

    def _start_mp4(self) -> None:
        import imageio_ffmpeg

        self._tmp = reserve_temp(self.path)
        h, w = self._size
        self._ffmpeg = imageio_ffmpeg.write_frames(str(self._tmp), (w + -w % 16, h + -h % 16), fps=self.fps,
                                                   codec="libx264", pix_fmt_out="yuv420p", macro_block_size=16,
                                                   output_params=["-y", "-f", "mp4"])  # the temp name ends in .tmp
        self._ffmpeg.send(None)  # start the generator

    def close(self) -> Path | None:
        """Finish the file; returns its path (None if no frame was added)."""
        if self.frames == 0:
            return None
        if self.format == "mp4":
            self._ffmpeg.close()
            commit_temp(self._tmp, self.path)
        else:
            buffer = io.BytesIO()
            first, *rest = self._gif
            first.save(buffer, format="GIF", save_all=True, append_images=rest, duration=int(1000 / self.fps), loop=0)
            write_bytes_atomic(self.path, buffer.getvalue())
            self._gif = []
        return self.path

    def abort(self) -> None:
        """Drop a half-written video (an error mid-run): nothing partial is left behind."""
        if self._ffmpeg is not None:
            try:
                self._ffmpeg.close()
            except Exception:  # noqa: BLE001 - ffmpeg may already have died; the temp file goes either way
                pass
        if self._tmp:
            Path(self._tmp).unlink(missing_ok=True)
        self._gif = []
