"""Spiking neurons: LIF dynamics, threshold policies and surrogate gradients."""

from mpdsnn.neuron.decay import FangPLIFDecay, FixedDecay, LearnableDecay
from mpdsnn.neuron.fused import fuse_neurons
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
    "SmoothSurrogate", "Surrogate", "fuse_neurons", "TGOWidth", "ThresholdStep", "atan_spike", "mpd_statistics",
    "rectangular_spike", "record_traces", "sigmoid_spike", "spiking_layers", "tgo_width",
    "StrictFixedWidth", "TriangleSurrogate", "strict_rectangular_spike", "triangle_spike",
]
