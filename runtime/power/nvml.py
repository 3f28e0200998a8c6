"""GPU board energy from NVML's running counter (discrete GPUs; Jetson's NVML does not implement it).

``nvmlDeviceGetTotalEnergyConsumption`` returns the energy the board has used
since the driver was loaded, in millijoules (Volta and newer), so energy over an
interval is the difference of two readings / 1000 [J]; the 64-bit count does
not wrap in practice. It covers the GPU board only, not the host CPU or memory.

``pynvml`` (package ``nvidia-ml-py``) is imported lazily and is optional: when
it is missing, no GPU is found, or the call is not supported (every Jetson:
NVML answers NOT_SUPPORTED there) there is no NVML source, not an error.
"""

from __future__ import annotations

from typing import Any


class NvmlEnergy:
    """The energy counters of the chosen GPUs: ``read() -> {"gpu<i>": mJ}``."""

    def __init__(self, nvml: Any, handles: dict[str, Any]):
        self._nvml = nvml
        self._handles = handles

    @classmethod
    def open(cls, indices: tuple[int, ...] = (0,)) -> "NvmlEnergy | None":
        """Counters of GPUs ``indices`` (default the first), or None where NVML cannot give them."""
        try:
            import pynvml
        except ImportError:
            return None
        try:
            pynvml.nvmlInit()
        except Exception:  # NVMLError (no driver, no GPU) or a broken install
            return None
        try:
            handles = {f"gpu{i}": pynvml.nvmlDeviceGetHandleByIndex(i) for i in indices}
            for handle in handles.values():
                pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except Exception:  # NVMLError_NotSupported on Jetson and pre-Volta boards, or a bad index
            pynvml.nvmlShutdown()
            return None
        return cls(pynvml, handles)

    def read(self) -> dict[str, int]:
        return {name: int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for name, h in self._handles.items()}

    def delta_joules(self, start: dict[str, int], end: dict[str, int]) -> dict[str, float]:
        return {name: (end[name] - start[name]) / 1e3 for name in self._handles}

    def close(self) -> None:
        if self._handles:
            self._handles = {}
            self._nvml.nvmlShutdown()
