"""The one exception the database layer raises for anything a user can cause or fix."""

from __future__ import annotations


class DatabaseError(Exception):
    """A one-line message meant for the user: callers print str(exc) and exit non-zero."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
