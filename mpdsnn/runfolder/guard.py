"""The rules that keep results from being lost or mixed when a run starts.

``--out`` takes only a new or empty folder, or the run folder of the same run (to resume): never
the working directory, a project root, ``''``, a folder holding other runs or other files, or a
folder inside another run. One trainer per run folder, enforced by a lock file *beside* the
folder, so DVC (which deletes a stage's outputs before rerunning it) cannot delete it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from mpdsnn.errors import UserError
from mpdsnn.runfolder import layout
from mpdsnn.runfolder.fingerprint import changed_keys
from mpdsnn.runfolder.io import read_json, read_yaml

log = logging.getLogger(__name__)

MIN_FREE_BYTES = 50 * 2**20
PROJECT_MARKERS = (".git", "dvc.yaml", "pyproject.toml", ".dvc")

RESUMABLE_CHANGES = frozenset({"device", "tracking", "tracking_uri", "run_name", "checkpoint_dir",
                               "data_root", "mirror", "download", "experiment"})
"""Settings that may differ on --resume. Not num_workers: with workers, augmentation draws from
per-worker seeds instead of the main process's RNG, so the continuation would differ. A device
change is allowed (moving a run between machines) at the price of bitwise equality."""


def is_run_folder(folder: Path) -> bool:
    return (folder / layout.CONFIG).is_file()


def _runs_below(folder: Path, most: int = 3) -> list[Path]:
    found = []
    for here, dirs, files in os.walk(folder):
        if layout.CONFIG in files and Path(here) != folder:
            found.append(Path(here))
            dirs.clear()
            if len(found) >= most:
                break
        dirs[:] = [d for d in dirs if not d.startswith(".")]
    return found


def _leftovers(folder: Path) -> list[str]:
    """In a folder without ``config.yaml`` (the first file a run writes), only what a run's own
    start can leave is fine: a temporary file, an empty checkpoint folder. Anything else, a file
    named like a run's included, is somebody's and must not be overwritten."""
    def own(p: Path) -> bool:
        return ((p.name.startswith(".") and p.name.endswith(".tmp"))
                or (p.name == layout.CHECKPOINT_DIR and p.is_dir() and not any(p.iterdir())))
    return sorted(p.name for p in folder.iterdir() if not own(p))


def check_out_folder(out: str | Path) -> Path:
    """The run folder ``out`` names, or a UserError when it would lose or mix results."""
    text = str(out).strip()
    if not text or text in (".", "./"):
        raise UserError(f"--out {str(out)!r} names the working directory; give a new folder for "
                        "this run, e.g. --out runs/my-run")
    folder = Path(text).expanduser()
    resolved = folder.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise UserError(f"--out {text} is the working directory or one above it; give a new "
                        "folder for this run, e.g. --out runs/my-run")
    for parent in resolved.parents:
        if is_run_folder(parent):
            raise UserError(f"--out {text} lies inside the run folder {parent}; runs never nest: "
                            "give a folder outside it")
    if not resolved.exists():
        return folder
    if not resolved.is_dir():
        raise UserError(f"--out {text} is a file, not a folder; give a new folder for this run")
    if is_run_folder(resolved):
        return folder
    markers = [m for m in PROJECT_MARKERS if (resolved / m).exists()]
    if markers:
        raise UserError(f"--out {text} is a project folder (it holds {', '.join(markers)}); give "
                        "a new folder for this run, e.g. --out runs/my-run")
    nested = _runs_below(resolved)
    if nested:
        raise UserError(f"--out {text} holds other runs ({', '.join(map(str, nested))}); give "
                        "a new folder for this run, one level below, e.g. --out "
                        f"{folder / 'my-run'}")
    other = _leftovers(resolved)
    if other:
        shown = ", ".join(other[:5]) + (" ..." if len(other) > 5 else "")
        raise UserError(f"--out {text} already holds files that are not a run's ({shown}); "
                        "give a new or empty folder")
    return folder


def prepare_folder(folder: Path, config: dict[str, Any], resume: str | None) -> None:
    """Refuses to start where it would lose or mix results; checks the folder is writable.

    ``resume``: None (a new run), "strict" (continue; the config must match) or "auto" (the
    pipelines: continue if the config matches, else start afresh)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test.tmp"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write to the output folder {folder}: {exc.strerror}; "
                        "choose a writable --out") from None
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise UserError(f"only {free // 2**20} MiB free on the disk holding {folder}; "
                        f"free at least {MIN_FREE_BYTES // 2**20} MiB or choose another --out")
    metrics = folder / layout.METRICS
    fix = f"delete {metrics} to train this run again"
    if metrics.exists() and read_json(metrics, fix).get("status") == layout.FINISHED:
        if resume != "auto":
            raise UserError(f"{folder} already holds a finished run; choose another --out "
                            "or delete the folder to train again")
        # A pipeline stage reran (its params or code changed) over its own persisted output:
        # what DVC does to other outputs, done here to the run's own files only.
        log.warning("%s holds a finished run of other params or code: retraining it", folder)
        remove_run_files(folder)
    saved = folder / layout.CONFIG
    if saved.exists() and not resume:
        raise UserError(f"{folder} holds an unfinished run; pass --resume to continue it, "
                        "or choose another --out")
    if saved.exists() and resume == "strict":
        old = read_yaml(saved, f"delete the folder {folder} to start this run afresh")
        changed = changed_keys(old, config, RESUMABLE_CHANGES)
        if changed:
            raise UserError(f"--resume with a different config ({', '.join(changed)} changed) "
                            f"would mix two runs in {folder}; resume with the original settings")


