"""Atomic writes and contract-checked reads. A crash mid-write leaves the previous file; a
damaged file is a one-line error naming the file and the fix, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import yaml

from mpdsnn.errors import UserError
from mpdsnn.files import atomic_write_bytes


def write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str))


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    write_text(path, yaml.safe_dump(data, sort_keys=True))


FIX = "rerun that training or delete the folder"


def _read_mapping(path: Path, parse: Callable[[str], Any], errors: tuple[type[Exception], ...],
                  kind: str, fix: str) -> dict[str, Any]:
    """``parse`` of ``path``'s text as a mapping; anything else is one UserError naming the file."""
    try:
        data = parse(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, *errors) as err:
        first = str(err).splitlines()[0]
        raise UserError(f"{path} is not valid {kind} ({first}); {fix}") from None
    except OSError as err:
        raise UserError(f"cannot read {path} ({err.strerror}); {fix}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a {kind} mapping, found {type(data).__name__}; {fix}")
    return data


def read_json(path: Path, fix: str = FIX) -> dict[str, Any]:
    """A JSON object from ``path``; a damaged or non-object file is a UserError naming it."""
    return _read_mapping(path, json.loads, (json.JSONDecodeError,), "JSON", fix)


def read_yaml(path: Path, fix: str = FIX) -> dict[str, Any]:
    """A YAML mapping from ``path``; a damaged or non-mapping file is a UserError naming it."""
    return _read_mapping(path, lambda text: yaml.safe_load(text) or {}, (yaml.YAMLError,), "YAML", fix)
