"""One reader for every YAML file the tool reads (routines, exercises, the podcast show file).

Hand-written, not msgspec or a schema library, because the messages are the point: msgspec stops at
the first error, and its YAML support goes through PyYAML's safe_load, which throws the positions away
and itself falls over on hostile files (an alias bomb expands in memory; a 5,000-digit integer raises
from int()). Here a file is

1. read defensively: a regular file only (a FIFO or /dev/zero is refused before it is opened), at most
   MAX_BYTES, strict UTF-8;
2. composed into PyYAML's node tree, which keeps every value's line and column and builds no Python
   objects; composition stops past MAX_DEPTH levels, MAX_VALUES values or MAX_ALIASES aliases;
3. surveyed once, iteratively: aliases may not expand past MAX_VALUES values or nest past MAX_DEPTH
   (refuses "billion laughs" on the shared node graph, before anything is expanded), keys are unique,
   integers are short, text has no control characters or lone surrogates, tags are plain YAML;
4. walked by a schema written as plain code (content.py, publish/podcast.py) through `Reader`, whose
   getters record a `Problem` and carry on, so one run reports every problem in the file.

Each problem prints as ``FILE:LINE:COL: FIELD: got VALUE; ALLOWED`` with VALUE quoted in at most 80
characters (a container is previewed within that budget, never repr'd whole).
"""

from __future__ import annotations

import difflib
import math
import os
import stat
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import VALUE_LIMIT, ContentError, Problem, clip, printable

MAX_BYTES = 256 * 1024  # the largest bundled file is under 8 KiB
MAX_DEPTH = 20  # a routine needs 7 levels (routine > sections > section > exercises > item > amounts > n)
MAX_VALUES = 10_000  # values in the file, aliases expanded; a long routine has a few hundred
MAX_ALIASES = 100
MAX_NUMBER_CHARS = 20  # an integer or float written with more characters is refused before conversion
MAX_PROBLEMS = 50  # per file; a hostile file with 30,000 unknown keys gets 50 lines and a count
MAX_TEXT = 500  # characters in one spoken text; the longest bundled one is 124
MAX_ITEMS = 100  # items in one list

_TAG = "tag:yaml.org,2002:"
NULL, BOOL, INT, FLOAT, STR = (_TAG + t for t in ("null", "bool", "int", "float", "str"))
SEQ, MAP, MERGE = _TAG + "seq", _TAG + "map", _TAG + "merge"
_PLAIN_TAGS = {NULL, BOOL, INT, FLOAT, STR, SEQ, MAP, MERGE, _TAG + "timestamp"}
_CONSTRUCT = SafeConstructor()
T = TypeVar("T")
_BAD_CHARS = {c for c in range(0x20) if c not in (0x09, 0x0A)} | set(range(0x7F, 0xA0)) | {0xFFFE, 0xFFFF}


class _Refused(Exception):
    """Composition stopped: the file is too deep or too big to look at further."""

    def __init__(self, mark: Any, value: str, allowed: str):
        super().__init__(allowed)
        self.mark, self.value, self.allowed = mark, value, allowed


class _Loader(yaml.SafeLoader):
    """PyYAML's safe composer, counting depth, values and aliases as it goes so a hostile file stops early."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.depth = self.values = self.aliases = 0

    def compose_node(self, parent: Node | None, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise _Refused(
                    event.start_mark,
                    f"more than {MAX_ALIASES} aliases",
                    f"at most {MAX_ALIASES} aliases (*name) in one file",
                )
            return super().compose_node(parent, index)
        self.values += 1
        if self.values > MAX_VALUES:
            raise _Refused(
                event.start_mark, f"more than {MAX_VALUES} values", f"at most {MAX_VALUES} values in one file"
            )
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _Refused(
                    event.start_mark,
                    f"more than {MAX_DEPTH} levels of nesting",
                    f"at most {MAX_DEPTH} levels of lists and mappings inside each other",
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


# --------------------------------------------------------------------------- problems


class Report:
    """The problems found in one file (and in the exercise files a routine pulls in)."""

    def __init__(self, file: object):
        self.file = str(file)
        self.problems: list[Problem] = []
        self.quiet: set[int] = set()  # nodes the survey already reported; getters skip them silently
        self.merged: set[str] = set()  # other files whose problems are already in the list

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, where: Any, field: str, value: str, allowed: str) -> None:
        """Record a problem; `where` is a node or a PyYAML mark (None: the file as a whole)."""
        mark = getattr(where, "start_mark", where)
        line = column = None
        if mark is not None and getattr(mark, "line", None) is not None:
            line, column = mark.line + 1, mark.column + 1
        self.problems.append(Problem(self.file, line, column, field or "(top level)", value, allowed))

    def merge(self, error: ContentError) -> None:
        """Add another file's problems once, however many times this file refers to it."""
        if error.file in self.merged:
            return
        self.merged.add(error.file)
        self.problems.extend(error.problems)

    def raise_if_any(self) -> None:
        if self.problems:
            raise ContentError(problems=_ordered(self.problems))


