"""The compiled backend against the reference LIFNode: same spikes bit for bit, same BPTT
gradients and AT buffers, its compiled code cached in the project, and a clean fall-back."""

import copy
import functools
import logging
import os
from pathlib import Path

import pytest
import torch
from torch import nn

import mpdsnn
from mpdsnn.bench.measure import saved_bytes
from mpdsnn.methods import LayerContext, create_method
from mpdsnn.models import create_model
from mpdsnn.neuron import (
    AdaptiveThreshold,
    FangPLIFDecay,
    FixedThreshold,
    FixedWidth,
    LearnableDecay,
    LearnableThreshold,
    LIFNode,
)
from mpdsnn.neuron import compiled
from mpdsnn.neuron.fused import can_fuse, fuse_neurons
from neuron_pairs import VARIANTS, inputs, layer_node, pair
from neuron_pairs import assert_same as assert_same_any

# AT's thresholds come from the charge kernel's sums (another order than the reference's sum
# and dot): float64 agrees to ~1e-15; every other buffer bit for bit.
assert_same = functools.partial(assert_same_any, running_rtol=1e-12)


@pytest.fixture(scope="module", autouse=True)
def _compiler():
    """Compile the kernels once (or load them from the on-disk cache); skip without a compiler."""
    node = create_method("ds-atgo").neuron(LayerContext(T=2)).double()
    fuse_neurons(node, "compiled")
    node(torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)).sum().backward()
    if not compiled.available():
        pytest.skip(f"torch.compile does not work here: {compiled._Kernel.failed}")


@pytest.mark.parametrize("T", [1, 2, 4])
@pytest.mark.parametrize("name,options", VARIANTS, ids=lambda v: str(v))
def test_compiled_matches_reference_in_training_and_eval(name, options, T):
    ref, fast = pair(layer_node(name, options, T), "compiled")
    if not can_fuse(ref):
        pytest.skip(f"{name}'s neuron is not rectangular: it stays on the reference")
    for seed in range(3):  # repeated steps: AT's running thresholds must stay the same
        assert_same(ref, fast, *inputs(T, seed))
    ref.eval()
    fast.eval()
    x, grad = inputs(T, 7)
    assert_same(ref, fast, x, grad)
    with torch.no_grad():
        assert torch.equal(ref(x), fast(x))


@pytest.mark.parametrize("name", ["fixed", "vanilla", "tet", "ltmd", "mpd-agl"])
def test_boundaries_are_the_references(name):
    """Potentials exactly at the threshold fire and exactly at the window's edge get gradient:
    inputs on a grid of quarters hit both for Vth = 1 and k = 1."""
    ref, fast = pair(layer_node(name, {}, 2), "compiled")
    grid = torch.arange(0, 9, dtype=torch.float64) / 4
    x = grid[torch.randint(0, 9, (2, 4, 3, 6, 6))]
    assert (x[0] == 1.0).any() and (x[0] == 1.5).any()
    assert_same(ref, fast, x, torch.ones_like(x))


def test_learnable_input_scale_and_decay_get_the_references_gradients():
    ref, fast = pair(LIFNode(FangPLIFDecay(2.0), FixedThreshold(1.0), FixedWidth(1.0)).double(), "compiled")
    assert_same(ref, fast, *inputs(4, 2))


def test_learnable_threshold_and_decay_get_the_references_gradients():
    """Both gradient sums (tau and theta) accumulate inside the backward kernels."""
    node = LIFNode(LearnableDecay(0.3), LearnableThreshold(0.6), FixedWidth(1.0)).double()
    ref, fast = pair(node, "compiled")
    assert_same(ref, fast, *inputs(4, 5))


def test_ds_atgo_where_the_mean_dwarfs_the_spread_takes_the_centred_variance():
    """Potentials around 1e4 with spread 0.5: the one-pass variance from the kernel's sums
    cancels, so the host decision must take the centred pass as the reference does."""
    ref, fast = pair(layer_node("ds-atgo", {}, 4), "compiled")
    x, grad = inputs(4, 3)
    assert_same(ref, fast, x * 0.4 + 1e4, grad)


