"""Errors a user can act on: printed as one line each by the CLI, never as a traceback."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

VALUE_LIMIT = 80  # a message quotes at most this many characters of a value


class AudioworkoutError(Exception):
    """Base for every error the CLI reports as a single line (exit status 1)."""

    exit_code = 1


def printable(text: str) -> str:
    """Text safe to print on any terminal: control characters and lone surrogates as escapes."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def clip(text: str, limit: int = VALUE_LIMIT) -> str:
    """At most `limit` characters, so a message stays one readable line whatever the value."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show_value(value: object, limit: int = VALUE_LIMIT) -> str:
    """A value as a message quotes it; containers by type and size, never the repr of a big structure."""
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return clip(repr(value[: limit + 20]), limit)
    if isinstance(value, bool) or isinstance(value, float):
        return clip(repr(value), limit)
    if isinstance(value, int):
        # str() of a 5,000-digit int raises in Python 3.11; describe it instead.
        return clip(str(value), limit) if value.bit_length() < 256 else "a very large integer"
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        noun = "a mapping" if isinstance(value, dict) else "a list"
        return f"{noun} of {len(value)} item{'s' if len(value) != 1 else ''}"
    return f"a {type(value).__name__}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file, with its position so an editor can jump straight to it."""

    file: str
    line: int | None  # 1-based; None when the problem has no place in the file
    column: int | None  # 1-based
    field: str  # dotted path, e.g. sections[0].exercises[1].exercise
    value: str  # already quoted for the message (see show_value)
    allowed: str

    def __str__(self) -> str:
        where = printable(self.file)
        if self.line is not None:
            where += f":{self.line}:{self.column if self.column is not None else 1}"
        return f"{where}: {printable(self.field)}: got {self.value}; {printable(self.allowed)}"


class ContentError(AudioworkoutError):
    """Bad routine, exercise or show file: every problem found, one line each (FILE:LINE:COL: FIELD: got …; …).

    `ContentError(file, field, value, allowed)` still makes a one-problem error without a position, for
    the checks made outside the file reader; `ContentError(problems=[…])` carries a whole file's.
    """

    exit_code = 2

    def __init__(
        self,
        file: object = None,
        field: str = "",
        value: object = None,
        allowed: str = "",
        *,
        problems: Iterable[Problem] = (),
    ):
        self.problems: list[Problem] = list(problems)
        if not self.problems:
            self.problems = [Problem(str(file), None, None, field, show_value(value), allowed)]
            self.value = value
        else:
            self.value = self.problems[0].value
        first = self.problems[0]
        self.file, self.field, self.allowed = first.file, first.field, first.allowed
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(AudioworkoutError):
    """A request the tool cannot meet (e.g. a session length the routine cannot reach)."""

    exit_code = 2


class UnreachableLength(UsageError):
    """A session length no plan of the routine lands on, at this level (and voice)."""


class EngineError(AudioworkoutError):
    """A speech engine or voice that cannot be used (missing file, no network...)."""