def _ordered(problems: list[Problem]) -> list[Problem]:
    """Grouped by file in first-seen order, each file top to bottom, at most MAX_PROBLEMS per file."""
    files: dict[str, list[Problem]] = {}
    for p in problems:
        files.setdefault(p.file, []).append(p)
    out: list[Problem] = []
    for file, group in files.items():
        group.sort(key=lambda p: (p.line or 0, p.column or 0))
        out.extend(group[:MAX_PROBLEMS])
        if len(group) > MAX_PROBLEMS:
            out.append(
                Problem(
                    file,
                    None,
                    None,
                    "(file)",
                    f"{len(group) - MAX_PROBLEMS} more problems",
                    f"only the first {MAX_PROBLEMS} are listed; fix those first",
                )
            )
    return out


# --------------------------------------------------------------------------- reading the file


def read(path: Path | str) -> Reader:
    """The file's root value as a Reader; raises ContentError at once when there is nothing to walk."""
    report = Report(path)
    text = _read_text(Path(path), report)
    root = None if text is None else _compose(text, report)
    if report.problems or (root is not None and not _survey(root, report)):
        report.raise_if_any()
    return Reader(report, root, "")  # may carry survey problems (duplicate keys...); the schema adds its own


def _read_text(path: Path, report: Report) -> str | None:
    """The file's text: checked to be a regular file of at most MAX_BYTES before a byte is read."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        report.add(None, "(file)", "nothing", "file not found; give the path of a .yaml file")
        return None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        report.add(None, "(file)", "an unreadable path", f"cannot be read: {getattr(exc, 'strerror', None) or exc}")
        return None
    what = _file_type(info.st_mode)
    if what:
        report.add(None, "(file)", what, "expected a regular .yaml file")
        return None
    if info.st_size > MAX_BYTES:
        report.add(
            None, "(file)", f"{info.st_size} bytes", f"expected at most {MAX_BYTES} bytes ({MAX_BYTES // 1024} KiB)"
        )
        return None
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        report.add(None, "(file)", "an unreadable file", f"cannot be read: {exc.strerror or exc}")
        return None
    try:
        info = os.fstat(fd)  # the path may have been swapped for a FIFO since the stat above
        what = _file_type(info.st_mode)
        if what:
            report.add(None, "(file)", what, "expected a regular .yaml file")
            return None
        chunks, size = [], 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        report.add(None, "(file)", "an unreadable file", f"cannot be read: {exc.strerror or exc}")
        return None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_BYTES:
        report.add(None, "(file)", f"more than {MAX_BYTES} bytes", f"expected at most {MAX_BYTES} bytes")
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = data[: exc.start]
        line = head.count(b"\n")
        column = len(head) - (head.rfind(b"\n") + 1)
        report.add(
            _Mark(line, column),
            "(file)",
            f"byte 0x{data[exc.start]:02x}",
            "expected UTF-8 text (save the file as UTF-8)",
        )
        return None


def _file_type(mode: int) -> str:
    """'' for a regular file, else what it is, for the message."""
    if stat.S_ISREG(mode):
        return ""
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


class _Mark:
    """A position outside PyYAML (0-based, like its marks)."""

    def __init__(self, line: int, column: int):
        self.line, self.column = line, column


def _compose(text: str, report: Report) -> Node | None:
    """The node tree (None for an empty file); YAML errors become one positioned problem."""
    loader = None
    try:
        loader = _Loader(text)  # its reader refuses control characters here, before any parsing
        return loader.get_single_node()
    except _Refused as exc:
        report.add(exc.mark, "(file)", exc.value, exc.allowed)
    except yaml.reader.ReaderError as exc:
        head = text[: exc.position]
        mark = _Mark(head.count("\n"), exc.position - (head.rfind("\n") + 1))
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        report.add(
            mark,
            "(YAML text)",
            f"character U+{char:04X}",
            "control characters are not allowed in YAML; write text only",
        )
    except yaml.MarkedYAMLError as exc:
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        report.add(exc.problem_mark or exc.context_mark, "(YAML syntax)", clip(repr(problem)), "expected valid YAML")
    except yaml.YAMLError as exc:
        report.add(
            None, "(YAML syntax)", clip(repr(str(exc).splitlines()[0] if str(exc) else "?")), "expected valid YAML"
        )
    except RecursionError:  # cannot happen below MAX_DEPTH; kept so no input can give a traceback
        report.add(None, "(file)", "nesting too deep", f"at most {MAX_DEPTH} levels")
    finally:
        if loader is not None:
            loader.dispose()
    return None


def _children(node: Node) -> Iterator[tuple[Node, str | int | None]]:
    """A node's children with the path step to each (keys have no step of their own)."""
    if isinstance(node, SequenceNode):
        for i, child in enumerate(node.value):
            yield child, i
    elif isinstance(node, MappingNode):
        for key, value in node.value:
            yield key, None
            yield value, key.value if isinstance(key, ScalarNode) else "?"


