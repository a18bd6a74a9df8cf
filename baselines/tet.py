"""TET (Deng et al., ICLR 2022): the ``fixed`` neuron trained with the temporal-efficient loss.

``loss = (1 - lam) mean_t CE(O(t), y) + lam mean_t MSE(O(t), phi)``; the official code uses
``lam = 1e-3`` (some re-implementations 0.05) and ``phi = 1``. Inference uses the mean output.
"""

from functools import partial

from mpdsnn.losses import tet_loss
from mpdsnn.methods import Method, register_method
from mpdsnn.neuron import FixedDecay, FixedThreshold, FixedWidth, LIFNode


@register_method("tet")
def tet(lam: float = 1e-3, phi: float = 1.0, tau: float = 0.2, vth: float = 1.0) -> Method:
    """TET (Deng et al. 2022): fixed LIF trained with per-timestep CE + MSE regulariser."""
    return Method(
        neuron=lambda layer: LIFNode(FixedDecay(tau), FixedThreshold(vth), FixedWidth(1.0)),
        loss=partial(tet_loss, lam=lam, phi=phi),
        norm_scale=vth,
    )
