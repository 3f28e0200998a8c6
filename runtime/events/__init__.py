"""Event-camera recordings on the device: readers, windowing, the one binning, the recording run. No torch.

* :mod:`~edge_snn.runtime.events.binning`: :class:`BinningSpec` (travels in the
  ONNX metadata) and :func:`bin_events`, the single implementation that
  training and the drone both use;
* :mod:`~edge_snn.runtime.events.readers`: DSEC ``events.h5``, AEDAT4,
  ``.npz`` / ``.npy``, read window by window;
* :mod:`~edge_snn.runtime.events.windows`: fixed windows, sensor crop/resize;
* :mod:`~edge_snn.runtime.events.run`: ``edge-snn run MODEL --input RECORDING``.

h5py + hdf5plugin, dv-processing and imageio-ffmpeg come with the ``events``
extra and are imported only when needed.
"""

from edge_snn.runtime.events.binning import BinningSpec, Events, bin_events

__all__ = ["BinningSpec", "Events", "bin_events"]
