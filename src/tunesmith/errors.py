"""Errors a user can cause, kept apart from our own bugs.

A `UserError` is printed as one plain line and exits with status 2; anything else is a bug and keeps
its traceback. The message says what was wrong, the offending value, where, and the fix.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem in the user's config, data, model path or command line (exit status 2)."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
