"""Dataset names the CLI and configs use, mapped to their loader classes.

A loader is named by ``"module:Class"`` and imported only when built, so
listing the names costs nothing. Keyword arguments are checked against the
loader's signature here, because silently dropping one (say ``timesteps`` for
an image set) would train something other than what was asked for.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from torch.utils.data import Dataset

from edge_snn.errors import UserError

DATASETS: dict[str, str] = {
    "voc2012": "edge_snn.data.voc:VOCSegmentation",
    "voc2012-aug": "edge_snn.data.voc:VOCAugSegmentation",
    "ddd17": "edge_snn.data.ddd17:DDD17EvSegNet",
    "ddd17-ess": "edge_snn.data.ddd17_ess:DDD17ESS",
    "folder": "edge_snn.data.folder:ImageFolderSegmentation",
    "dsec-semantic": "edge_snn.data.dsec:DSECSemantic",
    "dsec-semantic-19": "edge_snn.data.dsec:DSECSemantic19",
}


def dataset_class(name: str) -> type[Dataset]:
    """The loader class registered as ``name``."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose one of: {', '.join(sorted(DATASETS))}")
    module, _, attr = DATASETS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def build_dataset(name: str, root: str | Path, split: str | None, **kw) -> Dataset:
    """Build the dataset ``name`` from ``root`` for ``split`` (e.g. ``build_dataset("ddd17", p, "test", timesteps=10)``).

    Options not accepted by that loader raise a UserError that lists the ones it takes.
    """
    cls = dataset_class(name)
    params = inspect.signature(cls.__init__).parameters
    accepted = [p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(kw) - set(accepted))
    if unknown:
        raise UserError(
            f"dataset {name!r} does not take option(s) {', '.join(unknown)}; it takes: {', '.join(accepted)}"
        )
    if split is None:
        return cls(root, **kw)
    return cls(root, split, **kw)
