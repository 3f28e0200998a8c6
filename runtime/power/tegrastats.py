"""Rail powers from ``tegrastats``, the fallback where the INA3221 sysfs files cannot be read.

``tegrastats --interval MS`` prints one line per interval; the rails come last,
each as ``NAME current/average``, in milliwatts, where *average* runs since
tegrastats started (so only *current* is used here). Orin examples:

    AGX Orin:  ... VDD_GPU_SOC 2386mW/2386mW VDD_CPU_CV 397mW/397mW VIN_SYS_5V0 2820mW/2820mW
    Orin NX:   ... VDD_IN 5012mW/5012mW VDD_CPU_GPU_CV 1234mW/1234mW VDD_SOC 1440mW/1440mW

JetPack 6 prefixes a date and time; older L4T prints the numbers without ``mW``.
RAM, SWAP, CPU, GR3D_FREQ and temperature fields precede the rails; their values
never have the ``<int>/<int>`` shape with nothing glued to the second number,
which is how rails are told apart from them (``RAM 3000/7620MB`` is not a rail).

The stream is coarser than sysfs (tegrastats itself polls the same sensors) and
each line is time-stamped here, on arrival, with ``time.perf_counter``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

_RAIL = re.compile(r"(?<![\w@])([A-Za-z][A-Za-z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?![\w%/])")

#: Default line interval: tegrastats costs a few ms of CPU per line, so not much faster than this.
DEFAULT_INTERVAL_MS = 100


def parse_tegrastats_line(line: str) -> dict[str, tuple[float, float]]:
    """``{rail: (current mW, average mW)}`` from one tegrastats line; empty when it has no rails."""
    return {name: (float(cur), float(avg)) for name, cur, avg in _RAIL.findall(line)}


def rail_watts(line: str) -> dict[str, float]:
    """``{rail: current W}`` from one tegrastats line."""
    return {name: cur / 1e3 for name, (cur, _avg) in parse_tegrastats_line(line).items()}


def find_tegrastats(executable: str = "tegrastats") -> str | None:
    """Path of the tegrastats binary, None where there is none."""
    return shutil.which(executable)


class TegrastatsStream:
    """Runs ``tegrastats --interval MS`` and keeps ``(perf_counter time, {rail: W})`` per line.

    ``start()`` launches the process and a reader thread; ``stop()`` ends both.
    Samples are appended in arrival order; read them with ``samples()`` (a copy).
    """

    def __init__(self, executable: str | Path, interval_ms: int = DEFAULT_INTERVAL_MS):
        self.executable = str(executable)
        self.interval_ms = int(interval_ms)
        self._samples: list[tuple[float, dict[str, float]]] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        command = [self.executable, "--interval", str(self.interval_ms)]
        # tegrastats writes through C stdio, which a pipe makes block-buffered:
        # lines would arrive in 4 KiB bursts with wrong time stamps. stdbuf -oL
        # restores one write per line where coreutils is installed.
        stdbuf = shutil.which("stdbuf")
        if stdbuf is not None:
            command = [stdbuf, "-oL", *command]
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, name="tegrastats-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            rails = rail_watts(line)
            if rails:
                with self._arrived:
                    self._samples.append((time.perf_counter(), rails))
                    self._arrived.notify_all()

    def wait_for_sample_after(self, t: float, timeout_s: float) -> bool:
        """Block until a sample stamped at or after ``t`` has arrived; False on timeout or process end."""
        deadline = time.perf_counter() + timeout_s
        with self._arrived:
            while not (self._samples and self._samples[-1][0] >= t):
                left = deadline - time.perf_counter()
                if left <= 0 or (self._reader is not None and not self._reader.is_alive()):
                    return False
                self._arrived.wait(min(left, 0.05))
            return True

    def samples(self) -> list[tuple[float, dict[str, float]]]:
        with self._lock:
            return list(self._samples)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._reader is not None:
            self._reader.join(timeout=2.0)
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()
