"""Errors a user can fix: `run.py` prints their one-line message and exits non-zero."""


class GansError(Exception):
    """A problem in the user's input or environment; the message names it and the fix."""


class DataError(GansError):
    """A missing, empty or unreadable data set."""


class NonFiniteLossError(GansError):
    """Training diverged to NaN/inf; the last good checkpoint is kept."""
