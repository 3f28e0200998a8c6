"""Deterministic elementary functions: only correctly rounded operations, so every machine agrees bit for bit."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from edge_snn.data.synthetic.config import ADC_LEVELS, LOG_EPS

def wave(t: np.ndarray) -> np.ndarray:
    """A cosine-like wave of period 1: ``w(0) = 1``, ``w(1/2) = -1``, C1-smooth.

    ``w(t) = 2 s(|2 frac(t) - 1|) - 1`` with the smoothstep ``s(x) = x^2 (3 - 2x)``;
    within 2 % of ``cos(2 pi t)`` and exact on every machine.
    """
    tri = np.abs(2 * (t - np.floor(t)) - 1)
    return tri * tri * (6 - 4 * tri) - 1


def square(t: np.ndarray, sharpness: float) -> np.ndarray:
    """Square-ish wave of period 1 in [-1, 1]; edges about ``1 / sharpness`` of a half period wide."""
    return np.clip(sharpness * wave(t), -1, 1)


_LN2 = 0.6931471805599453
_SQRT_HALF = 0.7071067811865476
_ATANH_COEFFS = tuple(1.0 / k for k in range(21, 0, -2))  # 1/21, 1/19, ..., 1/1


def log(x: np.ndarray) -> np.ndarray:
    """Natural log of positive float64 values, bit-identical on every machine.

    ``x = m 2^e`` with ``m`` in [sqrt(1/2), sqrt(2)); ``log m = 2 atanh(z)``,
    ``z = (m - 1) / (m + 1)``, ``|z| <= 0.172``; the odd series to ``z^21`` is
    accurate to a few ulp.
    """
    m, e = np.frexp(x)
    low = m < _SQRT_HALF
    m = np.where(low, m * 2, m)
    e = e - low
    z = (m - 1) / (m + 1)
    z2 = z * z
    poly = np.full_like(z, _ATANH_COEFFS[0])
    for c in _ATANH_COEFFS[1:]:
        poly = poly * z2 + c
    return 2 * z * poly + e * _LN2


@lru_cache(maxsize=1)
def log_table() -> np.ndarray:
    """``log(level + LOG_EPS)`` for every 12-bit frame level, as float32 [4096]."""
    levels = (np.arange(ADC_LEVELS + 1, dtype=np.float32) / np.float32(ADC_LEVELS)).astype(np.float64)
    table = log(levels + LOG_EPS).astype(np.float32)
    table.setflags(write=False)
    return table


def unit_vector(rng: np.random.Generator) -> tuple[float, float]:
    """A uniformly oriented unit vector, by rejection from the square (no trig)."""
    while True:
        a, b = rng.random(2) * 2 - 1
        r2 = a * a + b * b
        if 0.04 < r2 <= 1.0:
            r = float(np.sqrt(r2))
            return float(a) / r, float(b) / r
