"""Resume checkpoints: written atomically, loaded without unpickling code, stamped with the
training-code hash so a checkpoint of other code is never resumed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mpdsnn.errors import UserError
from mpdsnn.runfolder.io import atomic_write_bytes


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_write_bytes(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise UserError(f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}); "
                        "delete it to restart the run from scratch") from None
