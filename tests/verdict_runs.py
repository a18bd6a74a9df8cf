"""Run folders with chosen accuracies and probes, for verdict tests (written by the real
writer through tests/runfolders.py).

Each run gets two probed epochs: epoch 1 with deliberately different values, and the last epoch
with the values asked for, so a reader that does not take the last probe gives wrong verdicts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from runfolders import write_run_folder


def write_run(root: Path, *, method: str, seed: int, dataset: str = "cifar10",
              model: str = "resnet19", T: int = 2, epochs: int = 3, best: float = 90.0,
              last: float | None = None, val: float | None = None,
              batch_thresholds: float | None = None, rates: Any = None, grad: Any = None,
              method_options: dict[str, Any] | None = None, status: str = "finished",
              pipeline: str = "test", probes: bool = True) -> Path:
    """Write one run folder and return it.

    ``rates``: firing rates of the last probe, ``[layers, T]`` (0-1); ``grad``: grad_available
    per layer ``[layers]`` (0-1). Defaults: 6 layers at 1 - Phi(1) and 0.3."""
    last = best if last is None else last
    if last > best or (epochs == 1 and last != best):
        raise ValueError("need last <= best, and last == best for a one-epoch run")
    rates = np.full((6, T), 0.1587) if rates is None else np.asarray(rates, dtype=float)
    layers = rates.shape[0]
    grad = np.full(layers, 0.3) if grad is None else np.asarray(grad, dtype=float)
    run = root / pipeline / dataset / method / f"seed{seed}"
    config = {"method": method, "method_options": method_options or {}, "dataset": dataset,
              "model": model, "model_options": {}, "T": T, "epochs": epochs, "batch_size": 8,
              "optimizer": "sgd", "lr": 0.1, "weight_decay": 1e-4, "label_smoothing": 0.1,
              "seed": seed, "device": "cpu"}
    test_acc = list(np.linspace(best - 10.0, best - 5.0, epochs))
    test_acc[-1] = last
    best_epoch = epochs if best == last else max(epochs - 1, 1)
    test_acc[best_epoch - 1] = best
    history = pd.DataFrame({"epoch": range(1, epochs + 1), "lr": 0.1, "train_loss": 1.0,
                            "train_acc": 50.0, "val_acc": np.nan if val is None else val,
                            "test_loss": 1.0, "test_acc": test_acc, "seconds": 1.0})
    if status != "finished":
        return write_run_folder(run, config, history, None)
    metrics = {"method": method, "dataset": dataset, "model": model,
               "seed": seed, "T": T, "epochs": epochs, "best_test_acc": best,
               "best_epoch": best_epoch, "last_test_acc": last, "val_selected_test_acc": val,
               "val_selected_epoch": None if val is None else epochs, "train_seconds": 1.0,
               "params": 1000, "mean_firing_rate": float(rates.mean()),
               "sops_per_sample": 1.0, "energy_uj_per_sample": 1.0}
    if batch_thresholds is not None:
        metrics["test_acc_batch_thresholds"] = batch_thresholds
    if not probes:
        return write_run_folder(run, config, history, metrics)

    probed = {1: (np.full_like(rates, 0.5), np.full_like(grad, 0.9)), epochs: (rates, grad)}
    layer_rows, step_rows = [], []
    for epoch, (r, g) in probed.items():
        for layer in range(layers):
            name = f"layer{layer}"
            layer_rows.append([epoch, layer, name, 128, r[layer].mean(), g[layer], 1.0, 1.0, 1.0])
            for t in range(T):
                step_rows.append([epoch, layer, name, t + 1, r[layer, t], g[layer], 1.0, 1.0,
                                  1.0, 0.0, 1.0])
    layer_table = pd.DataFrame(layer_rows, columns=["epoch", "layer", "layer_name", "neurons",
                                                    "firing_rate", "grad_available", "sops",
                                                    "theta_mean", "width_mean"])
    step_table = pd.DataFrame(step_rows, columns=["epoch", "layer", "layer_name", "t",
                                                  "firing_rate", "grad_available", "theta",
                                                  "theta_train", "width", "u_mean", "u_std"])
    hist = (np.ones((layers, T, 4), dtype=np.int64), np.linspace(-2.0, 2.0, 5),
            [f"layer{i}" for i in range(layers)])
    return write_run_folder(run, config, history, metrics, None, layer_table, step_table, hist)


def write_family(root: Path, acc: dict[str, Sequence[float]], *,
                 rates: dict[str, Sequence[Any]] | None = None,
                 grad: dict[str, Sequence[Any]] | None = None,
                 batch: Sequence[float] | None = None, **common: Any) -> None:
    """Runs of several methods, seeds 0..n-1: ``acc[method][i]`` is seed i's best accuracy;
    ``rates``/``grad`` per method and seed as in :func:`write_run`; ``batch[i]`` is ds-atgo's
    ``test_acc_batch_thresholds`` of seed i."""
    for method, values in acc.items():
        for seed, best in enumerate(values):
            write_run(root, method=method, seed=seed, best=best,
                      rates=(rates or {}).get(method, [None] * len(values))[seed],
                      grad=(grad or {}).get(method, [None] * len(values))[seed],
                      batch_thresholds=(batch[seed] if batch is not None
                                        and method == "ds-atgo" else None),
                      **common)
