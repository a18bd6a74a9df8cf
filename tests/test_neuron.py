"""The LIF neuron, DS-ATGO's adaptive threshold and TGO width, measured through the real neuron."""

import io
import math

import pytest
import torch

from mpdsnn.methods import LayerContext, create_method
from mpdsnn.neuron import (
    AdaptiveThreshold,
    FixedDecay,
    FixedThreshold,
    FixedWidth,
    LearnableThreshold,
    LIFNode,
    MPDAGLWidth,
    TGOWidth,
    record_traces,
)

PHI_1 = 1 - 0.5 * (1 + math.erf(1 / math.sqrt(2)))  # 1 - Phi(1) = 15.87 %


def gaussian_quantiles(n: int, s: float) -> torch.Tensor:
    """A 'perfect' sample of N(0, s^2): the distribution's own quantiles, so the measured
    fractions carry no sampling noise and can be pinned to 0.01 points."""
    p = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return s * torch.special.ndtri(p)


@pytest.mark.parametrize(
    "s, fixed_pct, tgo_pct",
    [(0.5, 47.72, 26.00), (1.0, 24.17, 24.17), (2.0, 12.10, 21.30)],
)
def test_fig5_window_fractions_through_the_real_neuron(s, fixed_pct, tgo_pct):
    """Paper Fig. 5: fraction of potentials inside the gradient window, theta = s, Vth = 1.

    The window is read off the neuron's real backward: an element has a gradient iff it lies in
    the window, so the fraction of non-zero input gradients is the measured proportion."""
    x = gaussian_quantiles(1_000_000, s).view(1, 1, -1)  # [T=1, N=1, neurons]
    for width_rule, expected in ((FixedWidth(1.0), fixed_pct), (TGOWidth("paper"), tgo_pct)):
        node = LIFNode(FixedDecay(0.2), AdaptiveThreshold(T=1), width_rule).double()
        x_in = x.clone().requires_grad_(True)
        with record_traces(node):
            node(x_in).sum().backward()
        trace = node.trace
        assert trace.theta.item() == pytest.approx(s, rel=1e-4)  # AT: mean + std = s
        measured = (x_in.grad != 0).double().mean().item() * 100
        assert measured == pytest.approx(expected, abs=0.01)
        k = trace.width.item()
        assert x_in.grad.abs().max().item() == pytest.approx(1 / k)


@pytest.mark.parametrize("mean, scale", [(0.0, 1.0), (-1.0, 3.0), (5.0, 4.0), (0.3, 0.05)])
def test_at_fires_fifteen_point_nine_percent_on_gaussian_potentials(mean, scale):
    """AT fires 1 - Phi(1) of Gaussian potentials at every timestep and layer, whatever their
    mean and scale (decay 0 makes U(t) = I(t) exactly Gaussian). Distributions whose
    mean + std falls below the guard's floor are the guard's test, below."""
    T, layers = 4, 3
    gen = torch.Generator().manual_seed(1)
    for _ in range(layers):
        node = LIFNode(FixedDecay(0.0), AdaptiveThreshold(T=T, min_theta=1e-6), FixedWidth())
        drift = torch.arange(T).view(T, 1, 1) * 0.5  # a different MPD at every timestep
        x = mean + drift + scale * (1 + drift) * torch.randn(T, 256, 400, generator=gen)
        rates = node(x).mean(dim=(1, 2))
        assert rates.tolist() == pytest.approx([PHI_1] * T, abs=0.005)


def test_at_eval_uses_running_buffer_and_it_survives_save_load_and_to():
    torch.manual_seed(0)
    T = 3
    node = LIFNode(FixedDecay(0.2), AdaptiveThreshold(T=T), TGOWidth())
    for _ in range(5):
        node(torch.randn(T, 8, 50) * 2 + 1)
    running = node.threshold.running.clone()
    assert not torch.allclose(running, torch.ones(T))  # moved away from the base 1.0
    node.eval()
    with record_traces(node):
        node(torch.randn(T, 8, 50) * 10)  # very different batch: eval must ignore its statistics
    assert torch.equal(node.trace.theta, running)
    assert torch.equal(node.threshold.running, running)  # eval does not update the buffer

    buf = io.BytesIO()
    torch.save(node.state_dict(), buf)
    buf.seek(0)
    fresh = LIFNode(FixedDecay(0.2), AdaptiveThreshold(T=T), TGOWidth())
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(fresh.threshold.running, running)
    assert "threshold.running" in node.state_dict()
    moved = fresh.to(torch.float64)
    assert moved.threshold.running.dtype == torch.float64


def test_running_estimate_follows_the_momentum_rule():
    T, m = 2, 0.1
    node = LIFNode(FixedDecay(0.0), AdaptiveThreshold(T=T, momentum=m), FixedWidth())
    x = torch.randn(T, 4, 100)
    with record_traces(node):
        node(x)
    stat = node.trace.stat
    assert torch.allclose(node.threshold.running, (1 - m) * torch.ones(T) + m * stat)


