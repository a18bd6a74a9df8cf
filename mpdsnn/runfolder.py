"""The run folder's safety rules: one writer at a time, a finished run is never overwritten,
checkpoints are written atomically and loaded without unpickling code."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml

from mpdsnn.errors import UserError

MIN_FREE_BYTES = 50 * 2**20


class RunLock:
    """An exclusive ``flock`` on ``<run>/.lock``: a second process given the same folder fails
    at once instead of interleaving writes. The lock dies with the process (no stale locks)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / ".lock"
        self.handle: Any = None

    def __enter__(self) -> "RunLock":
        self.handle = open(self.path, "a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise UserError(f"run folder {self.path.parent} is in use by another process; "
                            "wait for it to finish or choose another --out") from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(str(os.getpid()))
        self.handle.flush()
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def prepare_folder(folder: Path, config: dict[str, Any], resume: str | bool | None) -> None:
    """Refuses to start where it would lose or mix results; checks the folder is writable.

    ``resume``: None (a new run), "strict" (continue; the config must match) or "auto" (the
    pipelines: continue if the config matches, else start afresh)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write to the output folder {folder}: {exc.strerror}; "
                        "choose a writable --out") from None
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise UserError(f"only {free // 2**20} MiB free on the disk holding {folder}; "
                        f"free at least {MIN_FREE_BYTES // 2**20} MiB or choose another --out")
    metrics = folder / "metrics.json"
    if metrics.exists() and json.loads(metrics.read_text()).get("status") == "finished":
        raise UserError(f"{folder} already holds a finished run; choose another --out "
                        "or delete the folder to train again")
    saved = folder / "config.yaml"
    if saved.exists() and not resume:
        raise UserError(f"{folder} holds an unfinished run; pass --resume to continue it, "
                        "or choose another --out")
    if saved.exists() and resume == "strict":
        old = yaml.safe_load(saved.read_text()) or {}
        changed = sorted(k for k in set(old) | set(config)
                         if old.get(k) != config.get(k) and k not in RESUMABLE_CHANGES)
        if changed:
            raise UserError(f"--resume with a different config ({', '.join(changed)} changed) "
                            f"would mix two runs in {folder}; resume with the original settings")


# Settings that may differ on --resume. Not num_workers: with workers, augmentation draws from
# per-worker seeds instead of the main process's RNG, so the continuation would differ. A device
# change is allowed (moving a run between machines) at the price of bitwise equality.
RESUMABLE_CHANGES = {"device", "tracking", "tracking_uri", "run_name", "checkpoint_dir"}


def atomic_write_bytes(path: Path, writer) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``: a crash
    mid-write leaves the previous file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_write_bytes(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise UserError(f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}); "
                        "delete it to restart the run from scratch") from None


def write_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    atomic_write_bytes(path, lambda f: f.write(text.encode()))
