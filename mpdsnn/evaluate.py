"""Re-evaluate a finished run folder: rebuild the model from its saved config and weights.

``model.pt`` carries the config that trained it; weights whose config differs from the folder's
``config.yaml`` (a model copied in from another run) are refused, never reported under this
run's name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mpdsnn.config import TrainConfig
from mpdsnn.errors import UserError
from mpdsnn.runfolder import layout, read_yaml
from mpdsnn.runfolder.fingerprint import changed_keys
from mpdsnn.runfolder.guard import RESUMABLE_CHANGES
from mpdsnn.train import Trainer, batch_statistics_thresholds, select_device


def load_weights(run_dir: Path) -> dict[str, Any]:
    """``model.pt`` of a finished run, checked against the folder's own ``config.yaml``."""
    model_file = run_dir / layout.MODEL
    if not model_file.exists():
        raise UserError(f"{run_dir} holds no finished run (no {layout.MODEL}); train it first or "
                        "pass the folder given to `mpdsnn train --out`")
    try:
        saved = torch.load(model_file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise UserError(f"{model_file} is corrupt or unreadable ({type(exc).__name__})") from None
    config_file = run_dir / layout.CONFIG
    if config_file.exists():
        folder_config = read_yaml(config_file)
        weights_config = {**saved["config"], "T": saved["T"], "model": saved["model_name"]}
        compared = {k: folder_config.get(k) for k in weights_config if k != "method_options"}
        changed = changed_keys(compared, {k: weights_config[k] for k in compared}, RESUMABLE_CHANGES)
        if changed:
            shown = ", ".join(f"{k}: {weights_config[k]!r} vs {folder_config.get(k)!r}" for k in changed[:4])
            raise UserError(f"{model_file} was not trained by this run ({shown} in model.pt vs "
                            f"{layout.CONFIG}); put back the run's own weights or evaluate the "
                            "folder they came from")
    return saved


def evaluate_run(run_dir: Path, device: str = "auto") -> dict[str, Any]:
    saved = load_weights(run_dir)
    config = TrainConfig(**{**saved["config"], "device": device, "tracking": False}).validate()
    trainer = Trainer(config, run_dir)
    trainer.device = select_device(device)
    splits = trainer.load_data()
    model = trainer.build_model(splits.test[0][0])
    model.load_state_dict(saved["state_dict"])
    model.to(trainer.device)
    loss, acc = trainer.evaluate(model, splits.test)
    result: dict[str, Any] = {"run": str(run_dir), "test_loss": loss, "test_acc": acc,
                              "data_fingerprint": splits.fingerprint}
    with batch_statistics_thresholds(model) as has_adaptive:
        if has_adaptive:
            result["test_acc_batch_thresholds"] = trainer.evaluate(model, splits.test)[1]
    return result
