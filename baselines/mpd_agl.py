"""MPD-AGL (IJCAI 2025), DS-ATGO's predecessor: fixed Vth = 0.5, BN scaled by alpha * Vth, and a
rectangular window whose width follows the BN weight: ``2 gbar Vth`` at t = 1 and
``2 sqrt(1 + tau^2) gbar Vth`` after. Its own recipe: plain cross-entropy, 150 epochs on CIFAR
(the card below, with sources)."""

from mpdsnn.errors import UserError
from mpdsnn.methods import LayerContext, Method, register_method
from mpdsnn.neuron import FixedThreshold, FixedWidth, LearnableDecay, LIFNode, MPDAGLWidth
from mpdsnn.recipes import Cited, RecipeCard

_AGL = "Stay-Sane/MPD-AGL@61abbf3"
_EPOCHS = Cited(150, f"{_AGL} base_config.py:22 (num_epoch)")

MPD_AGL_CARD = RecipeCard(
    train={"label_smoothing": Cited(0.0, f"{_AGL} main.py:34 (torch.nn.CrossEntropyLoss())")},
    datasets={"cifar10": {"epochs": _EPOCHS}, "cifar100": {"epochs": _EPOCHS},
              "cifar10-dvs": {"weight_decay": Cited(5e-4, f"{_AGL} main.py:35 (comment: 5e-4 "
                                                         "for CIFAR10-DVS)")}},
    model_options={
        "resnet19": {"init": Cited("kaiming-fan-out", f"{_AGL} models/ResNet19.py:126-131")},
        "vggsnn": {"init": Cited("default", f"{_AGL} models/VGGSNN.py (no initialisation code)")},
    },
    neuron={
        "vth": Cited(0.5, f"{_AGL} base_config.py:26"),
        "alpha": Cited(1.0, f"{_AGL} models/layers.py:51"),
        "init_tau": Cited(0.2, f"{_AGL} base_config.py:25, 29 (PLIF, init_a 5.0), neuron.py:44-47"),
        "firing": Cited(">=", f"{_AGL} surrogate.py:16, 35"),
        "reset": Cited("hard, not detached", f"{_AGL} neuron.py:65"),
        "surrogate": Cited("rectangular, width 2 gbar Vth (t=1), 2 sqrt(1+tau^2) gbar Vth after",
                           f"{_AGL} surrogate.py:19-27, 38-46, models/layers.py:85-87"),
    },
    incomplete=("MPD-AGL's code has no DVS-Gesture loader, and its CIFAR10-DVS epochs and batch "
                "size are the CIFAR defaults of base_config.py: the pipeline's DVS recipe stays.",),
)


@register_method("mpd-agl", card=MPD_AGL_CARD)
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