def test_compiled_ds_atgo_decides_on_the_host_without_the_tensor_policy(monkeypatch):
    """On CPU the compiled DS-ATGO layer turns the kernel's sums into AT's threshold in floats
    (HostAdaptiveThreshold): AdaptiveThreshold.forward, ten 0-d tensor ops a step, never runs;
    the fused backend still runs it once per timestep."""
    calls = []
    original = AdaptiveThreshold.forward
    monkeypatch.setattr(AdaptiveThreshold, "forward",
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    x, grad = inputs(4, 1)
    for backend, expected in (("compiled", 0), ("fused", 4)):
        calls.clear()
        node = layer_node("ds-atgo", {}, 4)
        fuse_neurons(node, backend)
        node(x.requires_grad_()).backward(grad)
        assert len(calls) == expected, backend


def test_fewer_timesteps_than_built_update_only_those_running_thresholds():
    """A DS-ATGO layer built for T = 4 and run on 2 timesteps: the compiled backend's one
    running update (HostAdaptiveThreshold.finish) touches thresholds 0 and 1 as the reference
    does, and leaves 2 and 3 at Vth."""
    ref, fast = pair(layer_node("ds-atgo", {}, 4), "compiled")
    for seed in range(2):
        assert_same(ref, fast, *inputs(2, seed))
    running = fast.threshold.running
    assert running[:2].ne(1.0).all() and running[2:].eq(1.0).all(), running


def test_float32_spikes_are_bitwise_the_references():
    """In float32 the charge's rounding matters: the compiled kernel must not fuse it into FMAs."""
    ref = create_method("fixed").neuron(LayerContext(T=4))
    fast = copy.deepcopy(ref)
    fuse_neurons(fast, "compiled")
    x = torch.randn(4, 16, 32, 9, generator=torch.Generator().manual_seed(3)) + 0.5
    assert torch.equal(ref(x), fast(x))


def test_float32_ds_atgo_thresholds_agree_to_an_ulp():
    """DS-ATGO's statistics come from the charge kernel's sums: in float32 each threshold is
    within a few ulps of the reference's, so almost no spike differs (none on this input)."""
    ref = create_method("ds-atgo").neuron(LayerContext(T=4))
    fast = copy.deepcopy(ref)
    fuse_neurons(fast, "compiled")
    x = torch.randn(4, 64, 32, 9, generator=torch.Generator().manual_seed(3)) + 0.5
    s_ref, s_fast = ref(x), fast(x)
    torch.testing.assert_close(fast.threshold.running, ref.threshold.running, rtol=1e-6, atol=0)
    assert ref.threshold.running[1:].ne(1.0).all()  # every timestep's threshold was updated
    differ = s_ref.ne(s_fast)
    assert differ.float().mean() < 1e-5, f"{int(differ.sum())} of {differ.numel()} spikes differ"


def test_compiled_model_training_step_matches_reference_model():
    method = create_method("ds-atgo")
    ref = create_model("convnet", method, T=2, num_classes=4, in_channels=1, width=4,
                       hidden=16).double()
    fast = copy.deepcopy(ref)
    assert fuse_neurons(fast, "compiled") == []
    x = torch.rand(2, 3, 1, 8, 8, dtype=torch.float64) * 2
    y = torch.tensor([0, 1, 3])
    for model in (ref, fast):
        method.loss(model(x), y).backward()
    for (name, p_ref), p_fast in zip(ref.named_parameters(), fast.parameters()):
        torch.testing.assert_close(p_fast.grad, p_ref.grad, rtol=0, atol=1e-6, msg=name)


def test_compiled_saves_only_the_potentials():
    T, x = 4, torch.randn(4, 8, 16, 8, 8).requires_grad_()
    node = create_method("ds-atgo").neuron(LayerContext(T=T))
    fuse_neurons(node, "compiled")
    exclude = [*node.parameters(), *node.buffers()]
    potentials = x.numel() * x.element_size()
    assert potentials <= saved_bytes(lambda: node(x), exclude) <= potentials + 16


def test_new_layer_shapes_and_timesteps_compile_nothing_new():
    """One compilation serves every layer: the kernels take flat tensors of symbolic length
    (after the first two shapes, whose size classes inductor specialises)."""
    from torch._dynamo.utils import counters

    def train_step(T: int, shape: tuple[int, ...]) -> None:
        node = create_method("ds-atgo").neuron(LayerContext(T=T))
        fuse_neurons(node, "compiled")
        node((torch.randn(T, *shape) + 0.5).requires_grad_()).sum().backward()

    for T, shape in [(2, (4, 16, 8, 8)), (3, (8, 32, 6, 6))]:  # the size classes, compiled once
        train_step(T, shape)
    compiled_before = counters["stats"]["unique_graphs"]
    for T, shape in [(4, (4, 16, 8, 8)), (6, (2, 64, 9, 9)), (2, (5, 4096)), (5, (3, 8, 50))]:
        train_step(T, shape)
    assert counters["stats"]["unique_graphs"] == compiled_before


def test_compiled_code_is_cached_in_the_project(monkeypatch):
    root = Path(mpdsnn.__file__).resolve().parents[1]
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    compiled.use_project_cache()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(root / "build" / "inductor")
    import torch._inductor.config as inductor_config

    assert inductor_config.fx_graph_cache
    torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)  # sets inductor's own default
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", compiled._inductor_default())
    compiled.use_project_cache()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(root / "build" / "inductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/somewhere/else")
    compiled.use_project_cache()  # a user's choice is kept
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/somewhere/else"


def test_a_failed_compilation_warns_once_and_runs_fused(monkeypatch, caplog):
    def broken(fn, **_):
        def run(*args):
            raise RuntimeError("no C++ compiler found\nmore detail")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(compiled._Kernel, "failed", None)
    for kernel in compiled.KERNELS:
        monkeypatch.setattr(kernel, "compiled", None)
    ref, fast = pair(layer_node("ds-atgo", {}, 4), "compiled")
    with caplog.at_level(logging.WARNING, logger="mpdsnn.neuron.compiled"):
        for seed in range(2):
            assert_same(ref, fast, *inputs(4, seed))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "RuntimeError: no C++ compiler found" in warnings[0]
    assert "falls back to the fused backend" in warnings[0]
    assert not compiled.available()
