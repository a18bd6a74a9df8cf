"""Learnable threshold (LTMD, Wang et al. 2022 style): ``Vth = tanh(w)`` per layer, learned by
the surrogate gradient; the "learned by gradient" rival of DS-ATGO's "computed from statistics"
threshold. The initial threshold is open in the sources: 0.5 here, an option."""

from mpdsnn.methods import Method, register_method
from mpdsnn.neuron import FixedWidth, LearnableDecay, LearnableThreshold, LIFNode


@register_method("ltmd")
def ltmd(init_vth: float = 0.5, init_tau: float = 0.2, width: float = 1.0) -> Method:
    """LTMD-style learnable threshold tanh(w), trained by the surrogate gradient."""
    return Method(neuron=lambda layer: LIFNode(LearnableDecay(init_tau), LearnableThreshold(init_vth),
                                               FixedWidth(width)))
