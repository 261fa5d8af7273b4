"""Errors a user can fix: `run.py` prints their one-line message and exits non-zero."""


class GansError(Exception):
    """A problem in the user's input or environment; the message names it and the fix."""


def check_choice(key: str, value: str, choices: tuple[str, ...]) -> str:
    """`value`, or one line naming the config key and its choices."""
    if value not in choices:
        raise GansError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    return value


class DataError(GansError):
    """A missing, empty or unreadable data set."""


class NonFiniteLossError(GansError):
    """Training diverged to NaN/inf; the last good checkpoint is kept."""
