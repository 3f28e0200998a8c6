"""Spiking-DeepLab and Spiking-FCN: sizes, state, layouts and the paper's numbers."""

import pytest
import torch

from edge_snn.errors import UserError
from edge_snn.models import ARCHITECTURES, build_model
from edge_snn.models.bntt import BNTT

from model_fixtures import randomized


def spikes_in(model, steps, batch, height, width, p=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, model.in_channels, height, width, generator=g) < p).float()


def test_deeplab_paper_numbers():
    model = build_model("dl-vgg9", in_channels=3, num_classes=21)
    assert model.conv_weight_count() == 4_115_136
    macs = model.macs_per_step(64, 64)
    assert macs == 1_371_537_408  # "about 1.37 G MAC per timestep at 64x64"


def test_fcn_weight_count_is_about_13_5_million():
    model = build_model("fcn-vgg9", in_channels=3, num_classes=21)
    assert 13.4e6 < model.conv_weight_count() < 13.7e6


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("size", [(200, 346), (37, 53), (64, 64)])
def test_any_input_size_and_state_spec(arch, size):
    model = randomized(build_model(arch, in_channels=2, num_classes=6, timesteps=2, width=0.25))
    h, w = size
    with torch.no_grad():
        result = model.run(spikes_in(model, 2, 1, h, w))
    assert result.logits.shape == (1, 6, h, w)
    spec = model.state_spec(1, h, w)
    assert {k: tuple(v.shape) for k, v in result.state.tensors.items()} == spec
    assert result.state.step == 2
    assert list(result.spike_counts) == model.spiking_layers


def test_full_width_deeplab_runs_at_ddd17_size():
    model = build_model("dl-vgg9", in_channels=2, num_classes=6, timesteps=1).eval()
    with torch.no_grad():
        logits = model(spikes_in(model, 1, 1, 200, 346))
    assert logits.shape == (1, 6, 200, 346)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_layouts_and_stepping_agree(arch):
    model = randomized(build_model(arch, in_channels=2, num_classes=4, timesteps=6, width=0.25))
    x = spikes_in(model, 6, 2, 21, 30)
    with torch.no_grad():
        time_major = model.run(x, layout="time-major")
        layer_major = model.run(x, layout="layer-major")
        state = model.initial_state(2, 21, 30)
        for t in range(6):
            logits, state = model.forward_step(x[t], state)
        halves = model.run(x[3:], model.run(x[:3]).state)
    assert sum(v.item() for v in time_major.spike_counts.values()) > 0
    for other in (layer_major.logits, logits, halves.logits):
        assert torch.allclose(time_major.logits, other, atol=1e-5)
    assert {k: v.item() for k, v in time_major.spike_counts.items()} == {k: v.item() for k, v in layer_major.spike_counts.items()}


def test_recorded_spikes_are_binary_and_counted():
    model = randomized(build_model("dl-vgg9", in_channels=2, num_classes=4, timesteps=3, width=0.25))
    with torch.no_grad():
        result = model.run(spikes_in(model, 3, 1, 16, 16), record_spikes=True)
    for layer in model.spiking_layers:
        steps = result.spikes[layer]
        assert len(steps) == 3
        stacked = torch.stack(steps)
        assert set(stacked.unique().tolist()) <= {0.0, 1.0}
        assert stacked.sum().item() == result.spike_counts[layer].item()


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_ann_twin(arch):
    ann = build_model(arch, in_channels=3, num_classes=5, width=0.25, spiking=False).eval()
    assert not any(isinstance(m, BNTT) and m.timesteps != 1 for m in ann.modules())
    with torch.no_grad():
        out = ann(torch.rand(2, 3, 33, 47))
    assert out.shape == (2, 5, 33, 47)
    snn = build_model(arch, in_channels=3, num_classes=5, width=0.25)
    assert ann.conv_weight_count() == snn.conv_weight_count()


def test_bntt_steps_past_training():
    model = randomized(build_model("dl-vgg9", in_channels=2, num_classes=4, timesteps=2, width=0.25))
    x = spikes_in(model, 3, 1, 8, 8)
    with pytest.raises(UserError, match="--bn-beyond"):
        model.run(x)
    model.set_bn_beyond("last")
    assert model.run(x).state.step == 3
    with pytest.raises(UserError):
        model.set_bn_beyond("sometimes")


def test_bad_builder_arguments():
    with pytest.raises(UserError, match="dl-vgg9"):
        build_model("resnet")
    with pytest.raises(UserError, match="surrogate"):
        build_model("dl-vgg9", surrogate="magic")
    model = build_model("dl-vgg9", in_channels=2, width=0.25)
    with pytest.raises(UserError, match="2 input channels"):
        model.run(torch.zeros(1, 1, 3, 8, 8))
