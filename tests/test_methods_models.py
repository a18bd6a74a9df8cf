"""The method registry and the models: every registered method trains; shapes are as published."""

import math

import pytest
import torch

from mpdsnn.errors import UserError
from mpdsnn.methods import LayerContext, create_method, list_methods, method_options
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


# ---------------------------------------------------------------- recipe cards and their parts

def test_standard_resnet19_is_tets_net_and_trains_one_step():
    """TET's ResNet-19: 12,630,858 parameters at full width (3 -> 10 classes), 18 spiking layers,
    no spike in the downsample, FC layers with bias; one SGD step changes the stem and fc1."""
    from mpdsnn.models.resnet_std import StandardBlock

    full = create_model("resnet19-std", create_method("tet"), T=2, num_classes=10, in_channels=3)
    assert sum(p.numel() for p in full.parameters()) == 12_630_858
    assert len(spiking_layers(full)) == 18
    assert full.stem[0].module.out_channels == 64
    assert full.head.module.bias is not None and full.fc1[0].module.bias is not None
    blocks = [b for b in full.modules() if isinstance(b, StandardBlock)]
    assert not any(spiking_layers(b.downsample) for b in blocks)
    torch.manual_seed(0)
    assert blocks[0].second[1].scale == 1.0
    scaled = create_model("resnet19-std", create_method("fixed"), T=2, num_classes=10,
                          in_channels=3, width=0.125, sum_alpha=2 ** -0.5)
    assert scaled.stages[0].second[1].scale == pytest.approx(2 ** -0.5)
    assert scaled.stages[0].downsample[1].scale == pytest.approx(2 ** -0.5)
    # TET's triangle reaches the bias-free-of-BN fc1, which does not fire yet at initialisation
    model = create_model("resnet19-std", create_method("tet"), T=2, num_classes=10, in_channels=3,
                         width=0.125)
    before = [p.detach().clone() for p in (model.stem[0].module.weight, model.fc1[0].module.weight)]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.rand(2, 4, 3, 32, 32) * 2, torch.tensor([1, 2, 3, 4])
    out = model(x)
    assert out.shape == (2, 4, 10)
    loss = torch.nn.functional.cross_entropy(out.mean(0), y)
    loss.backward()
    opt.step()
    after = (model.stem[0].module.weight, model.fc1[0].module.weight)
    assert torch.isfinite(loss) and all(not torch.equal(b, a) for b, a in zip(before, after))


def test_kaiming_fan_out_init_is_the_official_codes():
    torch.manual_seed(0)
    model = create_model("resnet19", create_method("ds-atgo"), T=1, num_classes=10, in_channels=3,
                         init="kaiming-fan-out")
    w = model.stages[0][0].body[0][0].module.weight  # 128 -> 128, 3x3: fan_out = 1152
    assert w.std().item() == pytest.approx((2 / 1152) ** 0.5, rel=0.02)
    with pytest.raises(UserError, match="init must be one of default, kaiming-fan-out"):
        create_model("convnet", create_method("vanilla"), T=1, num_classes=10, in_channels=1,
                     init="xavier")


def test_builders_encode_their_cards_neurons():
    """What the cards cite is what the builders build."""
    from mpdsnn.methods import method_card
    from mpdsnn.neuron import (FangPLIFDecay, FixedDecay, SmoothSurrogate, StrictFixedWidth,
                               TriangleSurrogate)

    for name in list_methods():
        card, defaults = method_card(name), method_options(name)
        for key, cited in card.neuron.items():
            if key in defaults:
                assert defaults[key] == pytest.approx(cited.value), (name, key)
    node = create_method("tet").neuron(LayerContext(T=2))
    assert isinstance(node.surrogate, TriangleSurrogate) and node.surrogate.gamma == 1.0
    assert node.decay.tau.item() == 0.5 and not node.detach_reset
    assert create_method("tet").norm_scale == 1.0  # TET's tdBatchNorm is plain BN
    node = create_method("plif").neuron(LayerContext(T=2))
    assert isinstance(node.decay, FangPLIFDecay) and node.detach_reset
    assert (type(node.surrogate), node.surrogate.kind, node.surrogate.alpha) == (SmoothSurrogate, "atan", 2.0)
    node = create_method("ltmd").neuron(LayerContext(T=2))
    assert isinstance(node.surrogate, StrictFixedWidth) and isinstance(node.decay, FixedDecay)
    assert node.decay.tau.item() == 0.25
    assert torch.tanh(node.threshold.w).item() == pytest.approx(math.tanh(0.5))


def test_new_neurons_are_not_fused():
    from mpdsnn.neuron import fuse_neurons

    for name in ("tet", "ltmd", "plif"):
        model = create_model("convnet", create_method(name), T=2, num_classes=3, in_channels=1)
        assert len(fuse_neurons(model)) == len(spiking_layers(model)), name
