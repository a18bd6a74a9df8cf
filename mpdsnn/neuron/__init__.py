"""Spiking neurons: LIF dynamics, threshold policies and surrogate gradients."""

from mpdsnn.neuron.decay import FangPLIFDecay, FixedDecay, LearnableDecay
from mpdsnn.neuron.fused import fuse_neurons
from mpdsnn.neuron.interop import SpikingJellyNode, reset_states, swap_spikingjelly_neurons
from mpdsnn.neuron.lif import LIFNode, NeuronTrace, record_traces, spiking_layers
from mpdsnn.neuron.surrogate import (
    atan_spike,
    rectangular_spike,
    sigmoid_spike,
    strict_rectangular_spike,
    triangle_spike,
)
from mpdsnn.neuron.threshold import (
    AdaptiveThreshold,
    EstimatedThreshold,
    FixedThreshold,
    LearnableThreshold,
    ThresholdStep,
    mpd_statistics,
)
from mpdsnn.neuron.width import (
    FixedWidth,
    MPDAGLWidth,
    SmoothSurrogate,
    StrictFixedWidth,
    Surrogate,
    TGOWidth,
    TriangleSurrogate,
    tgo_width,
)

__all__ = [
    "AdaptiveThreshold", "EstimatedThreshold", "FangPLIFDecay", "FixedDecay", "FixedThreshold",
    "FixedWidth", "LIFNode", "LearnableDecay", "LearnableThreshold", "MPDAGLWidth", "NeuronTrace",
    "SmoothSurrogate", "SpikingJellyNode", "StrictFixedWidth", "Surrogate", "TGOWidth",
    "ThresholdStep", "TriangleSurrogate", "atan_spike", "fuse_neurons", "mpd_statistics",
    "rectangular_spike", "record_traces", "reset_states", "sigmoid_spike", "spiking_layers",
    "strict_rectangular_spike", "swap_spikingjelly_neurons", "tgo_width", "triangle_spike",
]
