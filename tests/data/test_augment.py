"""Joint geometric augmentation: input and label always move together; outside becomes void."""

from __future__ import annotations

import pickle

import pytest
import torch

from edge_snn.data.augment import AffineParams, Augment
from edge_snn.errors import UserError

H, W = 12, 16


def asymmetric_label() -> torch.Tensor:
    """Class 1 in a block at the top-left, 2 in a column at the right, 0 elsewhere."""
    y = torch.zeros(H, W, dtype=torch.int64)
    y[1:4, 1:5] = 1
    y[:, 13] = 2
    return y


def as_input(y: torch.Tensor, lead: tuple[int, ...]) -> torch.Tensor:
    """An input whose every channel equals the label (plus the channel index)."""
    n = 1
    for d in lead:
        n *= d
    x = y.to(torch.float32).expand(n, H, W) + torch.arange(n, dtype=torch.float32).view(n, 1, 1) * 10
    return x.reshape(*lead, H, W).clone()


@pytest.mark.parametrize("lead", [(3,), (4, 2)], ids=["image CHW", "events TPHW"])
def test_flip_moves_input_and_label_together(lead):
    y = asymmetric_label()
    x = as_input(y, lead)
    aug = Augment(flip=True, scale=None, translate=0.0, rotate_deg=0.0)
    x2, y2 = aug.apply(x, y, AffineParams(flip=True, scale=1.0, shift=(0.0, 0.0), angle_deg=0.0))
    assert y2[2, W - 2] == 1 and y2[2, 1] == 0 and (y2[:, W - 1 - 13] == 2).all()
    assert torch.equal(y2, torch.flip(y, dims=(-1,)))
    assert torch.equal(x2, torch.flip(x, dims=(-1,)))


@pytest.mark.parametrize("lead", [(3,), (4, 2)], ids=["image CHW", "events TPHW"])
def test_shift_fills_void_and_zero(lead):
    y = asymmetric_label()
    x = as_input(y, lead) + 1.0
    params = AffineParams(flip=False, scale=1.0, shift=(2 / W, 1 / H), angle_deg=0.0)
    x2, y2 = Augment().apply(x, y, params)
    assert x2.shape == x.shape and y2.dtype == torch.int64
    # content moved right by 2 pixels and down by 1
    assert torch.equal(y2[1:, 2:], y[:-1, :-2])
    torch.testing.assert_close(x2[..., 1:, 2:], x[..., :-1, :-2])
    # what came from outside: label 255, input 0
    assert (y2[:, :2] == 255).all() and (y2[0] == 255).all()
    assert (x2[..., :, :2] == 0).all() and (x2[..., 0, :] == 0).all()


def test_rotation_and_zoom_keep_input_and_label_aligned():
    """A quarter turn of a square maps pixel centres onto pixel centres, so both must agree."""
    y = torch.randint(0, 5, (10, 10), generator=torch.Generator().manual_seed(0))
    x = y.to(torch.float32)[None]
    x2, y2 = Augment(fill=-1.0).apply(x, y, AffineParams(flip=True, scale=1.0, shift=(0.0, 0.0), angle_deg=90.0))
    assert torch.equal(x2[0].round().to(torch.int64), y2)
    assert torch.equal(y2, torch.rot90(torch.flip(y, dims=(-1,)), k=1, dims=(0, 1)))
    # zooming out leaves a void frame around the shrunk content
    x3, y3 = Augment(fill=-1.0).apply(x, y, AffineParams(flip=False, scale=0.5, shift=(0.0, 0.0), angle_deg=0.0))
    assert (y3[0] == 255).all() and (y3[:, -1] == 255).all() and (y3[3:7, 3:7] != 255).all()
    torch.testing.assert_close(x3[0, 0], torch.full((10,), -1.0))
    assert set(torch.unique(y3).tolist()) <= set(torch.unique(y).tolist()) | {255}


def test_random_draws_are_reproducible_and_varied():
    y = asymmetric_label()
    x = as_input(y, (2,))
    aug = Augment(seed=3)
    a = [aug(x, y, generator=torch.Generator().manual_seed(s)) for s in (7, 7, 8)]
    assert torch.equal(a[0][0], a[1][0]) and torch.equal(a[0][1], a[1][1])
    assert not torch.equal(a[0][1], a[2][1])
    first = [Augment(seed=3).sample() for _ in range(2)]
    assert first[0] == first[1]  # same seed, same first draw
    draws = [aug.sample() for _ in range(200)]
    assert {d.flip for d in draws} == {True, False}
    assert all(0.75 <= d.scale <= 1.25 and abs(d.angle_deg) <= 10 and max(map(abs, d.shift)) <= 0.1 for d in draws)


def test_pickles_for_dataloader_workers_after_use():
    aug = Augment(seed=1)
    aug.sample()
    clone = pickle.loads(pickle.dumps(aug))
    assert clone.sample() == Augment(seed=1).sample()  # a fresh generator, same seed


def test_bad_ranges_are_user_errors():
    with pytest.raises(UserError):
        Augment(scale=(1.5, 1.0))
    with pytest.raises(UserError):
        Augment(translate=1.5)
    with pytest.raises(UserError):
        Augment(rotate_deg=-1)
