"""LTMD (Wang et al., NeurIPS 2022): learnable threshold ``Vth = tanh(w)`` per layer (w starts at
0.5), fixed decay 0.25, fires on ``U > Vth``; the "learned by gradient" rival of DS-ATGO's
"computed from statistics" threshold. Its moderate dropout and DenseNet are not reproduced."""

import math

from mpdsnn.methods import Method, register_method
from mpdsnn.neuron import FixedDecay, LearnableThreshold, LIFNode, StrictFixedWidth
from mpdsnn.recipes import Cited, RecipeCard

_LTMD = "sq117/LTMD (cifar10/ pre-release)"

LTMD_CARD = RecipeCard(
    train={"label_smoothing": Cited(0.0, f"{_LTMD} trialnew.py:37-39 (F.cross_entropy, "
                                         "no smoothing)")},
    neuron={
        "init_vth": Cited(math.tanh(0.5), f"{_LTMD} layersnew.py:10, 69-70, 76 (w = kappa = 0.5, "
                                          "Vth = tanh(w))"),
        "tau": Cited(0.25, f"{_LTMD} layersnew.py:11, 33-34 (fixed decay)"),
        "width": Cited(1.0, f"{_LTMD} layersnew.py:9, 22-27 (|v| < 0.5, height 1/(2*0.5))"),
        "firing": Cited(">", f"{_LTMD} layersnew.py:18 (torch.gt)"),
        "reset": Cited("hard, not detached", f"{_LTMD} layersnew.py:34"),
        "min_theta": Cited(0.05, "not stated; decision: this suite's floor so the threshold "
                                 "never reaches 0 (straight-through, the gradient still flows)"),
    },
    incomplete=(
        "The LTMD repository is a CIFAR10 pre-release (README): a spiking DenseNet "
        "(modelnew.py) with moderate dropout and a KL term (trialnew.py:37-39), SGD lr 0.04 with "
        "a step schedule (trialnew.py:93-115, 124-126), 400 epochs, batch 64: the suite keeps its "
        "nets and shared optimiser, so rows are references.",
    ),
)


@register_method("ltmd", card=LTMD_CARD)
def ltmd(init_vth: float = math.tanh(0.5), tau: float = 0.25, width: float = 1.0,
         min_theta: float = 0.05) -> Method:
    """LTMD (Wang et al. 2022): learnable threshold tanh(w), fixed decay 0.25, fires on >."""
    return Method(neuron=lambda layer: LIFNode(FixedDecay(tau),
                                               LearnableThreshold(init_vth, min_theta),
                                               StrictFixedWidth(width)))
