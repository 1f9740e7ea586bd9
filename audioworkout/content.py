"""Routines and exercises: YAML files read with a safe loader and validated into dataclasses.

Every problem is reported as one ContentError naming the file, the field path, the value and
what is allowed, so a user editing a routine knows exactly what to fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from .errors import ContentError



class Level(StrEnum):
    BEGINNER = "beginner"
    INTERMEDIATE = "intermediate"
    ADVANCED = "advanced"


class Kind(StrEnum):
    """What the clock counts: seconds of movement, seconds held still, reps at a tempo, breath cycles."""

    TIMED = "timed"
    HOLD = "hold"
    REPS = "reps"
    BREATHS = "breaths"


class Sides(StrEnum):
    NONE = "none"
    EACH = "each"
    ALTERNATING = "alternating"


class ChimeSet(StrEnum):
    BRIGHT = "bright"
    SOFT = "soft"


class Register(StrEnum):
    """How the coach sounds in a section: calm (stretching, breathing) or energetic (circuits, strength)."""

    CALM = "calm"
    ENERGETIC = "energetic"


class Category(StrEnum):
    """What an exercise trains; decides how a longer session may grow it (only strength gets sets)."""

    STRENGTH = "strength"
    CARDIO = "cardio"
    MOBILITY = "mobility"
    STRETCH = "stretch"
    BREATHING = "breathing"


class Position(StrEnum):
    """Where the body is; flexible sections are ordered standing -> seated -> kneeling -> lying."""

    STANDING = "standing"
    SEATED = "seated"
    KNEELING = "kneeling"
    LYING = "lying"
    ANY = "any"


LEVELS: tuple[str, ...] = tuple(level.value for level in Level)
KINDS: tuple[str, ...] = tuple(kind.value for kind in Kind)
SIDES: tuple[str, ...] = tuple(side.value for side in Sides)
CHIME_SETS: tuple[str, ...] = tuple(c.value for c in ChimeSet)
REGISTERS: tuple[str, ...] = tuple(r.value for r in Register)
CATEGORIES: tuple[str, ...] = tuple(c.value for c in Category)
POSITIONS: tuple[str, ...] = tuple(p.value for p in Position)
DEFAULT_STRETCH_HOLD = (20, 30)  # ACSM: static stretches held 10-30 s for most adults; 20-30 s is the usual advice


def content_root() -> Path:
    """The bundled content folder: the installed copy (audioworkout/bundled), else the checkout's content/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "bundled", here.parent / "content"):
        if (candidate / "routines").is_dir():
            return candidate
    return here.parent / "content"


@dataclass(frozen=True)
class Phase:
    """One spoken phase of a rep or breath cycle ("Lift", 2 s)."""

    say: str
    seconds: float


@dataclass(frozen=True)
class Exercise:
    id: str
    name: str
    kind: str  # timed | hold | reps | breaths
    setup: str
    cues: tuple[str, ...]
    breathing: str
    amounts: dict[str, int]  # per level: reps, seconds or breath cycles per set (per side)
    easier: str = ""
    harder: str = ""
    sides: str = "none"
    form: tuple[str, ...] = ()
    sets: dict[str, int] = field(default_factory=lambda: {lv: 1 for lv in LEVELS})
    limits: tuple[int, int] = (1, 1)
    tempo: tuple[Phase, ...] = ()
    breath: tuple[Phase, ...] = ()  # inhale, exhale
    side_labels: tuple[str, str] = ("right side", "left side")
    safety: tuple[str, ...] = ()
    category: str = ""  # Category; "" until parsed (derived from kind when the file gives none)
    position: str = "any"  # Position
    equipment: tuple[str, ...] = ()  # e.g. ("mat",), ("sturdy chair",)
    stretch_hold: tuple[int, int] | None = None  # static stretch: (min, max) seconds per hold
    direction_change: bool = False  # timed moves that reverse halfway ("Change direction")
    intermediate_option: str = "none"  # which option intermediate hears: easier | harder | none
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)  # level -> validated field overrides

    @property
    def unit(self) -> str:
        return {"reps": "reps", "breaths": "breaths"}.get(self.kind, "seconds")

    @property
    def is_stretch(self) -> bool:
        return self.stretch_hold is not None

    def for_level(self, level: str) -> "Exercise":
        """This exercise as done at `level`: its variant there (a progression or regression), else itself."""
        overrides = self.variants.get(level)
        if not overrides:
            return self
        return replace(self, variants={}, **overrides)


@dataclass(frozen=True)
class RoutineItem:
    exercise: Exercise
    priority: int = 1


@dataclass(frozen=True)
class Section:
    name: str
    intro: str
    items: tuple[RoutineItem, ...]
    chimes: str = "bright"
    rounds: dict[str, int] = field(default_factory=lambda: {lv: 1 for lv in LEVELS})
    register: str = "energetic"  # Register
    order: str = "fixed"  # fixed | flexible (the planner may reorder to save position changes)
    extras: tuple[RoutineItem, ...] = ()  # added, in order, when a longer session has room