def test_eval_with_batch_statistics_ablation():
    node = LIFNode(FixedDecay(0.0), AdaptiveThreshold(T=1, eval_source="batch"), FixedWidth())
    node.eval()
    x = torch.randn(1, 16, 100) * 3 + 2
    with record_traces(node):
        node(x)
    std, mean = torch.std_mean(x)
    assert node.trace.theta.item() == pytest.approx((mean + std).item(), rel=1e-5)


def test_threshold_guard_stops_a_non_positive_threshold():
    """All potentials negative: mean + std < 0 would make every neuron fire. The guard clamps
    theta to min_theta, so nothing fires."""
    node = LIFNode(FixedDecay(0.0), AdaptiveThreshold(T=2, min_theta=0.05), FixedWidth())
    x = -5 + 0.1 * torch.randn(2, 8, 100)
    with record_traces(node):
        spikes = node(x)
    assert spikes.sum().item() == 0
    assert node.trace.theta.tolist() == pytest.approx([0.05, 0.05])


def test_adaptive_threshold_rejects_a_longer_sequence_with_a_clear_message():
    node = LIFNode(FixedDecay(0.2), AdaptiveThreshold(T=2), FixedWidth())
    with pytest.raises(ValueError, match="built for T=2"):
        node(torch.randn(3, 2, 5))


def test_tgo_only_fires_at_fixed_threshold_but_width_follows_mpd():
    method = create_method("tgo")
    node = method.neuron(LayerContext(T=1))
    x = (torch.randn(1, 32, 100) * 2 + 1)
    with record_traces(node):
        spikes = node(x)
    assert torch.equal(spikes, (x >= 1.0).float())
    std, mean = torch.std_mean(x)
    assert node.trace.width.item() == pytest.approx(1 + math.tanh((mean + std).item() - 1), rel=1e-4)


def test_tgo_code_rule_uses_std_and_differs_from_paper_when_mean_is_not_zero():
    x = torch.randn(1, 32, 100) * 0.5 + 2.0
    widths = {}
    for rule in ("paper", "code"):
        node = LIFNode(FixedDecay(0.2), AdaptiveThreshold(T=1), TGOWidth(rule))
        with record_traces(node):
            node(x)
        widths[rule] = node.trace.width.item()
    std, mean = torch.std_mean(x)
    assert widths["code"] == pytest.approx(1 + math.tanh(std.item() - 1), rel=1e-5)
    assert widths["paper"] == pytest.approx(1 + math.tanh((mean + std).item() - 1), rel=1e-5)
    assert abs(widths["paper"] - widths["code"]) > 0.1


def test_gradient_flows_through_the_reset_path():
    """T = 2, one neuron, fixed decay 0.5, Vth 1, k 1: x1 = 1.2 fires inside the window, so
    dU(2)/dx1 = tau * (1 - S1) - tau * U1 * dS1/dU1 = 0 - 0.5 * 1.2 * 1 = -0.6, and with
    U(2) = x2 = 0.9 inside the window dS2/dx1 = -0.6 (a detached reset would give 0)."""
    node = LIFNode(FixedDecay(0.5), FixedThreshold(1.0), FixedWidth(1.0)).double()
    x = torch.tensor([[1.2], [0.9]], dtype=torch.float64, requires_grad=True)
    s = node(x)
    assert s.squeeze().tolist() == [1.0, 0.0]
    (grad,) = torch.autograd.grad(s[1].sum(), x)
    assert grad[0].item() == pytest.approx(-0.6)
    assert grad[1].item() == pytest.approx(1.0)


def test_learnable_threshold_gets_minus_the_potential_gradient():
    node = LIFNode(FixedDecay(0.0), LearnableThreshold(0.5), FixedWidth(1.0)).double()
    x = torch.tensor([[0.3, 0.6, 2.0]], dtype=torch.float64, requires_grad=True)
    s = node(x)
    s.sum().backward()
    dtheta_dw = 1 - math.tanh(node.threshold.w.item()) ** 2
    assert node.threshold.w.grad.item() == pytest.approx(-x.grad.sum().item() * dtheta_dw)
    assert x.grad.tolist() == [[1.0, 1.0, 0.0]]