def _survey(root: Node, report: Report) -> bool:
    """One iterative pass over the node graph: alias bombs, recursion, duplicate keys, bad scalars.
    False when the graph is too big, deep or recursive to walk at all.

    Aliases make the tree a graph whose nodes are shared; sizes and heights are counted once per node
    (memoised), so a billion-laughs file is measured in microseconds and refused before any expansion.
    """
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    stack: list[tuple[Node, str, bool]] = [(root, "", False)]
    while stack:
        node, path, leaving = stack.pop()
        key = id(node)
        if leaving:
            kids = [c for c, _ in _children(node)]
            size[key] = min(1 + sum(size[id(c)] for c in kids), MAX_VALUES + 1)
            height[key] = 1 + max((height[id(c)] for c in kids), default=0)
            state[key] = 2
            if size[key] > MAX_VALUES:
                report.add(
                    node,
                    path,
                    f"more than {MAX_VALUES} values once aliases are expanded",
                    f"at most {MAX_VALUES} values; aliases (*name) may not multiply a file (alias bomb)",
                )
                return False
            if height[key] > MAX_DEPTH:
                report.add(
                    node,
                    path,
                    f"more than {MAX_DEPTH} levels once aliases are expanded",
                    f"at most {MAX_DEPTH} levels of lists and mappings inside each other",
                )
                return False
            continue
        seen = state.get(key)
        if seen == 2:
            continue
        if seen == 1:
            report.add(node, path, "an alias inside its own anchor", "a value may not contain itself (recursive alias)")
            return False
        state[key] = 1
        stack.append((node, path, True))
        if node.tag not in _PLAIN_TAGS:
            report.add(
                node,
                path,
                clip(repr(printable(node.tag.replace(_TAG, "!!")[:VALUE_LIMIT]))),
                "YAML tags (!name) are not used in these files; remove it",
            )
            report.quiet.add(key)
        if isinstance(node, ScalarNode):
            _check_scalar(node, path, report)
        elif isinstance(node, MappingNode):
            _check_keys(node, path, report)
        for child, step in reversed(list(_children(node))):
            stack.append((child, path if step is None else join(path, step), False))
    return True


def _check_scalar(node: ScalarNode, path: str, report: Report) -> None:
    value = node.value
    bad = next((ch for ch in value if ord(ch) in _BAD_CHARS or 0xD800 <= ord(ch) <= 0xDFFF), None)
    if bad is not None:
        what = "a lone surrogate" if 0xD800 <= ord(bad) <= 0xDFFF else "a control character"
        report.add(
            node, path, shown(node), f"text may not contain {what} (U+{ord(bad):04X}); only tab and newline are allowed"
        )
        report.quiet.add(id(node))
    elif node.tag in (INT, FLOAT) and len(value) > MAX_NUMBER_CHARS:
        report.add(
            node,
            path,
            f"a number written with {len(value)} characters",
            f"numbers of at most {MAX_NUMBER_CHARS} characters",
        )
        report.quiet.add(id(node))


