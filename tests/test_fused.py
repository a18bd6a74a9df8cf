"""The fused LIF against the reference LIFNode: same spikes bit for bit, same BPTT gradients."""

import copy

import pytest
import torch
from torch import nn

from mpdsnn.bench.measure import saved_bytes
from mpdsnn.errors import UserError
from mpdsnn.methods import LayerContext, create_method
from mpdsnn.models import create_model
from mpdsnn.neuron import (
    FangPLIFDecay,
    FixedThreshold,
    FixedWidth,
    LIFNode,
    mpd_statistics,
    record_traces,
)
from mpdsnn.neuron.fused import can_fuse, fuse_neurons, fused_lif
from mpdsnn.neuron.threshold import variance_from_sums
from neuron_pairs import VARIANTS, assert_same, inputs, layer_node, pair


@pytest.mark.parametrize("T", [1, 2, 4])
@pytest.mark.parametrize("name,options", VARIANTS, ids=lambda v: str(v))
def test_fused_matches_reference_in_training(name, options, T):
    ref, fused = pair(layer_node(name, options, T), "fused")
    if not can_fuse(ref):
        pytest.skip(f"{name}'s neuron is not fusable: see test_ineligible_methods_fall_back...")
    for seed in range(3):  # repeated steps: AT's running thresholds must stay identical
        assert_same(ref, fused, *inputs(T, seed))


@pytest.mark.parametrize("T", [1, 2, 4])
@pytest.mark.parametrize("name,options", VARIANTS, ids=lambda v: str(v))
def test_fused_matches_reference_in_eval(name, options, T):
    ref, fused = pair(layer_node(name, options, T), "fused")
    if not can_fuse(ref):
        pytest.skip(f"{name}'s neuron is not fusable")
    assert_same(ref, fused, *inputs(T, 0))  # a training step moves the running thresholds
    ref.eval()
    fused.eval()
    x, grad = inputs(T, 1)
    assert_same(ref, fused, x, grad)
    with torch.no_grad():
        assert torch.equal(ref(x), fused(x))


@pytest.mark.parametrize("name", ["fixed", "vanilla", "tet", "ltmd", "mpd-agl"])
def test_boundaries_are_the_references(name):
    """Potentials exactly at the threshold fire (H(0) = 1) and exactly at the window's edge get
    gradient (|v| <= k/2): inputs on a grid of quarters hit both for Vth = 1 and k = 1."""
    T = 2
    ref, fused = pair(layer_node(name, {}, T), "fused")
    grid = torch.arange(0, 9, dtype=torch.float64) / 4  # 0, 0.25, ..., 2
    x = grid[torch.randint(0, 9, (T, 4, 3, 6, 6))]
    assert (x[0] == 1.0).any() and (x[0] == 1.5).any()
    assert_same(ref, fused, x, torch.ones_like(x))


def test_running_threshold_update_is_the_references():
    ref, fused = pair(layer_node("ds-atgo", {"momentum": 0.3}, 4), "fused")
    start = ref.threshold.running.clone()
    assert_same(ref, fused, *inputs(4, 5))
    assert not torch.equal(fused.threshold.running, start)
    assert torch.equal(fused.threshold.running, ref.threshold.running)


def test_learnable_input_scale_and_decay_get_the_references_gradients():
    """Fang's PLIF decay with a rectangular surrogate: tau and the input scale both learn."""
    ref, fused = pair(LIFNode(FangPLIFDecay(2.0), FixedThreshold(1.0), FixedWidth(1.0)).double(), "fused")
    assert can_fuse(ref)
    assert_same(ref, fused, *inputs(4, 2))


def test_ineligible_methods_fall_back_to_the_reference():
    model = create_model("convnet", create_method("plif"), T=2, num_classes=3, in_channels=1)
    skipped = fuse_neurons(model)
    assert len(skipped) == 5 and all(isinstance(model.get_submodule(n), LIFNode) for n in skipped)
    node = model.get_submodule(skipped[0])
    assert not can_fuse(node)
    ref = copy.deepcopy(node)
    ref.backend = "reference"
    x, grad = inputs(2, 3)
    assert_same(ref.double(), node.double(), x, grad)


def test_unknown_backend_is_a_user_error():
    with pytest.raises(UserError, match="valid backends: reference, fused"):
        fuse_neurons(nn.Sequential(), "cuda-kernel")


def test_fused_saves_only_the_potentials_and_less_than_the_reference():
    T, x = 4, torch.randn(4, 8, 16, 8, 8).requires_grad_()
    ref, fused = pair(create_method("ds-atgo").neuron(LayerContext(T=T)), "fused")
    exclude = [*ref.parameters(), *ref.buffers(), *fused.parameters(), *fused.buffers()]
    saved_ref = saved_bytes(lambda: ref(x), exclude)
    saved_fused = saved_bytes(lambda: fused(x), exclude)
    potentials = x.numel() * x.element_size()  # U(t) for all t; plus sigmoid(w)'s 0-d output
    assert potentials <= saved_fused <= potentials + 16
    assert saved_fused * 3 < saved_ref


