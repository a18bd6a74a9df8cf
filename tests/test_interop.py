"""DS-ATGO's neuron dropped into SpikingJelly's own networks: swapped, trained, and equal to our
reference neuron on the inputs it saw."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mpdsnn.errors import UserError
from mpdsnn.methods import create_method
from mpdsnn.neuron import SpikingJellyNode, record_traces, reset_states, swap_spikingjelly_neurons
from mpdsnn.neuron.factory import LayerContext

sj = pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import functional, layer, neuron, surrogate  # noqa: E402
from spikingjelly.activation_based.model.parametric_lif_net import MNISTNet  # noqa: E402

T, N = 4, 16


def mnist_net() -> nn.Module:
    """SpikingJelly's PLIF-paper MNIST network (4 LIFNodes), narrow, in multi-step mode."""
    torch.manual_seed(0)
    net = MNISTNet(channels=4, spiking_neuron=neuron.LIFNode, surrogate_function=surrogate.ATan(),
                   detach_reset=True)
    functional.set_step_mode(net, "m")
    return net


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(N, 1, 28, 28, generator=g)
    return x.unsqueeze(0).repeat(T, 1, 1, 1, 1), torch.randint(0, 10, (N,), generator=g)


def loss_of(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(2)  # the same dropout masks on every call
    functional.reset_net(net)
    return F.cross_entropy(net(x).mean(0), y)


def test_every_lif_of_a_spikingjelly_network_is_swapped_and_trains():
    net = mnist_net()
    names = swap_spikingjelly_neurons(net, create_method("ds-atgo"), T=T)
    assert names == ["conv_fc.2", "conv_fc.6", "conv_fc.11", "conv_fc.14"]
    assert not any(isinstance(m, neuron.LIFNode) for m in net.modules())
    assert all(net.get_submodule(n).step_mode == "m" for n in names)
    x, y = batch()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    before = loss_of(net, x, y)
    opt.zero_grad()
    before.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"no gradient reaches {name}"
    assert any(".node.decay.w" in n for n, _ in net.named_parameters())  # our learnable decay trains
    opt.step()
    for _ in range(4):
        opt.zero_grad()
        loss_of(net, x, y).backward()
        opt.step()
    after = loss_of(net, x, y).item()
    assert after < before.item() - 0.05, (before.item(), after)


def test_swapped_layers_forward_equals_our_reference_neuron():
    net = mnist_net()
    names = swap_spikingjelly_neurons(net, create_method("ds-atgo"), T=T)  # fused backend
    seen: dict[str, tuple[nn.Module, torch.Tensor, torch.Tensor]] = {}

    def before(module, inputs):  # the layer's state (AT running thresholds) before this forward
        seen[id(module)] = (copy.deepcopy(module.node),)

    def after(module, inputs, output):
        seen[id(module)] += (inputs[0].detach(), output.detach())

    for name in names:
        net.get_submodule(name).register_forward_pre_hook(before)
        net.get_submodule(name).register_forward_hook(after)
    x, _ = batch()
    with torch.no_grad():  # settle BN and AT running statistics, so eval mode fires too
        for _ in range(20):
            functional.reset_net(net)
            net(x)
    rates: dict[bool, list[float]] = {True: [], False: []}
    for mode in (True, False):  # training: batch MPD statistics; eval: running thresholds
        net.train(mode)
        functional.reset_net(net)
        net(x)
        for name in names:
            reference, inputs, output = seen[id(net.get_submodule(name))]
            reference.backend = "reference"
            expected = reference(inputs)
            assert expected.shape == (T, N, *inputs.shape[2:])
            assert torch.equal(output, expected), (name, mode)
            rates[mode].append(output.mean().item())
    assert all(0 < r < 1 for r in rates[True])  # every layer fires, and not everywhere
    assert sum(rates[False]) > 0  # eval (running thresholds) is compared on real spikes too


def test_single_step_mode_equals_multi_step_in_values_and_gradients():
    node = create_method("ds-atgo").neuron(LayerContext(T=T))
    multi = SpikingJellyNode(copy.deepcopy(node), T, step_mode="m")
    single = SpikingJellyNode(copy.deepcopy(node), T, step_mode="s")
    x = torch.randn(T, 8, 3, 5, 5)
    xm, xs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_m = multi(xm)
    out_s = torch.stack([single(xs[t]) for t in range(T)])
    assert torch.equal(out_m, out_s)
    (out_m * torch.arange(1.0, T + 1).view(T, 1, 1, 1, 1)).sum().backward()
    (out_s * torch.arange(1.0, T + 1).view(T, 1, 1, 1, 1)).sum().backward()
    assert xm.grad.abs().sum() > 0
    torch.testing.assert_close(xs.grad, xm.grad)
    torch.testing.assert_close(single.node.decay.w.grad, multi.node.decay.w.grad)
    torch.testing.assert_close(single.node.threshold.running, multi.node.threshold.running)


def test_single_step_without_reset_names_reset_net():
    net = nn.Sequential(layer.Linear(6, 6), neuron.LIFNode())  # single-step, SpikingJelly's default
    functional.reset_net(net)  # SpikingJelly now caches which modules to reset: the old LIFNode,
    old = net[1]  # which stays alive while anything (a monitor, a list) still holds it
    swap_spikingjelly_neurons(net, create_method("vanilla"), T=2)
    x = torch.randn(4, 6)
    for _ in range(2):
        net(x)
    with pytest.raises(UserError, match=r"T=2 .*functional\.reset_net\(net\)"):
        net(x)
    functional.reset_net(net)  # resets the swapped layer, not the cached old one
    assert net(x).shape == (4, 6) and net[1]._t == 1 and old is not net[1]


def test_detach_net_keeps_the_state_but_cuts_the_graph():
    net = nn.Sequential(neuron.LIFNode())
    swap_spikingjelly_neurons(net, create_method("vanilla"), T=T, backend="reference")
    reference = SpikingJellyNode(copy.deepcopy(net[0].node), T, step_mode="s")
    x = (torch.rand(3, 4, 5) * 2).requires_grad_()
    outputs = [net(x[0]), net(x[1])]
    functional.detach_net(net)
    outputs.append(net(x[2]))
    assert torch.equal(torch.stack(outputs), torch.stack([reference(x[t]) for t in range(3)]))
    grad = torch.autograd.grad(outputs[2].sum(), x, allow_unused=True)[0]
    assert grad[2].abs().sum() > 0 and grad[:2].abs().sum() == 0


def test_probes_see_the_swapped_layers_and_at_holds_the_firing_rate():
    net = mnist_net()
    swap_spikingjelly_neurons(net, create_method("ds-atgo"), T=T)
    with torch.no_grad(), record_traces(net) as layers:
        net(batch()[0])
    assert len(layers) == 4
    rates = [node.trace.spikes.mean().item() for _, node in layers]
    # AT fires at mean + std of each timestep's potentials: about 1 - Phi(1) = 15.9 % of them
    # in every layer of SpikingJelly's network (SpikingJelly's LIFNode fires at a fixed 1).
    assert all(0.12 < r < 0.20 for r in rates), rates


def test_the_bn_before_each_layer_reaches_the_method():
    net = mnist_net()
    swap_spikingjelly_neurons(net, create_method("mpd-agl"), T=T)
    bn = net.conv_fc[1]
    width = net.conv_fc[2].node.surrogate
    assert width._bn[0] is bn  # MPD-AGL's width follows the BN defined just before the layer


def test_snntorch_leaky_layers_are_swapped_and_train_in_its_per_timestep_loop():
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), snn.Leaky(beta=0.5, init_hidden=True),
                        nn.Flatten(), nn.Linear(8 * 8 * 8, 32), snn.Leaky(beta=0.5, init_hidden=True),
                        nn.Linear(32, 10))
    assert swap_spikingjelly_neurons(net, create_method("ds-atgo"), T=T, kinds=(snn.Leaky,)) == ["1", "4"]
    reference = copy.deepcopy(net[1].node)
    x, y = torch.rand(T, N, 1, 8, 8), torch.arange(N) % 10
    out = torch.stack([net(x[t]) for t in range(T)])  # snnTorch's loop: one timestep per call
    F.cross_entropy(out.mean(0), y).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    reference.backend = "reference"
    currents = torch.stack([net[0](x[t]) for t in range(T)]).detach()
    with pytest.raises(UserError, match=r"mpdsnn\.neuron\.reset_states\(net\)"):
        net(x[0])  # T steps taken: the layer refuses a fifth
    reset_states(net)
    first_layer = torch.stack([net[1](currents[t]) for t in range(T)])
    assert torch.equal(first_layer, reference(currents))
    assert 0 < first_layer.mean() < 1


def test_a_network_without_lif_nodes_is_an_error():
    with pytest.raises(UserError, match="no LIFNode in this network"):
        swap_spikingjelly_neurons(nn.Sequential(nn.Linear(2, 2)), create_method("ds-atgo"), T=T)
    with pytest.raises(UserError, match="is itself a neuron"):
        swap_spikingjelly_neurons(neuron.LIFNode(), create_method("ds-atgo"), T=T)
