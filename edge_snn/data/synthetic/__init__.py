"""Built-in synthetic event-camera segmentation scenes, as a drone camera sees them.

No downloads: every sample is generated on the fly from ``(seed, split, index)``,
so tests, demos and smoke trainings work anywhere and give the same data on
every machine.

Scene model (lengths in pixels at 64x64; they scale with ``min(H, W) / 64``,
speeds are in pixels per event window, so ``timesteps`` and ``substeps`` only
change how finely the same motion is sampled):

* **Background** ("ground" seen from above): a smooth low-frequency texture
  (four separable wave products, periods 14-48 px) plus a faint fine texture
  (periods 2.5-4 px, amplitude 0.02-0.03). The camera translates, so the whole
  ground drifts 3-8 px per window: sparse events where the ground has gradient.
* **Objects**, 1..``max_objects`` per scene, each of a class with its own shape
  and texture, so a class can be told apart by local appearance:

  ============  ===============================  =================================
  class         shape (at 64x64)                 texture / motion
  ============  ===============================  =================================
  vehicle (1)   rounded box 16-28 x 10-15 px     bold stripes across it (period
                oriented along its heading       5-7 px); drives 8-16 px / window
  person (2)    ellipse 12-18 x 15-22 px         fine isotropic speckle (cells of
                                                 2.2-3 px); walks 3-6 px / window
  building (3)  box 18-30 px, sometimes with a   grid of dark windows (period
                corner notch (L shape)           7-10 px); moves with the ground
                                                 plus 10-35 % parallax
  ============  ===============================  =================================

  Objects also shrink or grow by up to 6 % over the window (altitude change),
  and are drawn buildings first, then vehicles, then persons (occlusion).

Intensity frames are rendered at ``timesteps * substeps + 1`` instants and
quantised to 12 bits (a sensor ADC). :func:`events_from_frames` turns them into
ON/OFF event counts with a DVS pixel model; the label map is the object classes
at the *end* of the window (class 0 = background), the moment a network that
has seen the whole window is asked about. The static variant
(:func:`render_image_sample`) renders the same scene in colour at that instant.

Modules: ``config`` (what to generate), ``exact_math`` (machine-independent
functions), ``scene`` (all random draws), ``render`` (frames and labels),
``dvs`` (the pixel model and the time base of the events), ``samplers`` (the
public functions). Events come out as a stream ``(x, y, t, p)`` and are binned
by the runtime's :func:`~edge_snn.runtime.events.binning.bin_events`, the one
binning a recording gets on the drone.

Determinism: every random draw comes from one ``numpy.random.Generator``
(PCG64) per sample, seeded with ``SeedSequence((domain, seed, split, index))``,
and only draws whose algorithms use exact arithmetic (``random``, ``integers``)
are used. Rendering uses only correctly rounded operations (``+ - * / sqrt``,
``floor``), with our own polynomial wave and logarithm instead of libm/SIMD
``sin``/``log`` (whose last bits differ between CPUs), and no BLAS. So the same
inputs give bit-identical outputs on any machine with the same numpy.
"""


from __future__ import annotations

from edge_snn.data.synthetic.config import CLASS_NAMES, LOG_EPS, SPLITS, SceneConfig
from edge_snn.data.synthetic.dvs import events_from_frames, synthetic_binning
from edge_snn.data.synthetic.samplers import (
    render_event_sample,
    render_event_stream,
    render_image_sample,
    render_intensity_frames,
    render_recording,
)

__all__ = [
    "CLASS_NAMES",
    "SPLITS",
    "LOG_EPS",
    "SceneConfig",
    "events_from_frames",
    "render_event_sample",
    "render_event_stream",
    "render_image_sample",
    "render_intensity_frames",
    "render_recording",
    "synthetic_binning",
]