def _check_keys(node: MappingNode, path: str, report: Report) -> None:
    first: dict[str, Node] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, ScalarNode):
            report.add(key_node, path, shown(key_node), "field names must be text, not a list or mapping")
            continue
        name = key_node.value
        if name in first and key_node.tag != MERGE:
            earlier = first[name].start_mark
            report.add(
                key_node,
                join(path, name),
                clip(repr(name[:VALUE_LIMIT])),
                f"duplicate key; first given at line {earlier.line + 1}:{earlier.column + 1}; give each once",
            )
        first.setdefault(name, key_node)


# --------------------------------------------------------------------------- quoting values


def join(path: str, step: str | int) -> str:
    """`path.key` or `path[3]`; a key is shown in at most 40 characters."""
    if isinstance(step, int):
        return f"{path}[{step}]"
    step = clip(printable(step[:60]), 40) or '""'
    return f"{path}.{step}" if path else step


def shown(node: Node | None) -> str:
    """A value as a message quotes it: at most 80 characters, containers previewed, nothing repr'd whole."""
    if node is None:
        return "nothing"
    return clip(_preview(node, VALUE_LIMIT + 3, top=True))


def _preview(node: Node, room: int, top: bool = False) -> str:
    if isinstance(node, ScalarNode):
        if node.tag == NULL:
            return "nothing" if top else "null"
        if node.tag == STR or node.tag not in _PLAIN_TAGS:
            return repr(node.value[: room + 2]) if top or node.style else printable(node.value[: room + 2])
        return printable(node.value[: room + 2])
    opening, closing = ("{", "}") if isinstance(node, MappingNode) else ("[", "]")
    out = opening
    for i, item in enumerate(node.value):
        if len(out) >= room:
            return out + "...}" if closing == "}" else out + "...]"
        if i:
            out += ", "
        if isinstance(item, tuple):
            out += _preview(item[0], room - len(out)) + ": " + _preview(item[1], room - len(out) - 2)
        else:
            out += _preview(item, room - len(out))
    return out + closing


def build(cls: Callable[..., T], **values: Any) -> T:
    """Construct a result after a walk with no problems, where no getter returned None (None meant a problem)."""
    return cls(**values)


def local_file(beside: Path, name: str) -> Path | None:
    """`name` (relative to the file `beside`, `~` allowed) as an absolute path if it is a regular file, else None.

    Never raises: a path too long for the system, a `~nobody` or a symlink loop is simply not a file."""
    try:
        path = (beside.parent / Path(name).expanduser()).resolve()
        return path if path.is_file() else None
    except (OSError, ValueError, RuntimeError):
        return None


# --------------------------------------------------------------------------- walking the tree


def scalar(node: ScalarNode) -> Any:
    """A scalar node's Python value (None, bool, int, float or its text); never converts a huge number."""
    tag, value = node.tag, node.value
    if tag == NULL:
        return None
    try:
        if tag == BOOL:
            return _CONSTRUCT.construct_yaml_bool(node)
        if tag == INT and len(value) <= MAX_NUMBER_CHARS:
            return _CONSTRUCT.construct_yaml_int(node)
        if tag == FLOAT and len(value) <= MAX_NUMBER_CHARS:
            return _CONSTRUCT.construct_yaml_float(node)
    except (ValueError, TypeError, KeyError):  # e.g. `0x_`, which the YAML 1.1 resolver calls an int
        pass
    return value


