"""Measuring power and energy on the device (torch-free). See docs/energy.md.

Sensors, best first: the Jetson's INA3221 rails in sysfs (``jetson``), the
``tegrastats`` stream, NVML's GPU energy counter (``nvml``), the CPU's RAPL
counters (``rapl``). ``open_best_meter()`` picks the best one present and
returns an ``EnergyMeter``: ``start()``, run, ``stop() -> EnergyReading``.
"""

from edge_snn.runtime.power.jetson import JetsonRails, PowerMode, parse_nvpmodel_query, read_power_mode, total_watts
from edge_snn.runtime.power.nvml import NvmlEnergy
from edge_snn.runtime.power.rapl import RaplCounters, counter_delta_uj
from edge_snn.runtime.power.sampler import (
    NOT_MEASURED,
    SOURCES,
    EnergyMeter,
    EnergyReading,
    PowerSampler,
    integrate_energy,
    measure_idle,
    open_best_meter,
)
from edge_snn.runtime.power.tegrastats import TegrastatsStream, parse_tegrastats_line

__all__ = [
    "NOT_MEASURED", "SOURCES", "EnergyMeter", "EnergyReading", "JetsonRails", "NvmlEnergy", "PowerMode",
    "PowerSampler", "RaplCounters", "TegrastatsStream", "counter_delta_uj", "integrate_energy", "measure_idle",
    "open_best_meter", "parse_nvpmodel_query", "parse_tegrastats_line", "read_power_mode", "total_watts",
]
