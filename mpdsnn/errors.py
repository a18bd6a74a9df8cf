"""Errors a user can fix. The CLI prints their message on one line and exits non-zero,
without a traceback; anything else is a bug and keeps its traceback."""


class UserError(Exception):
    """Bad input: the message says what is wrong and how to fix it."""


def unknown_name(kind: str, name: str, valid: list[str]) -> UserError:
    return UserError(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(sorted(valid))}")
