"""Re-evaluate a finished run folder: rebuild the model from its saved config and weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mpdsnn.config import TrainConfig
from mpdsnn.errors import UserError
from mpdsnn.train import Trainer, batch_statistics_thresholds, select_device


def evaluate_run(run_dir: Path, device: str = "auto") -> dict[str, Any]:
    model_file = run_dir / "model.pt"
    if not model_file.exists():
        raise UserError(f"{run_dir} holds no finished run (no model.pt); train it first or "
                        "pass the folder given to `mpdsnn train --out`")
    try:
        saved = torch.load(model_file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"{model_file} is corrupt or unreadable ({type(exc).__name__})") from None
    config = TrainConfig(**{**saved["config"], "device": device, "tracking": False}).validate()
    trainer = Trainer(config, run_dir)
    trainer.device = select_device(device)
    splits = trainer._load_data()
    model = trainer._build_model(splits.test[0][0])
    model.load_state_dict(saved["state_dict"])
    model.to(trainer.device)
    loss, acc = trainer.evaluate(model, splits.test)
    result: dict[str, Any] = {"run": str(run_dir), "test_loss": loss, "test_acc": acc,
                              "data_fingerprint": splits.fingerprint}
    with batch_statistics_thresholds(model) as has_adaptive:
        if has_adaptive:
            result["test_acc_batch_thresholds"] = trainer.evaluate(model, splits.test)[1]
    return result