def test_recording_falls_back_so_probes_still_see_traces():
    T = 3
    ref, fused = pair(layer_node("ds-atgo", {}, T), "fused")
    x, _ = inputs(T, 4)
    with record_traces(ref):
        ref(x)
    with record_traces(fused):
        fused(x)
    assert fused.trace is not None
    assert torch.equal(fused.trace.u, ref.trace.u) and torch.equal(fused.trace.theta, ref.trace.theta)


def test_fused_model_training_step_matches_reference_model():
    """A whole network: outputs, every parameter gradient and BN/AT buffers agree."""
    method = create_method("ds-atgo")
    ref = create_model("convnet", method, T=2, num_classes=4, in_channels=1, width=4,
                       hidden=16).double()
    fused = copy.deepcopy(ref)
    assert fuse_neurons(fused) == []
    x = torch.rand(2, 3, 1, 8, 8, dtype=torch.float64) * 2
    y = torch.tensor([0, 1, 3])
    for model in (ref, fused):
        method.loss(model(x), y).backward()
    for (name, p_ref), p_fused in zip(ref.named_parameters(), fused.parameters()):
        torch.testing.assert_close(p_fused.grad, p_ref.grad, rtol=0, atol=1e-6, msg=name)
    for (name, b_ref), b_fused in zip(ref.named_buffers(), fused.buffers()):
        assert torch.equal(b_ref, b_fused), name


def test_direct_call_without_grad_runs_outside_autograd():
    node = create_method("fixed").neuron(LayerContext(T=2))
    with torch.no_grad():
        out = fused_lif(node, torch.randn(2, 5, 7))
    assert out.grad_fn is None and out.shape == (2, 5, 7)
    assert set(out.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n,mean,std", [(1 << 20, 0.4, 1.2), (300_000, -0.3, 0.05),
                                        (1 << 20, 50.0, 0.5), (5, 2.0, 1.0)])
@pytest.mark.parametrize("given", [False, True], ids=["own-sums", "kernel-sums"])
def test_one_pass_statistics_equal_mean_and_std(n, mean, std, dtype, given):
    """Sum and sum of squares give mean() and std() to float tolerance, also where the mean
    dwarfs the spread (mean / std = 100: the centred pass must take over). The same holds for
    sums handed in as floats, as the compiled charge kernel does (here summed in float64 and
    rounded to the layer's dtype), turned into statistics in float64 as the compiled backend's
    HostAdaptiveThreshold does."""
    u = (torch.randn(n, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
         * std + mean).to(dtype).reshape(1, 1, -1)
    if given:
        total, squares = (s.to(dtype).item() for s in (u.double().sum(), u.double().square().sum()))
        got_mean = torch.tensor(total / n, dtype=torch.float64)
        got_std = torch.tensor(variance_from_sums(total, squares, u, total / n) ** 0.5,
                               dtype=torch.float64)
    else:
        got_mean, got_std = mpd_statistics(u)
        assert got_mean.dtype == got_std.dtype == dtype
    exact = u.double()
    tol = {"rtol": 2e-6, "atol": 0} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 0}
    torch.testing.assert_close(got_mean.double(), exact.mean(), **tol)
    torch.testing.assert_close(got_std.double(), exact.std(), **tol)
    torch.testing.assert_close(got_std.to(dtype), u.std(), **tol)


def test_statistics_of_a_constant_layer_are_its_value_and_zero():
    u = torch.full((4, 1000), 0.3)
    got_mean, got_std = mpd_statistics(u)
    assert got_mean.item() == pytest.approx(0.3) and got_std.item() == 0.0


def test_the_backward_dot_products_copy_no_channels_last_slice():
    """The fused backward's sums over a step read channels-last slices in place (issue 16:
    ``flatten()`` copied each one) and equal the plain dot product."""
    from mpdsnn.neuron.fused import _dense_1d, _dot

    x = torch.randn(3, 4, 8, 5, 5).to(memory_format=torch.channels_last_3d)[1]  # a step slice
    y = torch.randn(4, 8, 5, 5).to(memory_format=torch.channels_last)
    z = torch.empty_like(y).copy_(torch.randn(4, 8, 5, 5))  # empty_like keeps channels-last
    assert not y.is_contiguous() and _dense_1d(y).data_ptr() == y.data_ptr()
    assert _dot(y, z).item() == pytest.approx((y * z).sum().item(), rel=1e-5)
    assert _dense_1d(x) is None or _dense_1d(x).data_ptr() == x.data_ptr()
    assert _dot(x, x).item() == pytest.approx((x * x).sum().item(), rel=1e-5)
    gapped = torch.randn(4, 8, 6, 6)[..., :5, :5]  # not dense: falls back to a copy, same value
    assert _dense_1d(gapped) is None
    assert _dot(gapped, gapped).item() == pytest.approx((gapped * gapped).sum().item(), rel=1e-5)
