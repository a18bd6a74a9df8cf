"""Probes: what the neurons did on a fixed evaluation batch, as tidy tables.

Measured (SPEC section 7): firing rate per layer and timestep; gradient-available proportion
(fraction of ``U(t)`` with ``|U - theta| <= k/2`` under *training-mode* theta and k); threshold and
surrogate width per layer and timestep; MPD histograms; synaptic operations and the energy
estimate. The training-mode pass runs on a snapshot of the state, so probing never moves BN
statistics or AT running thresholds.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from mpdsnn.neuron import record_traces

log = logging.getLogger(__name__)

HIST_EDGES = np.linspace(-4.0, 4.0, 81)  # potentials in units of the base threshold Vth = 1
E_MAC_PJ, E_AC_PJ = 4.6, 0.9  # 45 nm CMOS energies (Horowitz 2014), the field's convention


@dataclass
class ProbeResult:
    layers: pd.DataFrame
    timesteps: pd.DataFrame
    hist_counts: np.ndarray  # [layers, T, bins]
    layer_names: list[str]
    sops_per_sample: float
    encoding_macs_per_sample: float
    energy_uj_per_sample: float


class _OpCounter:
    """Forward hooks on every conv/linear: MACs per sample-timestep and the input's non-zero rate."""

    def __init__(self, model: nn.Module) -> None:
        self.records: list[tuple[str, float, float]] = []
        self.handles = [m.register_forward_hook(self._hook(name)) for name, m in model.named_modules()
                        if isinstance(m, (nn.Conv2d, nn.Linear))]

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            x = inputs[0]
            if isinstance(module, nn.Conv2d):
                per_out = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
                macs = output[0].numel() * per_out
            else:
                macs = module.in_features * module.out_features
            rate = (x != 0).float().mean().item()
            self.records.append((name, float(macs), rate))
        return hook

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def _per_timestep(trace_u: Tensor, spikes: Tensor, theta: Tensor, width: Tensor) -> dict[str, Tensor]:
    T = trace_u.shape[0]
    u = trace_u.reshape(T, -1).float()
    inside = (u - theta.view(T, 1).to(u)).abs() <= (width.view(T, 1).to(u) / 2)
    return {
        "firing_rate": spikes.reshape(T, -1).float().mean(1),
        "grad_available": inside.float().mean(1),
        "u_mean": u.mean(1),
        "u_std": u.std(1),
    }


@torch.no_grad()
def run_probes(model: nn.Module, x: Tensor, epoch: int) -> ProbeResult:
    """``x``: the probe batch, time-first ``[T, N, ...]`` on the model's device."""
    was_training = model.training
    N = x.shape[1]
    T = x.shape[0]
    start = time.perf_counter()
    log.info("probing epoch %d on %d samples (two forward passes, per-layer statistics)...", epoch, N)
    counter = _OpCounter(model)
    model.eval()
    try:
        with record_traces(model) as layers:
            model(x)
            eval_traces = [(name, node.trace) for name, node in layers]
    finally:
        counter.close()

    snapshot = copy.deepcopy(model.state_dict())
    model.train()
    with record_traces(model) as layers:
        model(x)
        train_traces = [node.trace for _, node in layers]
    model.load_state_dict(snapshot)
    model.train(was_training)
    for _, node in layers:
        node.trace = None  # a probe batch's potentials are large (GPU memory): keep only the tables

    rows_t, rows_l, hists = [], [], []
    for index, ((name, ev), tr) in enumerate(zip(eval_traces, train_traces)):
        ev_stats = _per_timestep(ev.u, ev.spikes, ev.theta, ev.width)
        tr_stats = _per_timestep(tr.u, tr.spikes, tr.theta, tr.width)
        for t in range(T):
            rows_t.append({
                "epoch": epoch, "layer": index, "layer_name": name, "t": t + 1,
                "firing_rate": ev_stats["firing_rate"][t].item(),
                "grad_available": tr_stats["grad_available"][t].item(),
                "theta": ev.theta[t].item(), "theta_train": tr.theta[t].item(),
                "width": tr.width[t].item(),
                "u_mean": ev_stats["u_mean"][t].item(), "u_std": ev_stats["u_std"][t].item(),
            })
        rows_l.append({
            "epoch": epoch, "layer": index, "layer_name": name,
            "neurons": ev.u[0].numel() // N,
            "firing_rate": ev_stats["firing_rate"].mean().item(),
            "grad_available": tr_stats["grad_available"].mean().item(),
            "theta_mean": ev.theta.mean().item(), "width_mean": tr.width.mean().item(),
        })
        u = ev.u.reshape(T, -1).float().clamp(HIST_EDGES[0], HIST_EDGES[-1]).cpu().numpy()
        hists.append(np.stack([np.histogram(u[t], bins=HIST_EDGES)[0] for t in range(T)]))

    layers_df = pd.DataFrame(rows_l)
    sops, enc_macs = _synaptic_ops(counter.records, T, layers_df)
    layers_df["sops"] = sops
    energy_pj = E_MAC_PJ * enc_macs + E_AC_PJ * float(np.sum(sops))
    log.info("... probed %d layers in %.1f s", len(layers_df), time.perf_counter() - start)
    return ProbeResult(
        layers=layers_df, timesteps=pd.DataFrame(rows_t), hist_counts=np.stack(hists).astype(np.int64),
        layer_names=[n for n, _ in eval_traces], sops_per_sample=float(np.sum(sops)),
        encoding_macs_per_sample=enc_macs, energy_uj_per_sample=energy_pj * 1e-6,
    )


def _synaptic_ops(records: list[tuple[str, float, float]], T: int,
                  layers_df: pd.DataFrame) -> tuple[list[float], float]:
    """SOPs per sample: each layer after the first costs (input spike rate x T x MACs); the
    first (encoding) layer sees analog input and costs full MACs at every timestep. SOPs are
    attributed to the spiking layer whose spikes feed the op (in forward order)."""
    if not records:
        return [0.0] * len(layers_df), 0.0
    enc_macs = records[0][1] * T
    ops = [rate * T * macs for _, macs, rate in records[1:]]
    per_layer = [0.0] * len(layers_df)
    for i, op in enumerate(ops):
        per_layer[min(i, len(per_layer) - 1)] += op
    return per_layer, enc_macs
