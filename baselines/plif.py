"""PLIF (Fang et al., ICCV 2021) in its own formulation.

``H = V + (X - V) / tau_m`` with ``1/tau_m = sigmoid(a)`` learnable per layer (tau_m starts at 2),
hard reset, Vth = 1, sigmoid surrogate with alpha = 4. Unlike ``vanilla`` the input is scaled by
``1/tau_m`` and the decay is ``1 - 1/tau_m`` (0.5 at start, not 0.2).
"""

from mpdsnn.methods import Method, register_method
from mpdsnn.neuron import FangPLIFDecay, FixedThreshold, LIFNode, SmoothSurrogate


@register_method("plif")
def plif(init_tau_m: float = 2.0, vth: float = 1.0, alpha: float = 4.0) -> Method:
    """PLIF (Fang et al. 2021): learnable 1/tau_m, input scaled by it, sigmoid surrogate."""
    return Method(neuron=lambda layer: LIFNode(FangPLIFDecay(init_tau_m), FixedThreshold(vth),
                                               SmoothSurrogate("sigmoid", alpha)))
