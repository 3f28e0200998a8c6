"""CPU package energy from the Linux RAPL powercap counters (x86 hosts: the development PC, not a Jetson).

Each package zone ``/sys/class/powercap/intel-rapl:<P>`` (AMD uses the same
names) holds ``name`` ("package-0"), ``energy_uj`` — a running energy count in
microjoules — and ``max_energy_range_uj``, the value at which the count wraps
to 0. Sub-zones (``intel-rapl:P:S``: core, uncore, dram) are inside their
package and are not added again.

Energy over an interval is the counter difference; when the count has wrapped
once the difference is ``end - start + range`` [uJ]. Two wraps in one interval
cannot be told from none, so a meter must read the counters more often than
the wrap period (range / power: about an hour at 70 W for a 2^38 uJ range);
``CounterMeter`` in ``sampler`` reads every second.

Since Linux 5.10 ``energy_uj`` is readable by root only (a power side channel);
without permission there is no RAPL source, not an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RaplZone:
    """One package counter."""

    name: str
    energy_uj: Path
    max_energy_range_uj: int

    def read_uj(self) -> int:
        return int(self.energy_uj.read_text().strip())


def counter_delta_uj(start: int, end: int, max_energy_range_uj: int) -> int:
    """Microjoules between two readings of one counter, allowing for one wrap past ``max_energy_range_uj``."""
    return end - start if end >= start else end - start + max_energy_range_uj


def find_rapl_zones(root: str | Path = "/sys") -> list[RaplZone]:
    """Readable package zones under ``root`` (a sysfs mount); empty when there are none or no permission."""
    zones = []
    for zone in sorted(Path(root, "class", "powercap").glob("intel-rapl:*")):
        if re.fullmatch(r"intel-rapl:\d+", zone.name) is None:
            continue  # a sub-zone, counted in its package
        try:
            name = (zone / "name").read_text().strip()
            found = RaplZone(name, zone / "energy_uj", int((zone / "max_energy_range_uj").read_text().strip()))
            found.read_uj()
        except (OSError, ValueError):
            continue
        zones.append(found)
    return zones


class RaplCounters:
    """The package counters of this host as one counter source: ``read() -> {zone: uJ}``."""

    def __init__(self, zones: list[RaplZone]):
        self.zones = list(zones)

    @classmethod
    def discover(cls, root: str | Path = "/sys") -> "RaplCounters | None":
        zones = find_rapl_zones(root)
        return cls(zones) if zones else None

    def read(self) -> dict[str, int]:
        return {zone.name: zone.read_uj() for zone in self.zones}

    def delta_joules(self, start: dict[str, int], end: dict[str, int]) -> dict[str, float]:
        """Joules per zone between two ``read()`` results (at most one wrap each)."""
        return {
            zone.name: counter_delta_uj(start[zone.name], end[zone.name], zone.max_energy_range_uj) / 1e6
            for zone in self.zones
        }
