"""Tie a trainer's life to the process that started it.

DVC runs a stage's command as a child; when dvc itself is killed (SIGKILL, or a SIGTERM it does
not forward), the trainer would train on, and the next ``dvc repro`` would start a second one on
the same run. :func:`stop_with_parent` watches the nearest ancestor whose command line names a
program (``dvc``) and, when it dies, calls the same handler SIGTERM calls, so the trainer stops
at the next batch with its last checkpoint kept. ``mpdsnn pipeline train``'s workers stop with
their pool's process the same way (:func:`process_identity`, :func:`is_alive`; ``mpdsnn/batch.py``).
Linux only (``/proc``); elsewhere it does nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of ``pid`` from /proc, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the name in parentheses may hold spaces
    return int(fields[1]), fields[19]


def process_identity(pid: int) -> str | None:
    """``"<pid>:<start time>"``, which a reused pid does not match, or None when it is gone or
    there is no /proc."""
    stat = _stat(pid)
    return f"{pid}:{stat[1]}" if stat else None


def is_alive(identity: str) -> bool:
    """Whether the process :func:`process_identity` described still runs."""
    pid, _ = identity.split(":", 1)
    return process_identity(int(pid)) == identity


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def find_ancestor(program: str, pid: int | None = None) -> str | None:
    """:func:`process_identity` of the nearest ancestor running ``program`` (its executable's or
    a script argument's base name), or None."""
    stat = _stat(pid or os.getpid())
    while stat is not None and stat[0] > 1:
        parent = stat[0]
        if any(Path(arg).name == program for arg in _cmdline(parent)[:2]):
            return process_identity(parent)
        stat = _stat(parent)
    return None


def stop_with_parent(program: str, handler: Callable[[int, Any], None]) -> threading.Event | None:
    """Watch the nearest ``program`` ancestor; call ``handler(SIGTERM, None)`` once it dies.
    Returns an event that ends the watch, or None when there is no such ancestor."""
    ancestor = find_ancestor(program)
    if ancestor is None:
        return None
    done = threading.Event()

    def watch() -> None:
        while not done.wait(POLL_SECONDS):
            if not is_alive(ancestor):
                log.warning("%s (pid %s) is gone: stopping at the next batch", program,
                            ancestor.split(":", 1)[0])
                handler(signal.SIGTERM, None)
                return

    threading.Thread(target=watch, name=f"stop-with-{program}", daemon=True).start()
    return done
