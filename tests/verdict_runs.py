"""A small writer of synthetic run folders that follow docs/run-folder.md, for verdict tests.

Each run gets two probed epochs: epoch 1 with deliberately different values, and the last epoch
with the values asked for, so a reader that does not take the last probe gives wrong verdicts.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml


def _write_csv(path: Path, header: Sequence[str], rows: list[Sequence[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


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
    run.mkdir(parents=True, exist_ok=True)

    (run / "config.yaml").write_text(yaml.safe_dump({
        "method": method, "method_options": method_options or {}, "dataset": dataset,
        "model": model, "model_options": {}, "T": T, "epochs": epochs, "batch_size": 8,
        "optimizer": "sgd", "lr": 0.1, "weight_decay": 1e-4, "label_smoothing": 0.1,
        "seed": seed, "device": "cpu"}))
    (run / "env.json").write_text(json.dumps({
        "git_commit": "0" * 40, "git_dirty": False, "python": "3.12", "packages": {},
        "platform": "test", "device_name": "cpu", "data_fingerprint": "test",
        "started_at": "2026-01-01T00:00:00"}))

    test_acc = list(np.linspace(best - 10.0, best - 5.0, epochs))
    test_acc[-1] = last
    best_epoch = epochs if best == last else max(epochs - 1, 1)
    test_acc[best_epoch - 1] = best
    _write_csv(run / "history.csv",
               ["epoch", "lr", "train_loss", "train_acc", "val_acc", "test_loss", "test_acc",
                "seconds"],
               [[e + 1, 0.1, 1.0, 50.0, "" if val is None else val, 1.0, acc, 1.0]
                for e, acc in enumerate(test_acc)])

    metrics = {"status": status, "method": method, "dataset": dataset, "model": model,
               "seed": seed, "T": T, "epochs": epochs, "best_test_acc": best,
               "best_epoch": best_epoch, "last_test_acc": last, "val_selected_test_acc": val,
               "val_selected_epoch": None if val is None else epochs, "train_seconds": 1.0,
               "params": 1000, "mean_firing_rate": float(rates.mean()),
               "sops_per_sample": 1.0, "energy_uj_per_sample": 1.0}
    if batch_thresholds is not None:
        metrics["test_acc_batch_thresholds"] = batch_thresholds
    (run / "metrics.json").write_text(json.dumps(metrics))
    if not probes:
        return run

    probed = {1: (np.full_like(rates, 0.5), np.full_like(grad, 0.9)), epochs: (rates, grad)}
    layer_rows, step_rows = [], []
    for epoch, (r, g) in probed.items():
        for layer in range(layers):
            name = f"layer{layer}"
            layer_rows.append([epoch, layer, name, 128, r[layer].mean(), g[layer], 1.0, 1.0, 1.0])
            for t in range(T):
                step_rows.append([epoch, layer, name, t + 1, r[layer, t], g[layer], 1.0, 1.0,
                                  1.0, 0.0, 1.0])
    _write_csv(run / "probes" / "layers.csv",
               ["epoch", "layer", "layer_name", "neurons", "firing_rate", "grad_available",
                "sops", "theta_mean", "width_mean"], layer_rows)
    _write_csv(run / "probes" / "timesteps.csv",
               ["epoch", "layer", "layer_name", "t", "firing_rate", "grad_available", "theta",
                "theta_train", "width", "u_mean", "u_std"], step_rows)
    np.savez(run / "probes" / "mpd_hist.npz", counts=np.ones((layers, T, 4), dtype=np.int64),
             edges=np.linspace(-2.0, 2.0, 5), layer_names=np.array([f"layer{i}"
                                                                     for i in range(layers)]))
    return run


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
