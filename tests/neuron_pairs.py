"""A reference LIFNode beside a copy on a faster backend, and the checks that they agree:
shared by tests/test_fused.py and tests/test_compiled.py."""

from __future__ import annotations

import copy

import torch
from torch import nn

from mpdsnn.methods import LayerContext, create_method, list_methods
from mpdsnn.neuron.fused import fuse_neurons

# Registry methods plus the option variants that take other code paths in the fast neurons.
VARIANTS = [(name, {}) for name in list_methods()] + [
    ("ds-atgo", {"eval_source": "batch"}),
    ("ds-atgo", {"threshold": "estimated"}),
    ("ds-atgo", {"tgo_rule": "code", "learnable_decay": False}),
    ("at", {"fc": 0.6, "momentum": 0.5}),
]


def layer_node(name: str, options: dict, T: int) -> nn.Module:
    """``name``'s neuron in float64, after a BatchNorm whose weights are not all 1."""
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)  # MPD-AGL's width reads the BN weight
    return create_method(name, **options).neuron(LayerContext(T=T, norm=bn)).double()


def pair(node: nn.Module, backend: str) -> tuple[nn.Module, nn.Module]:
    fast = copy.deepcopy(node)
    fuse_neurons(fast, backend)
    return node, fast


def run(node: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_()
    node.zero_grad(set_to_none=True)
    spikes = node(x)
    spikes.backward(grad)
    return spikes, x.grad


def assert_same(ref: nn.Module, fast: nn.Module, x: torch.Tensor, grad: torch.Tensor,
                running_rtol: float = 0.0) -> None:
    """Same spikes bit for bit, gradients within 1e-6, buffers equal (AT's running thresholds
    within ``running_rtol``: the compiled backend sums U in another order)."""
    s_ref, g_ref = run(ref, x, grad)
    s_fast, g_fast = run(fast, x, grad)
    assert torch.equal(s_ref, s_fast)
    assert 0 < s_ref.mean() < 1  # both outcomes occur, so the comparison means something
    torch.testing.assert_close(g_fast, g_ref, rtol=0, atol=1e-6)
    for (name, p_ref), p_fast in zip(ref.named_parameters(), fast.parameters()):
        assert p_fast.grad is not None, f"no gradient reached {name}"
        torch.testing.assert_close(p_fast.grad, p_ref.grad, rtol=0, atol=1e-6, msg=name)
    for (name, b_ref), b_fast in zip(ref.named_buffers(), fast.buffers()):
        rtol = running_rtol if name == "threshold.running" else 0.0
        torch.testing.assert_close(b_fast, b_ref, rtol=rtol, atol=0, msg=name)


def inputs(T: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Currents ``[T, 4, 3, 6, 6]`` (float64) that make a layer fire about half the time, and an
    upstream gradient."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(T, 4, 3, 6, 6, generator=gen, dtype=torch.float64) * 1.2 + 0.4
    return x, torch.randn(x.shape, generator=gen, dtype=torch.float64)
