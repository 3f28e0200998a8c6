"""Peak memory of a recording run is flat in the recording's length (a resource check, not a timing one).

Each run is measured in a fresh subprocess (peak RSS: ``VmHWM`` of
``/proc/self/status``, which starts anew at exec; ``getrusage``'s ``ru_maxrss``
would inherit the pytest parent's peak), with
torch blocked as on the drone: a recording 10x longer must peak within 10% of
the short one. The long one holds 8 M events (72 MB even in the files' narrow dtypes,
256 MB as int64 columns): read whole, it would add far more than 10% to the
run's footprint of about 120 MB.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from dsec_fixtures import write_dsec_events, write_npz_events
from torch_blocking import run_blocked

RATE_PER_MS = 2_000  # 100 k events per 50 ms window


def _write(kind, path, duration_us):
    rng = np.random.default_rng(0)
    n = duration_us // 1000 * RATE_PER_MS
    t = np.sort(rng.integers(0, duration_us, n))
    x, y, p = rng.integers(0, 640, n), rng.integers(0, 480, n), rng.integers(0, 2, n)
    if kind == "h5":
        return write_dsec_events(path, x, y, t, p)
    return write_npz_events(path, x, y, t, p, sensor_size=(480, 640))


def _peak_rss_mb(model, recording, out, cwd) -> tuple[float, int]:
    result = run_blocked(f"""
        import json
        from edge_snn.runtime.events.run import run_recording
        summary = run_recording({str(model)!r}, {str(recording)!r}, {str(out)!r}, progress=False, video="mp4")
        status = open("/proc/self/status").read().split("VmHWM:")[1].split()
        print(json.dumps({{"rss_mb": int(status[0]) / 1024, "windows": summary["windows"]}}))
    """, cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    return found["rss_mb"], found["windows"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM from /proc (Linux)")
@pytest.mark.parametrize("kind", ["h5", "npz"])
def test_ten_times_longer_recording_peaks_at_the_same_memory(event_models, tmp_path, kind):
    short = _write(kind, tmp_path / f"short.{kind}", 400_000)
    long = _write(kind, tmp_path / f"long.{kind}", 4_000_000)
    short_mb, short_windows = _peak_rss_mb(event_models["fresh"], short, tmp_path / "s", tmp_path)
    long_mb, long_windows = _peak_rss_mb(event_models["fresh"], long, tmp_path / "l", tmp_path)
    assert (short_windows, long_windows) == (8, 80)
    decoded_mb = 4_000 * RATE_PER_MS * 9 / 2**20  # x, y uint16, t uint32, p uint8
    allowance = 0.10  # the long run may peak this much above the short one
    # Read whole, the long recording would add at least its decoded columns: for the check to mean
    # something they must be well above the allowance (2x margin), whatever this machine's baseline.
    assert decoded_mb > 2 * allowance * short_mb, "the long recording must be big enough for the check to mean something"
    print(f"{kind}: peak RSS short {short_mb:.1f} MB, long {long_mb:.1f} MB (events {decoded_mb:.0f} MB decoded, "
          f"file {long.stat().st_size / 2**20:.0f} MB)")
    assert long_mb <= (1 + allowance) * short_mb, (short_mb, long_mb)
