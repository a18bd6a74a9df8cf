"""Errors a user can fix. The CLI prints their message on one line and exits non-zero,
without a traceback; anything else is a bug and keeps its traceback."""

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """Bad input: the message says what is wrong and how to fix it."""


def did_you_mean(names: str | Iterable[str], valid: Iterable[str]) -> str:
    """``"did you mean epochs? "`` naming the valid names closest to each unknown one, or ``""``:
    a typo is the usual cause of an unknown name, so the likely fix comes before the full list."""
    names = [names] if isinstance(names, str) else [str(n) for n in names]
    valid = [str(v) for v in valid]
    close = {n: difflib.get_close_matches(n, valid, n=3, cutoff=0.6) for n in names}
    found = {n: c for n, c in close.items() if c}
    if not found:
        return ""
    if len(names) == 1:
        return f"did you mean {_either(found[names[0]])}? "
    return "did you mean " + ", ".join(f"{_either(c)} for {n}" for n, c in found.items()) + "? "


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def unknown_name(kind: str, name: str, valid: list[str]) -> UserError:
    return UserError(f"unknown {kind} {name!r}; {did_you_mean(name, valid)}"
                     f"valid {kind}s: {', '.join(sorted(valid))}")


def check_choice(option: str, value: object, choices: Iterable[str]) -> None:
    """A setting that takes one of a few named values (optimizer, tgo_rule, ...)."""
    choices = list(choices)
    if value not in choices:
        raise UserError(f"{option} must be one of {', '.join(choices)}; "
                        f"{did_you_mean(str(value), choices)}got {value!r}")
