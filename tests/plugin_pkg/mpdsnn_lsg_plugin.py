"""LSG-style surrogate width for mpdsnn, as a separate package (method ``lsg``).

The rectangular window's width follows the layer's own decay ``beta``:
``w = 2 * Vth * sqrt(1 + beta^2)`` (the rule as /work/shared/SPEC.md section 4 states it). With a
learnable decay (``beta = sigmoid(w)``, DS-ATGO's PLIF neuron) the width moves as the decay is
learned; ``beta`` is detached in the width so the window shapes gradients without receiving one.
The width is the same at every timestep. Registered through the ``mpdsnn.methods`` entry point of
this package's ``pyproject.toml``: ``mpdsnn`` itself does not know this module.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mpdsnn.errors import UserError
from mpdsnn.methods import LayerContext, Method, register_method
from mpdsnn.neuron import (
    FixedDecay,
    FixedThreshold,
    LearnableDecay,
    LIFNode,
    Surrogate,
    ThresholdStep,
)


class LSGWidth(Surrogate):
    """Rectangular surrogate centred on the threshold, width ``2 Vth sqrt(1 + beta^2)``.

    ``width`` returns a 0-d tensor (on ``beta``'s device); ``beta`` is the decay the neuron
    charged with at this step (a float or 0-d tensor)."""

    def __init__(self, vth: float = 1.0) -> None:
        super().__init__()
        self.vth = vth

    def width(self, t: int, step: ThresholdStep, tau: Tensor | float) -> Tensor:
        beta = torch.as_tensor(tau, dtype=step.fire.dtype, device=step.fire.device).detach()
        return 2 * self.vth * torch.sqrt(1 + beta**2)

    def extra_repr(self) -> str:
        return f"vth={self.vth}"


@register_method("lsg")
def lsg(vth: float = 1.0, init_tau: float = 0.2, learnable_decay: bool = True,
        alpha: float = 1.0) -> Method:
    """LSG-style width 2*Vth*sqrt(1+beta^2) from the layer's (learnable) decay; fixed Vth."""
    if vth <= 0:
        raise UserError(f"lsg's vth must be positive, got {vth}")
    if not 0 < init_tau < 1:
        raise UserError(f"lsg's init_tau must lie in (0, 1), got {init_tau}")

    def neuron(layer: LayerContext) -> LIFNode:
        decay = LearnableDecay(init_tau) if learnable_decay else FixedDecay(init_tau)
        return LIFNode(decay, FixedThreshold(vth), LSGWidth(vth))

    return Method(neuron=neuron, norm_scale=alpha * vth)
