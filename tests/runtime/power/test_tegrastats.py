"""tegrastats lines as Orin modules print them, and the subprocess stream."""

from __future__ import annotations

import pytest

from edge_snn.runtime.power.sampler import TegrastatsMeter
from edge_snn.runtime.power.tegrastats import parse_tegrastats_line, rail_watts

pytestmark = pytest.mark.runtime

AGX_ORIN_JP6 = (
    "11-21-2025 08:49:48 RAM 13983/62780MB (lfb 424x4MB) SWAP 126/31390MB (cached 0MB) "
    "CPU [90%@2201,100%@2201,100%@2201,100%@2201] EMC_FREQ 1%@2133 GR3D_FREQ 14%@[407,407] VIC_FREQ 115 "
    "NVDLA0_FREQ @1600 APE 174 CV0@73.625C CPU@77.281C Tboard@62C SOC2@70C Tdiode@62.25C GPU@69.125C "
    "tj@77.281C VDD_GPU_SOC 3150mW/2971mW VDD_CPU_CV 14312mW/12415mW VIN_SYS_5V0 4968mW/5048mW "
    "VDDQ_VDD2_1V8AO 1091mW/1091mW"
)
ORIN_NX = (
    "RAM 2712/7620MB (lfb 2x4MB) SWAP 0/3810MB (cached 0MB) CPU [2%@729,1%@729,off,off] GR3D_FREQ 0% "
    "cpu@47.5C soc2@46.968C gpu@46.781C tj@48.031C VDD_IN 5012mW/5012mW VDD_CPU_GPU_CV 1234mW/1100mW "
    "VDD_SOC 1440mW/1440mW"
)
RAILS_ONLY = "VDD_GPU_SOC 2386mW/2386mW VDD_CPU_CV 397mW/397mW VIN_SYS_5V0 2820mW/2820mW"
OLD_L4T = (
    "RAM 2020/7852MB (lfb 1164x4MB) CPU [9%@345,21%@345] EMC_FREQ 0% GR3D_FREQ 0% PLL@42.5C "
    "VDD_SYS_GPU 153/158 VDD_SYS_SOC 536/547 VDD_IN 3140/3208"
)


def test_agx_orin_line_with_ram_cpu_and_temperatures_first():
    assert parse_tegrastats_line(AGX_ORIN_JP6) == {
        "VDD_GPU_SOC": (3150.0, 2971.0), "VDD_CPU_CV": (14312.0, 12415.0),
        "VIN_SYS_5V0": (4968.0, 5048.0), "VDDQ_VDD2_1V8AO": (1091.0, 1091.0),
    }


def test_orin_nx_line_gives_current_watts():
    assert rail_watts(ORIN_NX) == pytest.approx({"VDD_IN": 5.012, "VDD_CPU_GPU_CV": 1.234, "VDD_SOC": 1.44})


@pytest.mark.parametrize("line, expected", [
    (RAILS_ONLY, {"VDD_GPU_SOC": (2386.0, 2386.0), "VDD_CPU_CV": (397.0, 397.0), "VIN_SYS_5V0": (2820.0, 2820.0)}),
    (OLD_L4T, {"VDD_SYS_GPU": (153.0, 158.0), "VDD_SYS_SOC": (536.0, 547.0), "VDD_IN": (3140.0, 3208.0)}),
    ("RAM 2020/7852MB (lfb 1164x4MB) SWAP 0/3810MB (cached 0MB) IRAM 0/252kB(lfb 252kB) CPU [9%@345]", {}),
    ("", {}),
])
def test_other_line_shapes(line, expected):
    assert parse_tegrastats_line(line) == expected


def test_stream_from_a_tegrastats_executable(tmp_path):
    tool = tmp_path / "tegrastats"
    tool.write_text(
        "#!/bin/sh\n"
        '[ "$1" = "--interval" ] || exit 3\n'
        f'while :; do echo "{ORIN_NX}"; sleep 0.02; done\n'
    )
    tool.chmod(0o755)
    meter = TegrastatsMeter.open(str(tool), interval_ms=20)
    assert meter is not None and meter.source == "tegrastats: VDD_IN (module input rail)"
    try:
        meter.start()
        reading = meter.stop()
    finally:
        meter.close()
    # constant rails: the integral over the window is VDD_IN times its length
    assert reading.joules_total == pytest.approx(5.012 * reading.seconds)
    assert reading.rails["VDD_SOC"] == pytest.approx(1.44 * reading.seconds)


def test_missing_tegrastats_gives_no_meter(tmp_path):
    assert TegrastatsMeter.open(str(tmp_path / "tegrastats")) is None
