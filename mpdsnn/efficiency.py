"""NeuroBench's efficiency metrics, computed from the last probe and the trained model.

Named as NeuroBench names them (``neurobench/metrics``: ``ActivationSparsity``,
``SynapticOperations``, ``Footprint``) so a run can sit in a NeuroBench-style table without
re-evaluating the model:

- ``activation_sparsity``: zero spikes over all spike slots of every spiking layer, timestep
  and probe sample (NeuroBench counts activations, so a layer weighs by its neuron count; our
  ``mean_firing_rate`` is the unweighted mean over layers).
- ``synaptic_operations``: NeuroBench's ``Effective_ACs``: accumulates driven by spikes, per
  sample, all T (our ``sops_per_sample``); ``synaptic_operations_macs``: its ``Effective_MACs``,
  the analog encoding layer's multiply-accumulates per sample.
- ``footprint_bytes``: bytes of parameters and buffers (thresholds, BN statistics), as
  NeuroBench's ``Footprint``.
"""

from __future__ import annotations

from torch import nn

from mpdsnn.probes import ProbeResult


def footprint_bytes(model: nn.Module) -> int:
    """What storing the model takes: every parameter and buffer, at its own dtype."""
    tensors = [*model.parameters(), *model.buffers()]
    return int(sum(t.numel() * t.element_size() for t in tensors))


def activation_sparsity(probe: ProbeResult) -> float:
    """1 - spikes / spike slots over all spiking layers (weighted by each layer's neurons)."""
    layers = probe.layers
    spikes = (layers["firing_rate"] * layers["neurons"]).sum()
    return float(1.0 - spikes / layers["neurons"].sum())


def neurobench_metrics(probe: ProbeResult, model: nn.Module) -> dict[str, float | int]:
    """The flat dict that training adds to ``metrics.json`` (docs/run-folder.md)."""
    return {
        "activation_sparsity": activation_sparsity(probe),
        "synaptic_operations": probe.sops_per_sample,
        "synaptic_operations_macs": probe.encoding_macs_per_sample,
        "footprint_bytes": footprint_bytes(model),
    }
