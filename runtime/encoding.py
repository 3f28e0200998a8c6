"""Input encoders, in numpy: the one implementation used on the device *and* in training.

A spiking network sees its input as T frames. Three encodings (PAPER.md,
"Input encoding"):

``poisson``  signed rate code, drawn fresh each step:
             ``o[t] = sign(x) * 1[r_t <= |x|]`` with ``r_t ~ U[0, 1)``; x in [-1, 1].
``direct``   the analog value repeated every step: ``o[t] = x``.
``events``   event frames given as ``[T, P, H, W]`` (or ``[T, B, P, H, W]``), fed as they are.

The random numbers of step ``t`` come from ``PCG64(SeedSequence([seed, t]))``,
where t is the absolute timestep within the frame. So the same seed gives
bit-identical spike trains on any machine, in the PyTorch reference (which
calls this module) and in the runtime, and a frame encoded in chunks
(``start_step``) equals one encoded in one go.
"""

from __future__ import annotations

import numpy as np

ENCODINGS = ("poisson", "direct", "events")
# The value range a model's input may span, when its checkpoint does not record one: images are
# normalized to [-1, 1]; event frames are non-negative counts whose scale only the dataset knows
# (the built-in scenes and DDD17 record (0, 1), ESS-style counts (0, inf)).
DEFAULT_INPUT_RANGES = {"poisson": (-1.0, 1.0), "direct": (-1.0, 1.0), "events": (0.0, float("inf"))}


def default_input_range(encoding: str) -> tuple[float, float]:
    """The one default of :data:`DEFAULT_INPUT_RANGES` (images' range for unknown encodings)."""
    return DEFAULT_INPUT_RANGES.get(encoding, (-1.0, 1.0))


def step_uniforms(shape: tuple[int, ...], *, seed: int, step: int) -> np.ndarray:
    """Uniform [0, 1) float32 numbers for timestep ``step`` of a frame seeded by ``seed``."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(step)])))
    return rng.random(shape, dtype=np.float32)


def poisson_encode(x: np.ndarray, timesteps: int, *, seed: int, start_step: int = 0) -> np.ndarray:
    """Signed Poisson spikes ``[T, *x.shape]`` (float32, values -1/0/1) for steps ``start_step..+T``."""
    x = np.asarray(x, dtype=np.float32)
    magnitude = np.abs(x)
    sign = np.sign(x)
    out = np.empty((timesteps, *x.shape), dtype=np.float32)
    for t in range(timesteps):
        fired = step_uniforms(x.shape, seed=seed, step=start_step + t) <= magnitude
        np.multiply(sign, fired, out=out[t])
    return out


def direct_encode(x: np.ndarray, timesteps: int) -> np.ndarray:
    """The analog input repeated over ``T`` steps: ``[T, *x.shape]``."""
    x = np.asarray(x, dtype=np.float32)
    return np.broadcast_to(x, (timesteps, *x.shape)).copy()


def frame_seed(base_seed: int, frame_index: int) -> int:
    """A distinct, reproducible Poisson seed for each frame of a stream."""
    return int(np.random.SeedSequence([int(base_seed) & 0xFFFFFFFF, int(frame_index)]).generate_state(1)[0])


def encode_frame(x: np.ndarray, encoding: str, steps: int, *, seed: int = 0, frame_index: int = 0) -> np.ndarray:
    """One batched frame as the ``[steps, B, C, H, W]`` spikes a model reads (how ``edge-snn run`` encodes).

    x: images ``[B, C, H, W]`` (poisson, direct) or event frames ``[T, B, P, H, W]`` (events, first ``steps``
    frames used). The Poisson seed of frame ``frame_index`` is :func:`frame_seed` of ``seed``.
    """
    if encoding == "poisson":
        return poisson_encode(x, steps, seed=frame_seed(seed, frame_index))
    if encoding == "direct":
        return direct_encode(x, steps)
    return np.ascontiguousarray(x[:steps], dtype=np.float32)