def remove_run_files(folder: Path) -> None:
    """Delete a run's own files (``layout.RUN_FILES``, then the emptied probes folder), nothing
    else: metrics.json first, so a crash midway leaves an unfinished run, never a mixed one."""
    for name in (layout.METRICS, *[n for n in layout.RUN_FILES if n != layout.METRICS]):
        (folder / name).unlink(missing_ok=True)
    probes = folder / layout.PROBES
    if probes.is_dir() and not any(probes.iterdir()):
        probes.rmdir()


def lock_path(folder: Path) -> Path:
    """``<parent>/.<name>.lock``: beside the run folder, so deleting the folder (DVC does,
    before rerunning a stage) does not delete the lock a running trainer holds."""
    folder = Path(folder).resolve()
    return folder.parent / f".{folder.name}.lock"


class RunLock:
    """An exclusive ``flock`` beside the run folder: a second trainer of the same run fails (or,
    given ``wait`` seconds, waits for the first to stop) instead of interleaving writes. The lock
    dies with its process, so it never goes stale; the file stays (removing a lock file others
    may be waiting on would let two processes hold "the" lock)."""

    def __init__(self, folder: Path, wait: float = 0.0) -> None:
        self.path, self.wait = lock_path(folder), wait
        self.handle: Any = None

    def __enter__(self) -> "RunLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(self.path, "a+")
        except OSError as exc:
            raise UserError(f"cannot write to the output folder {self.path.parent}: "
                            f"{exc.strerror}; choose a writable --out") from None
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = self._holder()
                if time.monotonic() >= deadline:
                    self.handle.close()
                    raise UserError(f"run folder {self.path.parent / self.path.name[1:-5]} is in "
                                    f"use by another trainer (pid {holder}); wait for it to "
                                    "finish, stop it, or choose another --out") from None
                log.info("waiting for the previous trainer of this run (pid %s) to stop", holder)
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(str(os.getpid()))
        self.handle.flush()
        return self

    def _holder(self) -> str:
        try:
            return self.path.read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    def __exit__(self, *exc: object) -> None:
        self.handle.seek(0)
        self.handle.truncate()
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()