def test_mpd_agl_width_follows_bn_weight_and_guards_non_positive_mean():
    bn = torch.nn.BatchNorm1d(4)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, 1.0, 1.5, 2.0]))  # gbar = 1.25
    tau = torch.tensor(0.2)
    rule = MPDAGLWidth(bn, vth=0.5)
    from mpdsnn.neuron import ThresholdStep
    step = ThresholdStep(fire=torch.tensor(0.5))
    assert rule.width(0, step, tau).item() == pytest.approx(2 * 1.25 * 0.5)
    assert rule.width(1, step, tau).item() == pytest.approx(2 * math.sqrt(1.04) * 1.25 * 0.5)
    with torch.no_grad():
        bn.weight.fill_(-1.0)
    assert rule.width(0, step, tau).item() == pytest.approx(2 * 1e-2 * 0.5)
    assert "_bn" not in dict(rule.named_modules())  # a reference, not a second owner


def test_learnable_decay_starts_at_point_two_and_learns():
    method = create_method("ds-atgo")
    node = method.neuron(LayerContext(T=2))
    tau, _ = node.decay()
    assert tau.item() == pytest.approx(0.2)
    x = torch.randn(2, 4, 50) + 1
    node(x).sum().backward()
    assert node.decay.w.grad is not None and node.decay.w.grad.abs().item() > 0


def test_learnable_threshold_below_its_floor_still_learns():
    """The floor is straight-through: a threshold pushed under min_theta keeps its gradient."""
    node = LIFNode(FixedDecay(0.0), LearnableThreshold(0.5, min_theta=0.05), FixedWidth(1.0)).double()
    with torch.no_grad():
        node.threshold.w.fill_(math.atanh(0.01))  # below the floor
    x = torch.tensor([[0.3, 0.04]], dtype=torch.float64, requires_grad=True)
    s = node(x)
    assert s.squeeze().tolist() == [1.0, 0.0]  # fires at the floor 0.05, not at 0.01
    s.sum().backward()
    assert node.threshold.w.grad.item() != 0


def test_half_precision_input_is_computed_in_fp32():
    """Under autocast BN hands the neuron bf16; thresholds and spikes must come out as in fp32."""
    torch.manual_seed(0)
    x = torch.randn(3, 8, 500) * 1.3 + 0.2
    ref = LIFNode(FixedDecay(0.2), AdaptiveThreshold(T=3), TGOWidth())
    half = LIFNode(FixedDecay(0.2), AdaptiveThreshold(T=3), TGOWidth())
    x16 = x.bfloat16()
    out16 = half(x16)
    assert out16.dtype == torch.bfloat16
    assert torch.equal(out16.float(), ref(x16.float()))
    assert half.threshold.running.dtype == torch.float32
    assert torch.equal(half.threshold.running, ref.threshold.running)


def _two_step_grad(detach_reset: bool, backend: str = "reference") -> torch.Tensor:
    from mpdsnn.neuron import SmoothSurrogate

    node = LIFNode(FixedDecay(0.5), FixedThreshold(1.0), SmoothSurrogate("atan", 2.0),
                   detach_reset=detach_reset)
    node.backend = backend
    x = torch.tensor([[1.2], [0.9]], dtype=torch.float64, requires_grad=True)
    node(x)[1].sum().backward()  # S(1) only: its gradient reaches x(0) through U(0) alone
    return x.grad[0, 0]


def test_detached_reset_cuts_exactly_the_reset_path():
    """U0 = 1.2 fires (S0 = 1), U1 = 0.5 * U0 * (1 - S0) + 0.9 = 0.9. Not detached,
    dS1/dx0 = g(U1 - 1) * (-0.5 * U0 * g(U0 - 1)) with g(v) = 1 / (1 + (pi v)^2); detached, the
    only other path, 0.5 * (1 - S0), is 0 (Fang et al.'s detach_reset)."""
    g = lambda v: 1 / (1 + (math.pi * v) ** 2)  # noqa: E731
    expected = g(0.9 - 1.0) * (-0.5 * 1.2 * g(1.2 - 1.0))
    assert _two_step_grad(False).item() == pytest.approx(expected, rel=1e-12)
    assert _two_step_grad(True).item() == 0.0


def test_detached_reset_stays_on_the_reference_backend():
    node = LIFNode(FixedDecay(0.5), FixedThreshold(1.0), FixedWidth(1.0), detach_reset=True)
    x = torch.randn(4, 64, dtype=torch.float64) + 0.8
    outs, grads = [], []
    for backend in ("reference", "fused"):
        node.backend = backend
        xi = x.clone().requires_grad_(True)
        out = node(xi)
        (out * torch.arange(4.0, dtype=torch.float64).view(4, 1)).sum().backward()
        outs.append(out.detach())
        grads.append(xi.grad)
    assert torch.equal(outs[0], outs[1]) and torch.equal(grads[0], grads[1])
    node.backend = "reference"
    xi = x.clone().requires_grad_(True)
    LIFNode(FixedDecay(0.5), FixedThreshold(1.0), FixedWidth(1.0))(xi).mul(
        torch.arange(4.0, dtype=torch.float64).view(4, 1)).sum().backward()
    assert not torch.equal(xi.grad, grads[0])  # and the detached reset does change the gradient
