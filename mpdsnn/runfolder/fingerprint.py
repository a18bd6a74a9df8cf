"""What makes two runs seeds of one experiment: the recipe fingerprint.

``code_hash()`` hashes the training code (every module training imports: the package minus its
analysis side, plus ``baselines``), so a checkpoint of other code is never resumed and runs of
two code versions never pool. ``recipe_fingerprint`` adds the resolved config minus what does
not change the numbers (seed, paths, tracking). Readers take both from ``recipe.json`` and never
import the method registry, so a verdict depends on what a run recorded, not on today's code.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

ANALYSIS_PARTS = ("report", "verdicts", "bench")
"""Subpackages of ``mpdsnn`` that only read run folders: editing them never retrains."""
ANALYSIS_FILES = ("runfolder/reader.py", "evaluate.py", "pipeline.py", "tracking_ui.py")
"""Modules that read results, serve them or write pipelines, never imported by training."""

NOT_IN_RECIPE = frozenset({
    "seed",  # what varies between the runs of one recipe
    "device",  # hardware is recorded in env.json and compared on its own
    "data_root", "mirror", "download",  # where the data comes from, not what it is
    "tracking", "tracking_uri", "experiment", "run_name", "checkpoint_dir",
})


def training_code_files() -> list[Path]:
    """The files whose content ``code_hash`` covers, sorted (also the DVC train deps)."""
    import baselines
    import mpdsnn

    package = Path(mpdsnn.__file__).parent
    files = [p for p in package.rglob("*") if p.suffix in (".py", ".c")  # .c: the native charge
             and p.relative_to(package).parts[0] not in ANALYSIS_PARTS
             and p.relative_to(package).as_posix() not in ANALYSIS_FILES]
    files += Path(baselines.__file__).parent.rglob("*.py")
    return sorted(files, key=_relative_name)


def _relative_name(path: Path) -> str:
    """``mpdsnn/train.py``: the name under the package's parent, the same on every machine."""
    parts = path.parts
    for root in ("mpdsnn", "baselines"):
        if root in parts:
            return "/".join(parts[len(parts) - parts[::-1].index(root) - 1:])
    return path.name


@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    """sha256 over the training code's relative names and bytes (12 hex digits shown)."""
    digest = hashlib.sha256()
    for path in training_code_files():
        digest.update(_relative_name(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def recipe_fingerprint(config: dict[str, Any], code: str) -> str:
    """A hash of the resolved config minus ``NOT_IN_RECIPE``, plus the code hash."""
    kept = {k: v for k, v in config.items() if k not in NOT_IN_RECIPE}
    text = json.dumps({"config": kept, "code": code}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def variant_options(options: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The method options that differ from the registered defaults (empty: the method as
    registered)."""
    return {k: options[k] for k in sorted(options) if k not in defaults or defaults[k] != options[k]}


def variant_label(variant: dict[str, Any]) -> str:
    """``"tgo_rule=code,fc=1.2"``; "" for the registered defaults."""
    return ",".join(f"{k}={variant[k]}" for k in sorted(variant))


def changed_keys(old: dict[str, Any], new: dict[str, Any], allowed: Iterable[str]) -> list[str]:
    """Config keys whose values differ, except those in ``allowed``."""
    allowed = set(allowed)
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and k not in allowed)


STAGE_SECTIONS = ("pipeline", "train", "recipe_cards")
"""Top-level params.yaml keys every train stage reads (with datasets.<d> and method_options.<m>)."""


def stage_key(params: dict[str, Any], dataset: str, method: str, seed: int,
              flags: dict[str, Any], code: str) -> str:
    """What one pipeline train stage is asked for: the params sections it reads (as its DVC
    ``params:`` list), its matrix values, any flags, and the training code. Computed from
    params.yaml without torch, so a stage whose finished run already has this key returns at
    once (``mpdsnn pipeline train`` trained it in a shared process)."""
    asked = {key: params.get(key) for key in STAGE_SECTIONS}
    def section(name: str, key: str) -> Any:  # a malformed file is refused later, with its line
        block = params.get(name)
        return block.get(key) if isinstance(block, dict) else block

    asked.update(dataset_section=section("datasets", dataset),
                 method_section=section("method_options", method),
                 dataset=dataset, method=method, seed=seed, flags=flags, code=code)
    return hashlib.sha256(json.dumps(asked, sort_keys=True, default=str).encode()).hexdigest()[:16]
