"""NeuroBench's efficiency metrics: weighted as NeuroBench weighs them, in NeuroBench's units."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from mpdsnn.efficiency import activation_sparsity, footprint_bytes, neurobench_metrics
from mpdsnn.probes import ProbeResult


def probe(rates: list[float], neurons: list[int]) -> ProbeResult:
    layers = pd.DataFrame({"layer": range(len(rates)), "firing_rate": rates, "neurons": neurons})
    return ProbeResult(layers=layers, timesteps=pd.DataFrame(), hist_counts=np.zeros((1, 1, 1)),
                       layer_names=[f"l{i}" for i in range(len(rates))], sops_per_sample=1234.5,
                       encoding_macs_per_sample=678.0, energy_uj_per_sample=0.0)


def test_activation_sparsity_counts_spikes_over_all_neurons_not_a_mean_of_layers():
    # 1000 neurons at 10 % and 10 neurons at 90 %: 109 spikes of 1010 slots.
    assert activation_sparsity(probe([0.1, 0.9], [1000, 10])) == 1 - 109 / 1010
    assert activation_sparsity(probe([0.0, 0.0], [5, 5])) == 1.0


def test_footprint_counts_parameters_and_buffers_at_their_dtype():
    model = nn.Sequential(nn.Linear(10, 4), nn.BatchNorm1d(4)).to(torch.float64)
    params = 10 * 4 + 4 + 4 + 4  # linear weight, bias, BN weight, bias
    buffers = 4 + 4  # BN running mean and var (float64) + num_batches_tracked (int64, 1 element)
    assert footprint_bytes(model) == 8 * (params + buffers) + 8
    assert footprint_bytes(model.half()) == 2 * (params + buffers) + 8


def test_the_metrics_json_entries_carry_neurobench_names():
    metrics = neurobench_metrics(probe([0.2], [100]), nn.Linear(3, 2, bias=False))
    assert metrics == {"activation_sparsity": 0.8, "synaptic_operations": 1234.5,
                       "synaptic_operations_macs": 678.0, "footprint_bytes": 24}
