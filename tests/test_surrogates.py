"""Hand-written backwards against their formulas and the smooth primitives they stand for."""

import math

import pytest
import torch

from mpdsnn.neuron import atan_spike, rectangular_spike, sigmoid_spike, tgo_width


def test_rectangular_backward_is_the_window_formula():
    v = torch.linspace(-2, 2, 4001, dtype=torch.float64, requires_grad=True)
    k = torch.tensor(0.7, dtype=torch.float64)
    s = rectangular_spike(v, k)
    s.sum().backward()
    expected = (v.detach().abs() <= 0.35).double() / 0.7
    assert torch.equal(s.detach(), (v.detach() >= 0).double())
    assert torch.allclose(v.grad, expected, atol=0, rtol=0)
    assert v.grad.max().item() == pytest.approx(1 / 0.7)


@pytest.mark.parametrize("alpha", [1.0, 4.0])
def test_sigmoid_backward_equals_autograd_of_sigmoid(alpha):
    v = torch.randn(1000, dtype=torch.float64, requires_grad=True)
    (g_custom,) = torch.autograd.grad(sigmoid_spike(v, alpha).sum(), v)
    (g_smooth,) = torch.autograd.grad(torch.sigmoid(alpha * v).sum(), v)
    assert torch.allclose(g_custom, g_smooth, atol=1e-12)


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_atan_backward_equals_autograd_of_atan(alpha):
    v = torch.randn(1000, dtype=torch.float64, requires_grad=True)
    (g_custom,) = torch.autograd.grad(atan_spike(v, alpha).sum(), v)
    smooth = torch.atan(math.pi / 2 * alpha * v) / math.pi + 0.5
    (g_smooth,) = torch.autograd.grad(smooth.sum(), v)
    assert torch.allclose(g_custom, g_smooth, atol=1e-12)


def test_smooth_primitives_pass_gradcheck():
    """The smooth primitives our backwards are compared to are themselves differentiated right."""
    v = torch.randn(20, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: torch.sigmoid(4 * x), (v,))
    assert torch.autograd.gradcheck(lambda x: torch.atan(math.pi * x), (v,))


def test_tgo_width_rule_values():
    x = torch.tensor([0.5, 1.0, 2.0, 0.0, 100.0])
    k = tgo_width(x)
    # SPEC section 3: k = 0.5379 / 1 / 1.7616 at theta = 0.5 / 1 / 2; range (0.24, 2) for x >= 0.
    assert k[:3].tolist() == pytest.approx([0.5379, 1.0, 1.7616], abs=1e-4)
    assert k[3].item() == pytest.approx(1 - math.tanh(1.0))
    assert k[4].item() == pytest.approx(2.0)


def test_triangle_is_tets_zif_at_chosen_points():
    """TET models/layers.py ZIF: forward 1[v > 0]; backward (1/g^2) max(g - |v|, 0)."""
    from mpdsnn.neuron import triangle_spike

    v = torch.tensor([-1.5, -1.0, -0.25, 0.0, 0.5, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    s = triangle_spike(v, 1.0)
    s.sum().backward()
    assert s.detach().tolist() == [0, 0, 0, 0, 1, 1, 1]  # strict: v = 0 does not fire
    assert v.grad.tolist() == [0.0, 0.0, 0.75, 1.0, 0.5, 0.0, 0.0]
    w = torch.tensor([0.0, 0.25, -0.5], dtype=torch.float64, requires_grad=True)
    triangle_spike(w, 0.5).sum().backward()
    assert w.grad.tolist() == [2.0, 1.0, 0.0]  # peak 1/g, area 1


def test_strict_rectangular_fires_on_greater_only_with_the_same_window():
    from mpdsnn.neuron import strict_rectangular_spike

    v = torch.tensor([-0.6, -0.5, 0.0, 0.5, 0.6], dtype=torch.float64, requires_grad=True)
    s = strict_rectangular_spike(v, torch.tensor(1.0, dtype=torch.float64))
    s.sum().backward()
    assert s.detach().tolist() == [0, 0, 0, 1, 1]
    assert v.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_atan_alpha_2_at_chosen_points():
    """spikingjelly ATan: g'(v) = alpha / 2 / (1 + (pi/2 alpha v)^2); alpha = 2: 1 / (1 + (pi v)^2)."""
    v = torch.tensor([0.0, 1 / math.pi, -1 / math.pi], dtype=torch.float64, requires_grad=True)
    atan_spike(v, 2.0).sum().backward()
    assert torch.allclose(v.grad, torch.tensor([1.0, 0.5, 0.5], dtype=torch.float64), atol=1e-15)