class Reader:
    """A value in the tree with its field path. Each getter returns the parsed value, or its default when
    the field is absent, or None after recording why the value is wrong, so one walk finds every problem."""

    def __init__(self, report: Report, node: Node | None, path: str, where: Any = None, dead: bool = False):
        self.report, self.node, self.path = report, node, path
        self.where = where if where is not None else node
        self.dead = dead  # inside a value already reported as wrong: report nothing more

    # ---- state

    @property
    def file(self) -> str:
        return self.report.file

    @property
    def given(self) -> bool:
        return self.node is not None and not self.dead

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.node, MappingNode)

    @property
    def is_list(self) -> bool:
        return isinstance(self.node, SequenceNode)

    @property
    def is_scalar(self) -> bool:
        return isinstance(self.node, ScalarNode)

    def _silent(self) -> bool:
        """True when a getter must return without a word: absent, dead, or reported by the survey."""
        return self.node is None or self.dead or id(self.node) in self.report.quiet

    def fail(self, allowed: str, field: str | None = None, value: str | None = None) -> None:
        """Record a problem at this value."""
        if self.dead:
            return
        self.report.add(
            self.where, self.path if field is None else field, shown(self.node) if value is None else value, allowed
        )

    # ---- structure

    def fields(self, allowed: Collection[str], required: Collection[str] = (), what: str = "fields") -> Fields:
        """This value as a mapping of known fields; unknown fields and missing required ones are problems."""
        if self.node is None or self.dead or id(self.node) in self.report.quiet:
            return Fields(self, {}, dead=self.dead or self.node is not None)
        if not isinstance(self.node, MappingNode):
            self.fail(f"expected a mapping of {what}: {', '.join(sorted(allowed))}")
            return Fields(self, {}, dead=True)
        found = entries(self.node)
        for name, (key_node, value_node) in found.items():
            if name not in allowed and id(key_node) not in self.report.quiet:
                hint = difflib.get_close_matches(name, list(allowed), n=1) if len(name) <= 40 else []
                did = f"did you mean {hint[0]}? " if hint else ""
                self.report.add(
                    key_node,
                    join(self.path, name),
                    shown(value_node),
                    f"unknown field; {did}allowed: {', '.join(sorted(allowed))}",
                )
        for name in required:
            if name not in found or found[name][1].tag == NULL:
                where = found[name][0] if name in found else self.node
                self.report.add(where, join(self.path, name), "nothing", "this field is required")
        known = {k: v for k, v in found.items() if k in allowed}
        return Fields(self, known)

    def items(self, minimum: int = 0, maximum: int = MAX_ITEMS, what: str = "items") -> list[Reader] | None:
        """This value as a list of `minimum`..`maximum` items."""
        node = self.node
        if self._silent():
            return None
        n = len(node.value) if isinstance(node, SequenceNode) else -1
        if not isinstance(node, SequenceNode) or not minimum <= n <= maximum:
            size = f"at least {minimum}" if 0 <= n < minimum else f"{minimum} to {maximum}"
            self.fail(f"expected a list of {size} {what}")
            return None
        return [Reader(self.report, child, join(self.path, i)) for i, child in enumerate(node.value)]

    # ---- scalars

    def text(self, default: str | None = None, *, collapse: bool = True, max_len: int = MAX_TEXT) -> str | None:
        """Non-empty text (any scalar as written: `name: 2024` is the text "2024")."""
        if self._silent():
            return default if self.node is None or self.dead else None
        if not isinstance(self.node, ScalarNode) or self.node.tag == NULL:
            self.fail("expected non-empty text")
            return None
        value = " ".join(self.node.value.split()) if collapse else self.node.value.strip()
        if not value:
            self.fail("expected non-empty text")
            return None
        if len(value) > max_len:
            self.fail(f"expected text of at most {max_len} characters, not {len(value)}")
            return None
        return value

    def texts(
        self, default: tuple[str, ...] = (), minimum: int = 0, maximum: int = MAX_ITEMS, max_len: int = MAX_TEXT
    ) -> tuple[str, ...] | None:
        """A list of texts (one text alone counts as a list of one)."""
        if self._silent():
            return default if self.node is None or self.dead else None
        readers: list[Reader] | None = None
        if isinstance(self.node, ScalarNode) and self.node.tag != NULL:
            readers = [self]
        elif isinstance(self.node, SequenceNode):
            readers = self.items(minimum, maximum, what="texts")
            if readers is None:
                return None
        else:
            self.fail(
                f"expected a list of at least {minimum} text{'s' if minimum != 1 else ''}"
                if minimum
                else "expected a list of texts"
            )
            return None
        out = [r.text(max_len=max_len) for r in readers]
        if any(v is None for v in out):
            return None
        return tuple(out)  # type: ignore[arg-type]

    def choice(self, options: Collection[str], default: str | None = None) -> str | None:
        """One of `options`, written as plain text."""
        if self._silent():
            return default if self.node is None or self.dead else None
        if isinstance(self.node, ScalarNode) and self.node.value in options:
            return self.node.value
        self.fail(f"expected one of {' | '.join(options)}")
        return None

    def boolean(self, default: bool | None = None) -> bool | None:
        if self._silent():
            return default if self.node is None or self.dead else None
        if isinstance(self.node, ScalarNode) and self.node.tag == BOOL:
            return bool(scalar(self.node))
        self.fail("expected true or false")
        return None

    def number(
        self,
        lo: float,
        hi: float,
        *,
        integer: bool = True,
        default: float | None = None,
        unit: str = "",
        why_low: str = "",
    ) -> Any:
        """A number from `lo` to `hi`; `why_low` explains the lower bound when a value falls below it."""
        if self._silent():
            if self.node is None and default is not None:
                return int(default) if integer else float(default)
            return default if self.node is None or self.dead else None
        value: Any = scalar(self.node) if isinstance(self.node, ScalarNode) else None
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        whole = is_number and math.isfinite(value) and (not integer or value == int(value))
        noun = ("a whole number" if integer else "a number") + (f" of {unit}" if unit else "")
        if whole and value < lo and value <= 0 and why_low:
            self.fail(f"{why_low} (allowed: {lo:g} to {hi:g})")
            return None
        if not whole or not lo <= value <= hi:
            self.fail(f"expected {noun} from {lo:g} to {hi:g}")
            return None
        return int(value) if integer else float(value)

    def per_level(
        self,
        levels: Collection[str],
        lo: float,
        hi: float,
        *,
        integer: bool = True,
        default: float | None = None,
        unit: str = "",
        why_low: str = "",
    ) -> dict[str, Any] | None:
        """A number for every level, or a mapping with one for each of `levels`."""
        if self._silent():
            if self.node is None and not self.dead and default is not None:
                return {lv: int(default) if integer else float(default) for lv in levels}
            return None
        if isinstance(self.node, SequenceNode):
            noun = ("a whole number" if integer else "a number") + (f" of {unit}" if unit else "")
            self.fail(
                f"expected {noun} from {lo:g} to {hi:g}, or one per level: "
                f"{{{', '.join(lv + ': ...' for lv in levels)}}}"
            )
            return None
        if not isinstance(self.node, MappingNode):
            n = self.number(lo, hi, integer=integer, unit=unit, why_low=why_low)
            return None if n is None else {lv: n for lv in levels}
        f = self.fields(levels, required=levels, what="levels")
        values = {lv: f[lv].number(lo, hi, integer=integer, unit=unit, why_low=why_low) for lv in levels}
        return None if any(v is None for v in values.values()) else values

    def level(self, level: str) -> Reader:
        """The value for one level of a per-level mapping (itself when one number covers every level)."""
        if isinstance(self.node, MappingNode):
            return Fields(self, entries(self.node))[level]
        return self


