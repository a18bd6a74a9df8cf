"""STBP-tdBN (Zheng et al., AAAI 2021): fixed-decay LIF, threshold-dependent BN, fixed Vth.

On CIFAR its paper pipelines train the standard ResNet-19 (spike after the add), the net TET
released as "the ResNet-19 of tdBN", with tdBN's ``alpha = 1/sqrt(2)`` on the two BNs whose
outputs are summed. No official STBP-tdBN code could be read: the card says which values are
the paper's and which are decisions.
"""

import math

from mpdsnn.methods import Method, register_method
from mpdsnn.neuron import FixedDecay, FixedThreshold, FixedWidth, LIFNode
from mpdsnn.recipes import Cited, RecipeCard

_NO_CODE = "not stated (no official STBP-tdBN code found to read)"

FIXED_CARD = RecipeCard(
    train={"label_smoothing": Cited(0.0, f"{_NO_CODE}; decision: plain cross-entropy, "
                                         "no smoothing (none is mentioned for tdBN)")},
    models={"resnet19": Cited("resnet19-std", "brain-intelligence-lab/temporal_efficient_training"
                                              "@8217492 models/resnet_models.py:20-57 (TET's "
                                              "release of tdBN's ResNet-19: spike after the add)")},
    model_options={"resnet19-std": {
        "sum_alpha": Cited(1 / math.sqrt(2), "tdBN paper (Zheng et al. 2021), residual blocks: "
                                             "alpha = 1/sqrt(2) on the BNs before the add; "
                                             "recalled, the paper was not readable here"),
        "init": Cited("default", f"{_NO_CODE}; decision: as TET's release of the net"),
    }},
    neuron={
        "tau": Cited(0.2, f"{_NO_CODE}; decision: STBP's decay 0.2, as DS-ATGO's fixed LIF"),
        "vth": Cited(1.0, "tdBN paper: threshold-dependent BN normalises to alpha*Vth; Vth 1 is "
                          "a decision (value not verified against the paper here)"),
        "alpha": Cited(1.0, "tdBN paper: alpha = 1 outside residual sums"),
        "width": Cited(1.0, f"{_NO_CODE}; decision: rectangular window of width 1 (STBP)"),
        "firing": Cited(">=", f"{_NO_CODE}; decision: the suite's rule"),
        "reset": Cited("hard, not detached", f"{_NO_CODE}; decision: STBP's charge equation"),
    },
    incomplete=("No STBP-tdBN code was readable: the architecture is TET's release of it, "
                "alpha = 1/sqrt(2) is from the paper (recalled), every neuron value is a "
                "decision marked as such.",),
)


@register_method("fixed", card=FIXED_CARD)
def fixed(tau: float = 0.2, vth: float = 1.0, alpha: float = 1.0, width: float = 1.0) -> Method:
    """STBP-tdBN (Zheng et al. 2021): fixed LIF, threshold-dependent BN, fixed Vth and width."""
    return Method(
        neuron=lambda layer: LIFNode(FixedDecay(tau), FixedThreshold(vth), FixedWidth(width)),
        norm_scale=alpha * vth,
    )
