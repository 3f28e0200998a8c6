"""Which dataset a :class:`TrainConfig` means, and how it is encoded."""

from __future__ import annotations

from edge_snn.errors import UserError

SYNTHETIC = {"synthetic-events": "events", "synthetic-images": "image"}


def make_dataset(config, split: str, *, num_samples: int | None = None):
    """The ``split`` ("train" / "val" / "test") of the configured dataset."""
    size = (config.height, config.width)
    if config.dataset in SYNTHETIC:
        from edge_snn.data.synthetic_dataset import SyntheticSegmentation

        if num_samples is None:
            num_samples = config.train_samples if split == "train" else config.val_samples
        return SyntheticSegmentation(split, kind=SYNTHETIC[config.dataset], size=size, timesteps=config.timesteps,
                                     num_samples=num_samples, seed=config.seed)
    if not config.data_root:
        raise UserError(f"dataset {config.dataset!r} is read from disk: pass --data-root PATH")
    from edge_snn.data.registry import build_dataset

    kwargs = {"size": size}
    dataset = build_dataset(config.dataset, config.data_root, split, **kwargs, **(
        {"timesteps": config.timesteps} if config.dataset.startswith(("ddd17", "dsec")) else {}))
    return dataset


def dataset_kind(dataset) -> str:
    return getattr(dataset, "kind", "image")


def input_encoding(config, dataset) -> str:
    """Event datasets feed their frames directly; image datasets use the configured rate code."""
    return "events" if dataset_kind(dataset) == "events" else config.encoding


def input_channels(dataset) -> int:
    x, _ = dataset[0]
    return int(x.shape[-3])