@dataclass(frozen=True)
class RestRules:
    between_exercises: dict[str, float]
    between_sets: dict[str, float]
    switch_sides: float = 5.0
    between_rounds: dict[str, float] = field(default_factory=lambda: {lv: 60.0 for lv in LEVELS})


@dataclass(frozen=True)
class Routine:
    id: str
    title: str
    description: str
    minutes: float
    level: str
    safety: tuple[str, ...]
    tips: tuple[str, ...]
    rest: RestRules
    sections: tuple[Section, ...]
    path: Path | None = None
    cover: Path | None = None
    outro: str = "That is the end of the session. Well done."
    fit: bool = True  # False: play amounts and rests exactly as written (exact mode)
    sources: tuple[str, ...] = ()  # where the training facts come from

    @property
    def exercises(self) -> list[Exercise]:
        return [item.exercise for section in self.sections for item in section.items]


# --------------------------------------------------------------------------- validation helpers


class _Reader:
    """Walks a parsed YAML mapping, raising ContentError with the full field path."""

    def __init__(self, file: Path, data: Any, path: str = ""):
        self.file, self.data, self.path = file, data, path

    def fail(self, key: str, value: Any, allowed: str) -> ContentError:
        return ContentError(self.file, self._join(key), value, allowed)

    def _join(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def mapping(self, allowed_keys: set[str], required: set[str]) -> None:
        if not isinstance(self.data, dict):
            raise ContentError(self.file, self.path or "(top level)", _short(self.data), "expected a mapping of fields")
        for key in self.data:
            if key not in allowed_keys:
                raise self.fail(str(key), self.data[key], f"unknown field; allowed: {', '.join(sorted(allowed_keys))}")
        for key in sorted(required):
            if key not in self.data or self.data[key] is None:
                raise ContentError(self.file, self._join(key), None, "this field is required")

    def child(self, key: str | int) -> "_Reader":
        data = self.data[key]
        return _Reader(self.file, data, self._join(key))

    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, value, "expected non-empty text")
        return " ".join(value.split())

    def texts(self, key: str, minimum: int = 0) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or len(value) < minimum:
            raise self.fail(key, value, f"expected a list of at least {minimum} text item(s)")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.child(key).fail(i, item, "expected non-empty text")
            out.append(" ".join(item.split()))
        return tuple(out)

    def choice(self, key: str, options: tuple[str, ...], default: str | None = None) -> str:
        value = self.data.get(key, default)
        if value not in options:
            raise self.fail(key, value, f"allowed: {' | '.join(options)}")
        return value

    def number(self, key: str, default: float | None = None, minimum: float = 0.0, maximum: float = math.inf,
               integer: bool = False, strictly_positive: bool = False) -> float:
        value = self.data.get(key, default)
        return _number(self, key, value, minimum, maximum, integer, strictly_positive)

    def per_level(self, key: str, default: int | float | None = None, minimum: float = 0.0,
                  integer: bool = True, strictly_positive: bool = True) -> dict[str, Any]:
        """A number, or a mapping beginner/intermediate/advanced -> number."""
        value = self.data.get(key, default)
        if value is None:
            raise ContentError(self.file, self._join(key), None, "this field is required")
        if not isinstance(value, dict):
            n = _number(self, key, value, minimum, math.inf, integer, strictly_positive)
            return {lv: n for lv in LEVELS}
        sub = self.child(key)
        sub.mapping(set(LEVELS), set(LEVELS))
        return {lv: _number(sub, lv, value[lv], minimum, math.inf, integer, strictly_positive) for lv in LEVELS}


def _number(reader: _Reader, key: str | int, value: Any, minimum: float, maximum: float,
            integer: bool, strictly_positive: bool) -> Any:
    kind = "a whole number" if integer else "a number"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer and value != int(value):
        ok = False
    bound = f"> {minimum:g}" if strictly_positive else f">= {minimum:g}"
    if maximum != math.inf:
        bound += f" and <= {maximum:g}"
    if not ok or value < minimum or value > maximum or (strictly_positive and value <= minimum):
        raise reader.fail(key, value, f"expected {kind} {bound}")
    return int(value) if integer else float(value)


def _short(value: Any) -> Any:
    return value if not isinstance(value, (dict, list)) else type(value).__name__