def entries(node: MappingNode) -> dict[str, tuple[Node, Node]]:
    """A mapping's fields by name: the first of a duplicate (the survey reported it), merge keys (<<) applied."""
    out: dict[str, tuple[Node, Node]] = {}
    merged: dict[str, tuple[Node, Node]] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            continue
        if key_node.tag == MERGE:
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if isinstance(source, MappingNode):
                    for name, entry in entries(source).items():
                        merged.setdefault(name, entry)
            continue
        out.setdefault(key_node.value, (key_node, value_node))
    for name, entry in merged.items():
        out.setdefault(name, entry)
    return out


class Fields:
    """The known fields of a mapping; a field not given (or given as null) reads as absent."""

    def __init__(self, owner: Reader, entries: dict[str, tuple[Node, Node]], dead: bool = False):
        self.owner, self.entries, self.dead = owner, entries, dead

    def __contains__(self, name: str) -> bool:
        entry = self.entries.get(name)
        return entry is not None and entry[1].tag != NULL

    def __getitem__(self, name: str) -> Reader:
        path = join(self.owner.path, name)
        entry = self.entries.get(name)
        if entry is None or entry[1].tag == NULL:
            where = entry[0] if entry else self.owner.where
            return Reader(self.owner.report, None, path, where=where, dead=self.dead)
        return Reader(self.owner.report, entry[1], path, dead=self.dead)

    def names(self) -> set[str]:
        return {name for name in self.entries if name in self}
