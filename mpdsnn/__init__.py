"""mpdsnn: a benchmark and reproducibility suite for directly trained spiking neural networks."""

__version__ = "0.1.0"
