"""Errors raised by the dialogs layer.

Hierarchy::

    DialogError
    └── BotPackError      a bot pack that cannot be used; the message names the file, the path and the problem
"""

from __future__ import annotations


class DialogError(Exception):
    """Base of every error the dialogs layer raises."""


class BotPackError(DialogError):
    """A bot pack file that does not load or validate: `file`, `path` (e.g. `intents[2].queue`), `problem`."""

    def __init__(self, file: str, path: str, problem: str) -> None:
        super().__init__(f"{file}: {path}: {problem}" if path else f"{file}: {problem}")
        self.file = file
        self.path = path
        self.problem = problem
