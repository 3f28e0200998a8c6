"""NVML energy counter through a stand-in ``pynvml`` module (the real one needs a discrete GPU)."""

from __future__ import annotations

import sys

import pytest

from edge_snn.runtime.power import open_best_meter
from edge_snn.runtime.power.nvml import NvmlEnergy

pytestmark = pytest.mark.runtime

# The pynvml calls NvmlEnergy makes, with a counter that grows 250 mJ per read.
FAKE_PYNVML = '''
class NVMLError(Exception):
    pass

SUPPORTED = {supported}
_count = [10_000]
shutdowns = []

def nvmlInit():
    pass

def nvmlShutdown():
    shutdowns.append(1)

def nvmlDeviceGetHandleByIndex(index):
    if index != 0:
        raise NVMLError("Invalid Argument")
    return ("handle", index)

def nvmlDeviceGetTotalEnergyConsumption(handle):
    if not SUPPORTED:
        raise NVMLError("Not Supported")  # what every Jetson answers
    _count[0] += 250
    return _count[0]
'''


@pytest.fixture
def fake_pynvml(tmp_path, monkeypatch):
    def install(supported: bool):
        (tmp_path / "pynvml.py").write_text(FAKE_PYNVML.format(supported=supported))
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, "pynvml", raising=False)
        import pynvml

        return pynvml

    yield install
    sys.modules.pop("pynvml", None)


def test_counter_millijoules_become_joules(fake_pynvml):
    fake_pynvml(True)
    counters = NvmlEnergy.open()
    first, second = counters.read(), counters.read()
    assert counters.delta_joules(first, second) == {"gpu0": 0.25}
    counters.close()


def test_meter_reports_the_counter_difference(fake_pynvml):
    pynvml = fake_pynvml(True)
    meter = open_best_meter("nvml")
    meter.start()
    reading = meter.stop()
    meter.close()
    # one read at start, one at stop (plus any one-second polls): 0.25 J between each pair
    assert reading.joules_total == pytest.approx(0.25 * (reading.samples - 1))
    assert pynvml.shutdowns == [1]


def test_not_supported_means_no_source(fake_pynvml):
    pynvml = fake_pynvml(False)
    assert NvmlEnergy.open() is None
    assert pynvml.shutdowns == [1]


def test_bad_gpu_index_means_no_source(fake_pynvml):
    fake_pynvml(True)
    assert NvmlEnergy.open((3,)) is None


def test_without_pynvml_there_is_no_source(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    assert NvmlEnergy.open() is None
