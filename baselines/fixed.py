"""STBP-tdBN (Zheng et al., AAAI 2021): fixed-decay LIF, threshold-dependent BN, fixed Vth."""

from mpdsnn.methods import Method, register_method
from mpdsnn.neuron import FixedDecay, FixedThreshold, FixedWidth, LIFNode


@register_method("fixed")
def fixed(tau: float = 0.2, vth: float = 1.0, alpha: float = 1.0, width: float = 1.0) -> Method:
    """STBP-tdBN (Zheng et al. 2021): fixed LIF, threshold-dependent BN, fixed Vth and width."""
    return Method(
        neuron=lambda layer: LIFNode(FixedDecay(tau), FixedThreshold(vth), FixedWidth(width)),
        norm_scale=alpha * vth,
    )
