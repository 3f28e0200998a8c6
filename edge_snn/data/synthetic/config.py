"""What a synthetic scene is made of: its configuration, classes, splits and the sensor constants."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_snn.errors import UserError

CLASS_NAMES: tuple[str, ...] = ("background", "vehicle", "person", "building")
VEHICLE, PERSON, BUILDING = 1, 2, 3
DRAW_ORDER = {BUILDING: 0, VEHICLE: 1, PERSON: 2}  # bottom to top

SPLITS: tuple[str, ...] = ("train", "val", "test")

LOG_EPS = 0.05
"""Dark offset in ``log(I + LOG_EPS)`` (intensity units, I in [0, 1]): it plays
the part of the photodiode's dark current, keeps the log finite at I = 0 and
bounds the event rate in dark regions."""

ADC_LEVELS = 4095  # 12-bit intensity frames
IMAGE_LEVELS = 255  # 8-bit colour images
SEED_DOMAIN = 0x5E_DA7A  # separates these streams from any other use of the same seed
REF_SIZE = 64.0  # the resolution the lengths in the module docstring refer to
MIN_SIZE = 8


@dataclass(frozen=True)
class SceneConfig:
    """What to generate. Sample ``i`` is a pure function of ``(seed, split, i)``.

    height, width: frame size in pixels (any size >= 8; geometry scales with
        ``min(height, width) / 64``).
    timesteps: event frames per sample (T).
    substeps: rendered intensity frames per event frame: the DVS model sees
        ``timesteps * substeps + 1`` frames, finer steps resolve fast edges.
    contrast_threshold: DVS contrast threshold C, in log-intensity units.
    noise_rate: background-activity noise, events per pixel per event frame
        (split evenly between ON and OFF).
    max_objects: objects per scene are drawn uniformly from 1..max_objects
        (0 gives background-only scenes).
    seed: dataset seed.
    threshold_jitter: per-pixel relative spread of C (uniform in
        ``C * (1 +- threshold_jitter)``), fixed per sample, like pixel mismatch.
    """

    height: int = 64
    width: int = 64
    timesteps: int = 20
    substeps: int = 4
    contrast_threshold: float = 0.15
    noise_rate: float = 0.002
    max_objects: int = 3
    seed: int = 0
    threshold_jitter: float = 0.03

    def __post_init__(self) -> None:
        for name, low in (("height", MIN_SIZE), ("width", MIN_SIZE), ("timesteps", 1),
                          ("substeps", 1), ("max_objects", 0), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise UserError(f"synthetic scene: {name} must be an integer >= {low}, got {value!r}")
        check_dvs_parameters("synthetic scene", self.contrast_threshold, self.noise_rate, self.threshold_jitter)


def check_dvs_parameters(where: str, contrast_threshold, noise_rate, threshold_jitter) -> None:
    def real(value) -> bool:
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)

    if not (real(contrast_threshold) and 0 < contrast_threshold < np.inf):
        raise UserError(f"{where}: contrast_threshold must be > 0 (log units, e.g. 0.15), got {contrast_threshold!r}")
    if not (real(noise_rate) and 0 <= noise_rate <= 1):
        raise UserError(f"{where}: noise_rate is events per pixel per frame and must be in [0, 1] "
                        f"(e.g. 0.002), got {noise_rate!r}")
    if not (real(threshold_jitter) and 0 <= threshold_jitter < 1):
        raise UserError(f"{where}: threshold_jitter must be in [0, 1) (e.g. 0.03), got {threshold_jitter!r}")
