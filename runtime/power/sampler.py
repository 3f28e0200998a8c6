"""Measured energy of a run: sample a power sensor (or read an energy counter) across a window.

Two kinds of sensor, one interface:

* **power sources** report watts at an instant (INA3221 sysfs, tegrastats).
  They are sampled on a background thread and integrated by the trapezoid rule,

      E = sum_i (t[i+1] - t[i]) * (P[i] + P[i+1]) / 2          [J = s * W]

  which is exact for power that is linear between samples and, unlike a
  rectangle sum, does not depend on which end of an interval a sample sits.
* **energy counters** report joules directly (NVML, RAPL); energy is the counter
  difference. They are still read every second so a wrapping counter is seen.

``EnergyMeter`` owns the lifecycle: ``start()``, the work, ``stop() ->
EnergyReading``. **The measured window** is from the moment ``start()``
returns to the moment ``stop()`` is called: only what the caller runs in
between, plus the sampler thread itself (a few microseconds per sample; the
inference runtimes release the GIL while they compute). Power sources are
sampled once synchronously before the window opens and once after it closes,
and the piecewise-linear power curve is integrated over exactly the window.

``idle_watts`` (from ``measure_idle``) is the module's power with nothing
running; ``joules_above_idle = joules_total - idle_watts * seconds`` is then the
energy the work added. Where no sensor exists, ``open_best_meter`` returns a
meter whose readings say ``source="not measured"`` and carry no energy: never a
made-up number.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime.power import jetson, rapl, tegrastats
from edge_snn.runtime.power.nvml import NvmlEnergy

#: Sampling interval for sysfs power sources. Each sample reads two sysfs files
#: per rail (one I2C transfer each, well under a millisecond) and the INA3221
#: converts in about a millisecond per channel, so 10 ms resolves a single
#: inference of tens of ms while keeping the sampler's CPU share negligible.
DEFAULT_INTERVAL_S = 0.01

#: How often energy counters are read, so a counter that wraps is seen.
COUNTER_POLL_S = 1.0

#: Sensors in order of preference: on-module rails first, then coarser or narrower views.
SOURCES = ("jetson", "tegrastats", "nvml", "rapl")

NOT_MEASURED = "not measured"

PowerReading = Union[float, Mapping[str, float]]


def integrate_energy(times, watts, *, t_start: float | None = None, t_end: float | None = None) -> float:
    """Joules under the piecewise-linear power curve through ``(times [s], watts [W])``.

    The curve is held constant before the first and after the last sample; it is
    integrated from ``t_start`` to ``t_end`` (default: first and last sample) by
    the trapezoid rule, with the curve's values at the two ends interpolated.
    """
    t = np.asarray(times, dtype=np.float64)
    p = np.asarray(watts, dtype=np.float64)
    if t.ndim != 1 or t.shape != p.shape or t.size == 0:
        raise ValueError(f"need equally long 1-D times and watts, got shapes {t.shape} and {p.shape}")
    if np.any(np.diff(t) < 0):
        raise ValueError("sample times must not decrease")
    a = float(t[0]) if t_start is None else float(t_start)
    b = float(t[-1]) if t_end is None else float(t_end)
    if b < a:
        raise ValueError(f"window ends ({b}) before it starts ({a})")
    inside = (t > a) & (t < b)
    tt = np.concatenate([[a], t[inside], [b]])
    pp = np.concatenate([[np.interp(a, t, p)], p[inside], [np.interp(b, t, p)]])
    return float(np.sum(np.diff(tt) * (pp[1:] + pp[:-1]) / 2.0))


class PowerSampler:
    """Calls ``source()`` every ``interval_s`` on a thread and keeps ``(perf_counter time, watts)``.

    ``source`` returns watts, or ``{rail: watts}``; for a mapping the per-rail
    values are kept too and the total is ``total(mapping)`` (default: the sum).
    A sample whose read fails (``OSError``: an I2C hiccup) is skipped and counted
    in ``errors``. Use as a context manager or call ``start()`` / ``stop()``.
    """

    def __init__(self, source: Callable[[], PowerReading], *, interval_s: float = DEFAULT_INTERVAL_S,
                 total: Callable[[Mapping[str, float]], float] | None = None):
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.source = source
        self.interval_s = float(interval_s)
        self.total = total or (lambda rails: float(sum(rails.values())))
        self.times: list[float] = []
        self.watts: list[float] = []
        self.rails: list[dict[str, float]] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        """Take one sample now (the thread calls this; ``start``/``stop`` call it to bracket the window)."""
        try:
            reading = self.source()
        except OSError:
            self.errors += 1
            return
        now = time.perf_counter()
        if isinstance(reading, Mapping):
            self.rails.append(dict(reading))
            self.watts.append(float(self.total(reading)))
        else:
            self.watts.append(float(reading))
        self.times.append(now)

    def _run(self) -> None:
        deadline = time.perf_counter()
        while True:
            deadline += self.interval_s
            # wait until the next tick on a fixed grid, so sampling does not drift
            if self._stop.wait(max(0.0, deadline - time.perf_counter())):
                return
            self.sample()

    def start(self) -> "PowerSampler":
        if self._thread is not None:
            raise RuntimeError("PowerSampler already started")
        self.sample()
        self._thread = threading.Thread(target=self._run, name="power-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self.sample()

    def __enter__(self) -> "PowerSampler":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def energy(self, t_start: float | None = None, t_end: float | None = None) -> float:
        """Joules over ``[t_start, t_end]`` (default: first to last sample)."""
        return integrate_energy(self.times, self.watts, t_start=t_start, t_end=t_end)

    def rail_energies(self, t_start: float | None = None, t_end: float | None = None) -> dict[str, float]:
        """Joules per rail over the window; empty when the source returns plain watts."""
        if not self.rails:
            return {}
        return {name: integrate_energy(self.times, [r[name] for r in self.rails], t_start=t_start, t_end=t_end)
                for name in self.rails[0]}


def measure_idle(source: Callable[[], PowerReading], seconds: float, *, interval_s: float = DEFAULT_INTERVAL_S,
                 total: Callable[[Mapping[str, float]], float] | None = None) -> float:
    """Mean watts of ``source`` over ``seconds`` of doing nothing: energy / duration."""
    with PowerSampler(source, interval_s=interval_s, total=total) as sampler:
        time.sleep(seconds)
    return sampler.energy() / (sampler.times[-1] - sampler.times[0])


@dataclass(frozen=True)
class EnergyReading:
    """What one measured window cost. Energies are None when nothing was measured."""

    joules_total: float | None
    joules_above_idle: float | None
    seconds: float
    samples: int
    source: str
    idle_watts: float | None = None
    rails: dict[str, float] = field(default_factory=dict)  # joules per rail / counter zone

    @property
    def mean_watts(self) -> float | None:
        return None if self.joules_total is None or self.seconds <= 0 else self.joules_total / self.seconds


class EnergyMeter:
    """Lifecycle shared by every sensor: ``start()`` ... ``stop() -> EnergyReading``; ``close()`` at the end.

    Subclasses fill ``_start_impl`` and ``_stop_impl(t_start, t_end) -> (joules |
    None, samples, {rail: joules})``; the window times and the idle subtraction
    live here only. This base class itself measures nothing.
    """

    source = NOT_MEASURED

    def __init__(self) -> None:
        self.idle_watts: float | None = None
        self._t_start: float | None = None

    def _start_impl(self) -> None:
        pass

    def _stop_impl(self, t_start: float, t_end: float) -> tuple[float | None, int, dict[str, float]]:
        return None, 0, {}

    def start(self) -> None:
        if self._t_start is not None:
            raise RuntimeError("EnergyMeter.start() called twice without stop()")
        self._start_impl()
        self._t_start = time.perf_counter()

    def stop(self) -> EnergyReading:
        t_end = time.perf_counter()
        if self._t_start is None:
            raise RuntimeError("EnergyMeter.stop() called before start()")
        t_start, self._t_start = self._t_start, None
        joules, samples, rails = self._stop_impl(t_start, t_end)
        seconds = t_end - t_start
        above = None
        if joules is not None and self.idle_watts is not None:
            above = joules - self.idle_watts * seconds
        return EnergyReading(joules, above, seconds, samples, self.source, self.idle_watts, rails)

    def measure_idle(self, seconds: float) -> float | None:
        """Measure ``seconds`` with nothing running and keep the mean watts as ``idle_watts``."""
        self.start()
        time.sleep(seconds)
        reading = self.stop()
        self.idle_watts = reading.mean_watts
        return self.idle_watts

    def close(self) -> None:
        pass

    def __enter__(self) -> "EnergyMeter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class JetsonMeter(EnergyMeter):
    """INA3221 rails sampled from sysfs; total by ``jetson.total_watts``."""

    def __init__(self, rails: jetson.JetsonRails, *, interval_s: float = DEFAULT_INTERVAL_S):
        super().__init__()
        self.rails = rails
        self.interval_s = interval_s
        self.source = f"jetson-ina3221: {jetson.total_rule(rails.names)}"
        self._sampler: PowerSampler | None = None

    def _start_impl(self) -> None:
        self._sampler = PowerSampler(self.rails.read, interval_s=self.interval_s, total=jetson.total_watts).start()

    def _stop_impl(self, t_start, t_end):
        sampler, self._sampler = self._sampler, None
        sampler.stop()
        if len(sampler.times) < 2:
            return None, len(sampler.times), {}
        return sampler.energy(t_start, t_end), len(sampler.times), sampler.rail_energies(t_start, t_end)


class TegrastatsMeter(EnergyMeter):
    """Rails from a running ``tegrastats`` stream; the stream runs from opening to ``close()``."""

    def __init__(self, stream: tegrastats.TegrastatsStream):
        super().__init__()
        self.stream = stream
        self.source = "tegrastats"

    @classmethod
    def open(cls, executable: str = "tegrastats", *, interval_ms: int = tegrastats.DEFAULT_INTERVAL_MS,
             first_sample_timeout_s: float = 3.0) -> "TegrastatsMeter | None":
        """Start tegrastats; None when it is missing or prints no rails in time."""
        path = tegrastats.find_tegrastats(executable)
        if path is None:
            return None
        stream = tegrastats.TegrastatsStream(path, interval_ms)
        try:
            stream.start()
        except OSError:
            return None
        if not stream.wait_for_sample_after(float("-inf"), first_sample_timeout_s):
            stream.stop()
            return None
        meter = cls(stream)
        meter.source = f"tegrastats: {jetson.total_rule(list(stream.samples()[0][1]))}"
        return meter

    def _stop_impl(self, t_start, t_end):
        # wait for the line after the window, so its end is interpolated, not extrapolated
        self.stream.wait_for_sample_after(t_end, timeout_s=3 * self.stream.interval_ms / 1e3 + 1.0)
        samples = self.stream.samples()
        times = [t for t, _ in samples]
        totals = [jetson.total_watts(r) for _, r in samples]
        joules = integrate_energy(times, totals, t_start=t_start, t_end=t_end)
        rails = {name: integrate_energy(times, [r.get(name, 0.0) for _, r in samples], t_start=t_start, t_end=t_end)
                 for name in samples[-1][1]}
        return joules, sum(t_start <= t <= t_end for t in times), rails

    def close(self) -> None:
        self.stream.stop()


class CounterMeter(EnergyMeter):
    """Energy counters (NVML, RAPL): ``counters.read()`` and ``counters.delta_joules(a, b)``, summed over zones."""

    def __init__(self, counters, source: str, *, poll_s: float = COUNTER_POLL_S):
        super().__init__()
        self.counters = counters
        self.source = source
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: dict = {}
        self._joules: dict[str, float] = {}
        self._reads = 0

    def _accumulate(self) -> None:
        with self._lock:
            now = self.counters.read()
            for name, joules in self.counters.delta_joules(self._last, now).items():
                self._joules[name] = self._joules.get(name, 0.0) + joules
            self._last = now
            self._reads += 1

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._accumulate()

    def _start_impl(self) -> None:
        self._last, self._joules, self._reads = self.counters.read(), {}, 1
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="energy-counter", daemon=True)
        self._thread.start()

    def _stop_impl(self, t_start, t_end):
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._accumulate()
        return float(sum(self._joules.values())), self._reads, dict(self._joules)

    def close(self) -> None:
        close = getattr(self.counters, "close", None)
        if close is not None:
            close()


def _open(kind: str, *, root: str | Path, tegrastats_executable: str, interval_s: float) -> EnergyMeter | None:
    if kind == "jetson":
        rails = jetson.JetsonRails.discover(root)
        return JetsonMeter(rails, interval_s=interval_s) if rails else None
    if kind == "tegrastats":
        return TegrastatsMeter.open(tegrastats_executable)
    if kind == "nvml":
        counters = NvmlEnergy.open()
        return CounterMeter(counters, "nvml: GPU board energy counter") if counters else None
    if kind == "rapl":
        counters = rapl.RaplCounters.discover(root)
        if counters is None:
            return None
        return CounterMeter(counters, "rapl: " + " + ".join(z.name for z in counters.zones))
    raise AssertionError(kind)


def open_best_meter(prefer: str | None = None, *, root: str | Path = "/sys", tegrastats_executable: str = "tegrastats",
                    interval_s: float = DEFAULT_INTERVAL_S, candidates: tuple[str, ...] = SOURCES) -> EnergyMeter:
    """The best sensor present, in the order of ``candidates`` (default jetson > tegrastats > nvml > rapl).

    ``prefer`` names one of ``SOURCES`` to use that sensor or fail, or ``"none"``
    for a meter that measures nothing. With no sensor present the result is an
    ``EnergyMeter`` whose readings say ``"not measured"``.
    """
    if prefer is not None:
        if prefer == "none":
            return EnergyMeter()
        if prefer not in SOURCES:
            raise UserError(f"unknown power sensor {prefer!r}; choose one of {', '.join(SOURCES)} or 'none'")
        meter = _open(prefer, root=root, tegrastats_executable=tegrastats_executable, interval_s=interval_s)
        if meter is None:
            raise UserError(
                f"power sensor {prefer!r} is not available on this machine (missing, unreadable or unsupported); "
                "leave the sensor unset to use the best one present, or run as a user who may read it"
            )
        return meter
    for kind in candidates:
        meter = _open(kind, root=root, tegrastats_executable=tegrastats_executable, interval_s=interval_s)
        if meter is not None:
            return meter
    return EnergyMeter()
