"""PLIF (Fang et al., ICCV 2021) in its own formulation.

``H = V + (X - V) / tau_m`` with ``1/tau_m = sigmoid(a)`` learnable per layer (tau_m starts at 2),
hard reset to 0 with the reset detached, Vth = 1, ATan surrogate with alpha = 2, as the authors'
runs. Unlike ``vanilla`` the input is scaled by ``1/tau_m`` and the decay is ``1 - 1/tau_m``.
``surrogate="sigmoid"`` (alpha 4) and ``detach_reset=False`` are this suite's earlier variant.
"""

from mpdsnn.errors import UserError
from mpdsnn.methods import Method, register_method
from mpdsnn.neuron import FangPLIFDecay, FixedThreshold, LIFNode, SmoothSurrogate
from mpdsnn.recipes import Cited, RecipeCard

_PLIF = "fangwei123456/Parametric-Leaky-Integrate-and-Fire-Spiking-Neuron@f644ff6"

PLIF_CARD = RecipeCard(
    train={"label_smoothing": Cited(0.0, f"{_PLIF} codes/train.py:325 (F.mse_loss on firing "
                                         "rates, no smoothing); decision: the suite's CE on the "
                                         "mean output, unsmoothed")},
    neuron={
        "init_tau_m": Cited(2.0, f"{_PLIF} codes/train.py:24, 26 (-init_tau 2.0), codes/models.py:10-13"),
        "vth": Cited(1.0, f"{_PLIF} codes/models.py:10 (v_threshold=1.0, v_reset=0.0)"),
        "surrogate": Cited("atan", f"{_PLIF} codes/models.py:10, 36 (surrogate.ATan())"),
        "alpha": Cited(2.0, "spikingjelly surrogate.ATan default alpha=2.0 (spikingjelly not in "
                            "the copy read; its documented default)"),
        "detach_reset": Cited(True, f"{_PLIF} codes/train.py:24, 26 (-detach_reset on every "
                                    "published run; logs/A/* folder names)"),
        "firing": Cited(">=", "spikingjelly heaviside (x >= 0), not in the copy read"),
    },
    incomplete=(
        "Fang et al. train their own nets (codes/models.py Cifar10Net: max-pool, dropout, "
        "boosted output) with Adam lr 1e-3, cosine T_max 64, batch 16 and an MSE loss "
        "(codes/train.py:34-36, 282-283, 325): rows on the suite's nets are references.",
        "spikingjelly (surrogate, BaseNode) was not read; its ATan and heaviside are cited from "
        "its documented defaults.",
    ),
)


@register_method("plif", card=PLIF_CARD)
def plif(init_tau_m: float = 2.0, vth: float = 1.0, surrogate: str = "atan", alpha: float = 2.0,
         detach_reset: bool = True) -> Method:
    """PLIF (Fang et al. 2021): learnable 1/tau_m, input scaled by it, ATan, detached reset."""
    if surrogate not in ("atan", "sigmoid"):
        raise UserError(f"plif's surrogate must be atan or sigmoid; got {surrogate!r}")
    return Method(neuron=lambda layer: LIFNode(FangPLIFDecay(init_tau_m), FixedThreshold(vth),
                                               SmoothSurrogate(surrogate, alpha),
                                               detach_reset=detach_reset))
