"""Errors a user can act on: printed as one line by the CLI, never as a traceback."""

from __future__ import annotations


class AudioworkoutError(Exception):
    """Base for every error the CLI reports as a single line (exit status 1)."""

    exit_code = 1


class ContentError(AudioworkoutError):
    """Bad routine, exercise or show file: names the file, the field, the value and what is allowed."""

    exit_code = 2

    def __init__(self, file: object, field: str, value: object, allowed: str):
        self.file, self.field, self.value, self.allowed = str(file), field, value, allowed
        shown = repr(value) if not isinstance(value, str) or value else "''"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{self.file}: {field}: got {shown}; {allowed}")


class UsageError(AudioworkoutError):
    """A request the tool cannot meet (e.g. a session length the routine cannot reach)."""

    exit_code = 2


class EngineError(AudioworkoutError):
    """A speech engine or voice that cannot be used (missing file, no network...)."""