def _load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContentError(path, "(file)", str(path), "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContentError(path, "(file)", str(path), f"cannot be read as UTF-8 text ({exc.__class__.__name__})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(unknown position)"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ContentError(path, f"(YAML syntax at {where})", problem, "expected valid YAML") from None


# --------------------------------------------------------------------------- exercises

_EXERCISE_KEYS = {"name", "kind", "sides", "setup", "cues", "form", "breathing", "amounts", "sets", "limits",
                  "tempo", "breath", "side_labels", "easier", "harder", "safety"}
_OVERRIDE_KEYS = {"amounts", "sets", "limits"}


def _phase(reader: _Reader) -> Phase:
    reader.mapping({"say", "seconds"}, {"say", "seconds"})
    return Phase(reader.text("say"), reader.number("seconds", minimum=0.5, maximum=30))


def _exercise_fields(r: _Reader, kind: str) -> dict[str, Any]:
    """The fields a routine may override (amounts, sets, limits), validated."""
    out: dict[str, Any] = {}
    if "amounts" in r.data:
        counted = kind in ("reps", "breaths")
        out["amounts"] = r.per_level("amounts", minimum=0 if counted else 5, strictly_positive=counted)
    if "sets" in r.data:
        out["sets"] = r.per_level("sets", minimum=0)
    if "limits" in r.data:
        lim = r.child("limits")
        lim.mapping({"min", "max"}, {"min", "max"})
        lo = int(lim.number("min", integer=True, strictly_positive=True))
        hi = int(lim.number("max", integer=True, strictly_positive=True))
        if hi < lo:
            raise lim.fail("max", hi, f"expected a whole number >= min ({lo})")
        out["limits"] = (lo, hi)
    return out


def parse_exercise(path: Path, data: Any, exercise_id: str | None = None) -> Exercise:
    r = _Reader(path, data)
    r.mapping(_EXERCISE_KEYS, {"name", "kind", "setup", "cues", "breathing", "amounts", "easier", "harder"})
    kind = r.choice("kind", KINDS)
    fields = _exercise_fields(r, kind)
    amounts = fields["amounts"]
    limits = fields.get("limits") or (max(1, math.ceil(min(amounts.values()) / 2)), max(amounts.values()) * 2)
    tempo: tuple[Phase, ...] = ()
    breath: tuple[Phase, ...] = ()
    if kind == "reps":
        if not isinstance(data.get("tempo"), list) or not data["tempo"]:
            raise r.fail("tempo", data.get("tempo"), "reps need a list of phases like {say: Lift, seconds: 2}")
        tempo = tuple(_phase(r.child("tempo").child(i)) for i in range(len(data["tempo"])))
    elif "tempo" in data:
        raise r.fail("tempo", data["tempo"], f"only exercises of kind reps have a tempo (this one is {kind})")
    if kind == "breaths":
        b = r.child("breath") if "breath" in data else None
        if b is None:
            raise r.fail("breath", None, "breaths need breath: {inhale: {say, seconds}, exhale: {say, seconds}}")
        b.mapping({"inhale", "exhale"}, {"inhale", "exhale"})
        breath = (_phase(b.child("inhale")), _phase(b.child("exhale")))
    elif "breath" in data:
        raise r.fail("breath", data["breath"], f"only exercises of kind breaths have a breath cycle (this one is {kind})")
    labels = r.texts("side_labels") or ("right side", "left side")
    if len(labels) != 2:
        raise r.fail("side_labels", list(labels), "expected exactly two labels, e.g. [right side, left side]")
    return Exercise(
        id=exercise_id or path.stem,
        name=r.text("name"),
        kind=kind,
        setup=r.text("setup"),
        cues=r.texts("cues", minimum=1),
        breathing=r.text("breathing"),
        amounts=amounts,
        easier=r.text("easier"),
        harder=r.text("harder"),
        sides=r.choice("sides", SIDES, default="none"),
        form=r.texts("form"),
        sets=fields.get("sets") or {lv: 1 for lv in LEVELS},
        limits=limits,
        tempo=tempo,
        breath=breath,
        side_labels=(labels[0], labels[1]),
        safety=r.texts("safety"),
    )


def load_exercise(path: Path) -> Exercise:
    return parse_exercise(path, _load_yaml(path))


class ExerciseLibrary:
    """Exercises by id, looked up beside a routine first (a user's own exercises/), then bundled."""

    def __init__(self, folders: list[Path]):
        self.folders = [f for f in folders if f.is_dir()]
        self._cache: dict[Path, Exercise] = {}

    def ids(self) -> list[str]:
        return sorted({p.stem for folder in self.folders for p in folder.glob("*.yaml")})

    def get(self, exercise_id: str) -> Exercise | None:
        for folder in self.folders:
            path = folder / f"{exercise_id}.yaml"
            if path.is_file():
                if path not in self._cache:
                    self._cache[path] = load_exercise(path)
                return self._cache[path]
        return None


# --------------------------------------------------------------------------- routines

_ROUTINE_KEYS = {"title", "description", "minutes", "level", "safety", "tips", "rest", "sections", "cover", "outro"}
_SECTION_KEYS = {"name", "intro", "chimes", "rounds", "exercises"}
_ITEM_KEYS = {"exercise", "priority"} | _OVERRIDE_KEYS


def parse_routine(path: Path, data: Any, library: ExerciseLibrary) -> Routine:
    r = _Reader(path, data)
    r.mapping(_ROUTINE_KEYS, {"title", "description", "safety", "sections"})
    level = r.choice("level", LEVELS, default="beginner")
    rest_data = data.get("rest") or {}
    rest_reader = _Reader(path, rest_data, "rest")
    rest_reader.mapping({"between_exercises", "between_sets", "switch_sides"}, set())
    rest = RestRules(
        between_exercises=rest_reader.per_level("between_exercises", default=15, integer=False, strictly_positive=False),
        between_sets=rest_reader.per_level("between_sets", default=15, integer=False, strictly_positive=False),
        switch_sides=rest_reader.number("switch_sides", default=5, minimum=2, maximum=60),
    )
    if not isinstance(data["sections"], list) or not data["sections"]:
        raise r.fail("sections", data["sections"], "expected a list of at least one section")
    sections = []
    for i in range(len(data["sections"])):
        s = r.child("sections").child(i)
        s.mapping(_SECTION_KEYS, {"name", "exercises"})
        if not isinstance(s.data["exercises"], list) or not s.data["exercises"]:
            raise s.fail("exercises", s.data["exercises"], "expected a list of at least one exercise")
        items = []
        for j in range(len(s.data["exercises"])):
            it = s.child("exercises").child(j)
            if isinstance(it.data, str):
                it = _Reader(path, {"exercise": it.data}, it.path)
            it.mapping(_ITEM_KEYS, {"exercise"})
            ex_id = it.text("exercise")
            exercise = library.get(ex_id)
            if exercise is None:
                known = ", ".join(library.ids()) or "(none found)"
                raise it.fail("exercise", ex_id, f"unknown exercise; known: {known}")
            overrides = _exercise_fields(it, exercise.kind)
            if overrides:
                exercise = replace(exercise, **overrides)
            lo, hi = exercise.limits
            for lv, amount in exercise.amounts.items():
                if amount < lo or amount > hi:
                    raise it.fail("amounts", amount, f"{lv} amount must lie within limits {lo}..{hi}")
            items.append(RoutineItem(exercise, int(it.number("priority", default=1, minimum=1, maximum=3, integer=True))))
        sections.append(Section(
            name=s.text("name"),
            intro=s.text("intro", default=f"Next section: {s.data['name']}."),
            items=tuple(items),
            chimes=s.choice("chimes", CHIME_SETS, default="bright"),
            rounds=s.per_level("rounds", default=1) if "rounds" in s.data else {lv: 1 for lv in LEVELS},
        ))
    cover = None
    if "cover" in data:
        cover = (path.parent / r.text("cover")).resolve()
        if not cover.is_file():
            raise r.fail("cover", data["cover"], "expected an image file path (relative to the routine file)")
    return Routine(
        id=path.stem,
        title=r.text("title"),
        description=r.text("description"),
        minutes=r.number("minutes", default=20, minimum=5, maximum=60),
        level=level,
        safety=r.texts("safety", minimum=1),
        tips=r.texts("tips"),
        rest=rest,
        sections=tuple(sections),
        path=path,
        cover=cover,
        outro=r.text("outro", default=Routine.outro),
    )


def routine_path(name_or_path: str | Path) -> Path:
    """A bundled routine name (`back-pain`) or a path to a user's routine file."""
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if text.endswith((".yaml", ".yml")) or "/" in text or candidate.is_file():
        return candidate
    bundled = content_root() / "routines" / f"{text}.yaml"
    if not bundled.is_file():
        known = ", ".join(routine_names()) or "(none)"
        raise ContentError(text, "routine", text, f"no such routine; bundled routines: {known}, or give a path to a .yaml file")
    return bundled


def routine_names() -> list[str]:
    return sorted(p.stem for p in (content_root() / "routines").glob("*.yaml"))


def load_routine(name_or_path: str | Path) -> Routine:
    path = routine_path(name_or_path)
    data = _load_yaml(path)
    library = ExerciseLibrary([path.parent / "exercises", path.parent.parent / "exercises",
                               content_root() / "exercises"])
    return parse_routine(path, data, library)


def validate_file(path: Path) -> str:
    """Validate a routine or exercise file; returns what it is ("routine" / "exercise")."""
    data = _load_yaml(path)
    if isinstance(data, dict) and "sections" in data:
        load_routine(path)
        return "routine"
    if isinstance(data, dict) and "kind" in data:
        parse_exercise(path, data)
        return "exercise"
    raise ContentError(path, "(top level)", _short(data),
                       "expected a routine (with title, sections…) or an exercise (with name, kind…)")
