"""The method registry and the models: every registered method trains; shapes are as published."""

import pytest
import torch

from mpdsnn.errors import UserError
from mpdsnn.methods import create_method, list_methods, method_options
from mpdsnn.models import create_model, list_models
from mpdsnn.neuron import AdaptiveThreshold, spiking_layers

REQUIRED = {"ds-atgo", "vanilla", "at", "tgo", "fixed", "plif", "tet", "mpd-agl", "ltmd"}


def test_registry_holds_the_method_family_and_the_baselines_from_entry_points():
    assert REQUIRED <= set(list_methods())


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(UserError) as err:
        create_method("ds-atg0")
    msg = str(err.value)
    assert "unknown method 'ds-atg0'" in msg and "ds-atgo" in msg and "mpd-agl" in msg


def test_unknown_method_option_lists_the_valid_options():
    with pytest.raises(UserError, match=r"unknown option\(s\) fcc for method 'ds-atgo'.*fc"):
        create_method("ds-atgo", fcc=1.0)


def test_bad_method_option_value_is_a_user_error():
    with pytest.raises(UserError, match="tgo_rule must be one of paper, code"):
        create_method("ds-atgo", tgo_rule="papers")


def test_method_records_its_resolved_options():
    m = create_method("tet", lam=0.05)
    assert m.name == "tet" and m.options["lam"] == 0.05 and m.options["phi"] == 1.0
    assert method_options("ds-atgo")["fc"] == 1.0


@pytest.mark.parametrize("name", sorted(REQUIRED | set(list_methods())))
def test_every_method_trains_a_small_model(name):
    """A few full-batch steps on a fixed random batch: the loss is finite and goes down."""
    torch.manual_seed(0)
    method = create_method(name)
    model = create_model("convnet", method, T=2, num_classes=4, in_channels=1, width=4, hidden=32)
    x = torch.rand(32, 1, 8, 8).unsqueeze(0).repeat(2, 1, 1, 1, 1)
    y = torch.randint(0, 4, (32,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss = method.loss(model(x), y, 0.0)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert min(losses[-5:]) < losses[0] - 0.05, losses


def test_resnet19_has_twenty_spiking_layers_and_the_published_shape():
    method = create_method("ds-atgo")
    full = create_model("resnet19", method, T=2, num_classes=10, in_channels=3)
    assert len(spiking_layers(full)) == 20
    convs = [m for m in full.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs[:1]] == [128]
    assert max(c.out_channels for c in convs) == 512
    fcs = [m for m in full.modules() if isinstance(m, torch.nn.Linear)]
    assert [(f.in_features, f.out_features, f.bias is None) for f in fcs] == [(512, 256, True), (256, 10, True)]
    small = create_model("resnet19", method, T=2, num_classes=10, in_channels=3, width=0.125)
    assert small(torch.randn(2, 2, 3, 32, 32)).shape == (2, 2, 10)
    assert all(isinstance(n.threshold, AdaptiveThreshold) for _, n in spiking_layers(small))


def test_vggsnn_maps_event_frames_to_ten_logits():
    model = create_model("vggsnn", create_method("vanilla"), T=3, num_classes=10, in_channels=2, width=0.125)
    assert len(spiking_layers(model)) == 8
    assert model(torch.randn(3, 2, 2, 48, 48)).shape == (3, 2, 10)
    full = create_model("vggsnn", create_method("vanilla"), T=10, num_classes=10, in_channels=2)
    head = [m for m in full.modules() if isinstance(m, torch.nn.Linear)][-1]
    assert head.in_features == 512 * 3 * 3 and head.bias is not None


def test_resnet18_runs_on_imagenet_sized_input():
    model = create_model("resnet18", create_method("vanilla"), T=1, num_classes=1000, in_channels=3, width=0.0625)
    assert model(torch.randn(1, 1, 3, 64, 64)).shape == (1, 1, 1000)


def test_unknown_model_and_bad_T_are_user_errors():
    with pytest.raises(UserError, match="unknown model 'resnet20'.*resnet19"):
        create_model("resnet20", create_method("vanilla"), T=2, num_classes=10, in_channels=3)
    with pytest.raises(UserError, match="T must be a positive"):
        create_model("convnet", create_method("vanilla"), T=0, num_classes=10, in_channels=1)
    assert set(list_models()) >= {"resnet19", "resnet18", "vggsnn", "convnet"}


def test_threshold_dependent_bn_scales_normalised_input():
    from mpdsnn.models.layers import TemporalBatchNorm
    torch.manual_seed(0)
    bn = TemporalBatchNorm(3, spatial_dims=2, scale=0.5)
    with torch.no_grad():
        bn.bn.bias.fill_(0.1)
    x = torch.randn(2, 8, 3, 4, 4) * 3 + 1
    y = bn(x)
    xhat = (x - x.mean(dim=(0, 1, 3, 4), keepdim=True)) / torch.sqrt(x.var(dim=(0, 1, 3, 4), unbiased=False, keepdim=True) + 1e-5)
    assert torch.allclose(y, 0.5 * xhat + 0.1, atol=1e-5)


def test_mpd_agl_uses_vth_half_and_scaled_bn():
    method = create_method("mpd-agl")
    assert method.norm_scale == 0.5
    model = create_model("convnet", method, T=2, num_classes=10, in_channels=1)
    node = spiking_layers(model)[0][1]
    assert node.threshold.vth.item() == 0.5


@pytest.mark.parametrize("name, options, message", [
    ("ltmd", {"init_vth": "x"}, "option init_vth of method 'ltmd' must be a number"),
    ("ds-atgo", {"learnable_decay": 1}, "must be true or false"),
    ("ds-atgo", {"min_theta": 0}, "min_theta must be positive"),
    ("fixed", {"width": -1}, "surrogate width must be positive"),
])
def test_bad_method_option_values_are_user_errors(name, options, message):
    with pytest.raises(UserError, match=message):
        create_method(name, **options)
