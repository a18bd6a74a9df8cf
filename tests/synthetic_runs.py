"""Synthetic run folders in the exact format of docs/run-folder.md, with numbers set by simple
formulas, so report tests can assert aggregates against what was written.

``write_runs(tmp_path)`` writes two settings (cifar10/resnet19/T=2 with a validation split,
cifar10-dvs/vggsnn/T=4 without), six methods, three seeds (``ltmd``: one seed, for the n = 1
case), plus two runs that never finished (one with absurd numbers that would move every
aggregate if counted). It returns one :class:`SynthRun` per folder holding the tables it wrote.
The files are written by the real writer (tests/runfolders.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from runfolders import write_run_folder

PIPELINE = "synthetic"
SETTINGS = [  # dataset, model, T, has a validation split
    ("cifar10", "resnet19", 2, True),
    ("cifar10-dvs", "vggsnn", 4, False),
]
METHODS = ["vanilla", "fixed", "ds-atgo", "ltmd", "tgo", "at"]  # deliberately not in report order
SEEDS = [0, 1, 2]
SINGLE_SEED = {"ltmd"}
EPOCHS = 6
PROBE_EPOCHS = [1, EPOCHS]
LAYER_NAMES = ["stem.lif", "block1.lif1", "block1.lif2", "fc.lif"]
NEURONS = [4096, 2048, 1024, 256]
BINS = np.linspace(-3.0, 4.0, 36)

ACC_BASE = {"ds-atgo": 90.0, "at": 88.5, "tgo": 88.0, "vanilla": 87.0, "fixed": 86.0, "ltmd": 85.0}
DATASET_OFFSET = {"cifar10": 0.0, "cifar10-dvs": -10.0}
SEED_OFFSET = {0: 0.0, 1: 0.4, 2: -0.3}
RATE = {  # firing rate of layer l at the last probe: (intercept, slope per layer)
    "ds-atgo": (0.150, 0.004), "at": (0.155, 0.0), "tgo": (0.120, -0.010),
    "vanilla": (0.140, -0.025), "fixed": (0.130, -0.015), "ltmd": (0.100, 0.002),
}
GRAD = {  # gradient-available proportion of layer l at the last probe
    "ds-atgo": (0.45, 0.010), "at": (0.30, -0.01), "tgo": (0.40, 0.005),
    "vanilla": (0.25, -0.040), "fixed": (0.24, -0.03), "ltmd": (0.20, 0.0),
}
ADAPTIVE = {"ds-atgo", "at"}  # fire at an MPD threshold
TGO = {"ds-atgo", "tgo"}  # width follows the training-mode threshold


@dataclass
class SynthRun:
    path: Path
    dataset: str
    model: str
    T: int
    method: str
    seed: int
    status: str
    metrics: dict
    history: pd.DataFrame
    layers: pd.DataFrame
    timesteps: pd.DataFrame
    counts: np.ndarray  # [layers, T, bins]


def _phi(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def layer_rate(method: str, layer: int, seed: int) -> float:
    a, b = RATE[method]
    return a + b * layer + 0.002 * seed


def layer_grad(method: str, layer: int, seed: int) -> float:
    a, b = GRAD[method]
    return a + b * layer + 0.003 * seed


def _history(dataset: str, method: str, seed: int, has_val: bool, epochs: int) -> pd.DataFrame:
    final = ACC_BASE[method] + DATASET_OFFSET[dataset] + SEED_OFFSET[seed] * len(method) / 4
    e = np.arange(1, epochs + 1)
    test = final - 12.0 / e
    val = test - 0.5
    if epochs >= 3:
        test[-2] += 2.0  # best epoch is the second to last, so best != last
        val[-3] += 6.0  # validation picks a third epoch
    return pd.DataFrame({
        "epoch": e, "lr": 0.1 * 0.5 ** (e - 1),
        "train_loss": 2.0 * 0.7 ** e + 0.03 * (90 - ACC_BASE[method]) + 0.01 * seed,
        "train_acc": test + 3.0,
        "val_acc": val if has_val else np.full(epochs, np.nan),
        "test_loss": 1.5 * 0.8 ** e, "test_acc": test, "seconds": 10.0 + seed,
    })


def _probes(method: str, seed: int, T: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    layers, steps = [], []
    counts = np.zeros((len(LAYER_NAMES), T, len(BINS) - 1), dtype=np.int64)
    for epoch in PROBE_EPOCHS:
        scale = 1.0 if epoch == PROBE_EPOCHS[-1] else 0.5  # the first probe differs on purpose
        for l, name in enumerate(LAYER_NAMES):
            rate, grad = scale * layer_rate(method, l, seed), scale * layer_grad(method, l, seed)
            thetas, widths = [], []
            for t in range(1, T + 1):
                dt = t - (T + 1) / 2  # zero mean over t: per-layer means equal the layer rows
                if method in ADAPTIVE:
                    theta = 1.0 + 0.2 * l - 0.05 * dt + 0.01 * seed
                    theta_train = theta + 0.02
                elif method == "ltmd":
                    theta = theta_train = 0.8 + 0.05 * l
                elif method == "tgo":
                    theta, theta_train = 1.0, 1.1 + 0.1 * l - 0.03 * dt
                else:
                    theta = theta_train = 1.0
                width = 1.0 + math.tanh(theta_train - 1.0) if method in TGO else 1.0
                u_mean, u_std = 0.1 * t, 0.5 + 0.2 * l
                thetas.append(theta), widths.append(width)
                steps.append({
                    "epoch": epoch, "layer": l, "layer_name": name, "t": t,
                    "firing_rate": rate + 0.01 * dt, "grad_available": grad + 0.02 * dt,
                    "theta": theta, "theta_train": theta_train, "width": width,
                    "u_mean": u_mean, "u_std": u_std,
                })
                if epoch == PROBE_EPOCHS[-1]:
                    mass = np.diff(_phi((BINS - u_mean) / u_std))
                    counts[l, t - 1] = np.round(10000 * mass).astype(np.int64)
            layers.append({
                "epoch": epoch, "layer": l, "layer_name": name, "neurons": NEURONS[l],
                "firing_rate": rate, "grad_available": grad, "sops": rate * NEURONS[l] * T * 9.0,
                "theta_mean": float(np.mean(thetas)), "width_mean": float(np.mean(widths)),
            })
    return pd.DataFrame(layers), pd.DataFrame(steps), counts


def _metrics(dataset, model, T, method, seed, history: pd.DataFrame, layers: pd.DataFrame) -> dict:
    test = history["test_acc"].to_numpy()
    best = int(np.argmax(test))
    last = layers[layers["epoch"] == layers["epoch"].max()]
    rate = float(np.average(last["firing_rate"], weights=last["neurons"]))
    metrics = {
        "status": "finished", "method": method, "dataset": dataset, "model": model, "seed": seed,
        "T": T, "epochs": len(history), "best_test_acc": float(test[best]), "best_epoch": best + 1,
        "last_test_acc": float(test[-1]), "val_selected_test_acc": None, "val_selected_epoch": None,
        "train_seconds": float(history["seconds"].sum()), "params": 12345,
        "mean_firing_rate": rate, "sops_per_sample": float(last["sops"].sum()),
        "energy_uj_per_sample": 1e-6 * (0.9 * float(last["sops"].sum()) + 4.6 * 1e5),
    }
    if history["val_acc"].notna().any():
        sel = int(np.nanargmax(history["val_acc"].to_numpy()))
        metrics.update(val_selected_test_acc=float(test[sel]), val_selected_epoch=sel + 1)
    if method in ADAPTIVE:
        metrics["test_acc_batch_thresholds"] = float(test[-1]) - 0.3
    return metrics


def _config(dataset, model, T, method, seed, epochs) -> dict:
    return {
        "method": method, "method_options": {"fc": 1.0} if method in ADAPTIVE else {},
        "dataset": dataset, "model": model, "model_options": {}, "T": T, "epochs": epochs,
        "batch_size": 100, "optimizer": "sgd", "lr": 0.1, "weight_decay": 1e-4,
        "label_smoothing": 0.1, "seed": seed, "device": "cpu",
    }


def _env(dataset: str, device: str) -> dict:
    return {"git_commit": "0123456789abcdef", "device_name": device,
            "data_fingerprint": f"sha256:{dataset}"}


def write_runs(root: Path, unfinished: bool = True) -> list[SynthRun]:
    """Write every synthetic run folder under ``root/synthetic/...``; return what was written."""
    runs = []
    for dataset, model, T, has_val in SETTINGS:
        device = "NVIDIA H200" if dataset == "cifar10" else "cpu"
        for method in METHODS:
            for seed in SEEDS[:1] if method in SINGLE_SEED else SEEDS:
                path = root / PIPELINE / dataset / method / f"seed{seed}"
                history = _history(dataset, method, seed, has_val, EPOCHS)
                layers, steps, counts = _probes(method, seed, T)
                metrics = _metrics(dataset, model, T, method, seed, history, layers)
                write_run_folder(path, _config(dataset, model, T, method, seed, EPOCHS), history,
                                 metrics, _env(dataset, device), layers, steps,
                                 (counts, BINS, LAYER_NAMES))
                runs.append(SynthRun(path, dataset, model, T, method, seed, "finished", metrics,
                                     history, layers, steps, counts))
    if unfinished:
        # never finished: absurd numbers in the history that would move every ds-atgo
        # aggregate if counted, and a run that stopped before its first epoch
        for method, seed in (("ds-atgo", 7), ("at", 9)):
            path = root / PIPELINE / "cifar10" / method / f"seed{seed}"
            write_run_folder(path, _config("cifar10", "resnet19", 2, method, seed, EPOCHS),
                             pd.DataFrame(), None, _env("cifar10", "cpu"))
            runs.append(SynthRun(path, "cifar10", "resnet19", 2, method, seed, "no metrics.json",
                                 {}, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(),
                                 np.zeros((0, 2, len(BINS) - 1))))
    return runs
