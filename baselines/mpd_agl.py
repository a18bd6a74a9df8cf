"""MPD-AGL (IJCAI 2025), DS-ATGO's predecessor: fixed Vth = 0.5, BN scaled by alpha * Vth, and a
rectangular window whose width follows the BN weight: ``2 gbar Vth`` at t = 1 and
``2 sqrt(1 + tau^2) gbar Vth`` after."""

from mpdsnn.errors import UserError
from mpdsnn.methods import LayerContext, Method, register_method
from mpdsnn.neuron import FixedThreshold, FixedWidth, LearnableDecay, LIFNode, MPDAGLWidth


@register_method("mpd-agl")
def mpd_agl(vth: float = 0.5, alpha: float = 1.0, init_tau: float = 0.2) -> Method:
    """MPD-AGL (IJCAI 2025): Vth 0.5, BN scaled by alpha*Vth, width from the BN weight."""
    def neuron(layer: LayerContext) -> LIFNode:
        if layer.norm is None or getattr(layer.norm, "weight", None) is None:
            # A spiking layer without an affine BN in front has no gbar: fall back to the
            # t = 1 width of an untouched BN (gbar = 1), the only value the method defines.
            surrogate = FixedWidth(2 * vth)
        else:
            surrogate = MPDAGLWidth(layer.norm, vth=vth)
        return LIFNode(LearnableDecay(init_tau), FixedThreshold(vth), surrogate)

    if vth <= 0:
        raise UserError(f"mpd-agl's vth must be positive, got {vth}")
    return Method(neuron=neuron, norm_scale=alpha * vth)
