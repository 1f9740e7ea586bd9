"""Routines and exercises: YAML files read with a safe loader and validated into dataclasses.

Every problem is reported as one ContentError naming the file, the field path, the value and
what is allowed, so a user editing a routine knows exactly what to fix.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from . import validation
from .errors import ContentError
from .validation import Fields, Reader


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
    """How the coach sounds in a section: calm (stretching, breathing), energetic (circuits, strength), or
    warming (a warm-up that builds toward harder work: calm's timing, words that build, not relax)."""

    CALM = "calm"
    ENERGETIC = "energetic"
    WARMING = "warming"


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
    brief: str = ""  # the move in a few words, said where a changeover has no room for the set-up
    noun: str = ""  # an interval's name as counted ("run": "two more runs"); only effort intervals have one

    @property
    def unit(self) -> str:
        return {"reps": "reps", "breaths": "breaths"}.get(self.kind, "seconds")

    @property
    def is_stretch(self) -> bool:
        return self.stretch_hold is not None

    @property
    def care(self) -> str:
        """Its safety notes as the one care point the coach says ("Take care: ...")."""
        return " ".join(self.safety)

    def for_level(self, level: str) -> Exercise:
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
class Flow(StrEnum):
    """How a section's exercises follow each other: with rests between sets, or interval after interval."""

    SETS = "sets"
    INTERVALS = "intervals"  # each end bell is the next interval's start bell (run/walk): no rests, no pauses


FLOWS: tuple[str, ...] = tuple(f.value for f in Flow)


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
    flow: str = "sets"  # Flow


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
    preface: str = ""  # said after the welcome: a programme's words for this week or session

    @property
    def exercises(self) -> list[Exercise]:
        return [item.exercise for section in self.sections for item in section.items]


# --------------------------------------------------------------------------- bounds

# Human values: what a session can really ask of someone, so a typo (300 reps, 0 sets) is caught.
AMOUNT_BOUNDS: dict[str, tuple[int, int]] = {"reps": (1, 100), "seconds": (5, 3600), "breaths": (1, 60)}
SETS_BOUNDS = (1, 10)
ROUNDS_BOUNDS = (1, 20)
REST_BOUNDS = (0, 600)  # seconds between exercises, sets or rounds
SWITCH_SIDES_BOUNDS = (2, 60)
PRIORITY_BOUNDS = (1, 3)
MINUTES_BOUNDS = (5, 60)
PHASE_SECONDS_BOUNDS = (0.5, 30)  # one spoken phase of a rep or breath
STRETCH_BOUNDS = (5, 120)  # seconds of one static stretch hold
BRIEF_MAX = 50  # characters: a brief is said between "Next: ..." and the count-in of a 10 s changeover
EXERCISE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_ID_RULE = (
    "expected an exercise id: lowercase letters, digits and hyphens, at most 64 characters "
    "(a file name in exercises/ without .yaml)"
)
_WHY_SETS = "sets must be at least 1: a set of zero would drop the exercise; use priority instead"
_WHY_ROUNDS = "rounds must be at least 1: zero rounds would drop the section; remove the section instead"
_WHY_AMOUNT = "amounts must be at least {lo} {unit}: zero would drop the exercise; use priority instead"
_DEFAULT_CATEGORY = {"reps": "strength", "hold": "strength", "breaths": "breathing", "timed": "mobility"}


def unit_of(kind: str | None) -> str:
    """What an amount counts for this kind (seconds for timed and hold)."""
    return {"reps": "reps", "breaths": "breaths"}.get(kind or "", "seconds")


def _amount_bounds(kind: str | None) -> tuple[int, int, str]:
    if kind not in KINDS:  # unknown kind (already reported): check the shape only
        return 1, 3600, ""
    unit = unit_of(kind)
    return (*AMOUNT_BOUNDS[unit], unit)


# --------------------------------------------------------------------------- exercises

_TEXT_FIELDS = ("name", "setup", "breathing", "easier", "harder", "noun")
_LIST_FIELDS = ("form", "safety", "equipment")
_VARIANT_KEYS = (
    "name",
    "setup",
    "brief",
    "cues",
    "form",
    "tempo",
    "breath",
    "easier",
    "harder",
    "safety",
    "equipment",
    "side_labels",
)
_OVERRIDE_KEYS = ("amounts", "sets", "limits")
_EXERCISE_KEYS = (
    _VARIANT_KEYS
    + _OVERRIDE_KEYS
    + (
        "kind",
        "sides",
        "breathing",
        "category",
        "position",
        "stretch",
        "direction_change",
        "intermediate_option",
        "variants",
        "noun",
    )
)
_EXERCISE_REQUIRED = ("name", "kind", "setup", "cues", "amounts")


def _phase(r: Reader) -> Phase | None:
    f = r.fields(("say", "seconds"), ("say", "seconds"), what="phase fields")
    say, seconds = f["say"].text(), f["seconds"].number(*PHASE_SECONDS_BOUNDS, integer=False, unit="seconds")
    return None if say is None or seconds is None else Phase(say, seconds)


def _tempo(r: Reader, kind: str | None) -> tuple[Phase, ...] | None:
    if kind != "reps":
        if kind in KINDS:
            r.fail(f"only exercises of kind reps have a tempo (this one is {kind})")
        return None
    items = r.items(1, 10, what="phases like {say: Lift, seconds: 2}")
    phases = [_phase(item) for item in items or []]
    return None if items is None or None in phases else tuple(phases)  # type: ignore[arg-type]


def _breath(r: Reader, kind: str | None) -> tuple[Phase, ...] | None:
    if kind != "breaths":
        if kind in KINDS:
            r.fail(f"only exercises of kind breaths have a breath cycle (this one is {kind})")
        return None
    f = r.fields(("inhale", "exhale"), ("inhale", "exhale"), what="breath phases")
    inhale, exhale = _phase(f["inhale"]), _phase(f["exhale"])
    return None if inhale is None or exhale is None else (inhale, exhale)


def _side_labels(r: Reader) -> tuple[str, str] | None:
    labels = r.texts()
    if labels is None:
        return None
    if len(labels) != 2:
        r.fail("expected exactly two labels, e.g. [right side, left side]")
        return None
    return labels[0], labels[1]


def _described(f: Fields, kind: str | None, keys: tuple[str, ...]) -> dict[str, Any]:
    """The descriptive fields among `keys` that the file gives, parsed (None where wrong)."""
    out: dict[str, Any] = {}
    for key in keys:
        if key not in f:
            continue
        r = f[key]
        if key == "brief":
            out[key] = r.text()
            if out[key] is not None and len(out[key]) > BRIEF_MAX:
                r.fail(f"a brief is said in a 10 s changeover: at most {BRIEF_MAX} characters, not {len(out[key])}")
                out[key] = None
        elif key in _TEXT_FIELDS:
            out[key] = r.text()
        elif key == "cues":
            out[key] = r.texts(minimum=1)
        elif key in _LIST_FIELDS:
            out[key] = r.texts()
        elif key == "side_labels":
            out[key] = _side_labels(r)
        elif key == "tempo":
            out[key] = _tempo(r, kind)
        elif key == "breath":
            out[key] = _breath(r, kind)
    return out


def _overrides(f: Fields, kind: str | None) -> dict[str, Any]:
    """amounts, sets and limits where given (an exercise's own, or a routine item's), parsed and bounded."""
    lo, hi, unit = _amount_bounds(kind)
    out: dict[str, Any] = {}
    if "amounts" in f:
        why = _WHY_AMOUNT.format(lo=lo, unit=unit[:-1] if lo == 1 else unit) if unit else ""
        out["amounts"] = f["amounts"].per_level(LEVELS, lo, hi, unit=unit, why_low=why)
    if "sets" in f:
        out["sets"] = f["sets"].per_level(LEVELS, *SETS_BOUNDS, why_low=_WHY_SETS)
    if "limits" in f:
        lim = f["limits"].fields(("min", "max"), ("min", "max"), what="limits")
        low, high = lim["min"].number(lo, hi, unit=unit), lim["max"].number(lo, hi, unit=unit)
        if low is not None and high is not None and high < low:
            lim["max"].fail(f"expected a whole number >= min ({low})")
            low = None
        out["limits"] = None if low is None or high is None else (low, high)
    return out


def _check_within_limits(f: Fields, amounts: dict[str, int] | None, limits: tuple[int, int] | None) -> None:
    """Every level's amount inside the limits the planner may shrink or stretch it to."""
    if not amounts or not limits:
        return
    lo, hi = limits
    reported: set[str] = set()
    for lv, amount in amounts.items():
        target = f["amounts"].level(lv) if "amounts" in f else f["limits"]
        if not lo <= amount <= hi and target.path not in reported:
            reported.add(target.path)
            target.fail(f"{lv} amount must lie within limits {lo}..{hi}", value=str(amount))


def _stretch(r: Reader, kind: str | None) -> tuple[int, int] | None:
    """`stretch: true` (20-30 s holds) or `stretch: {min, max}`; only a hold can be a static stretch."""
    if not r.given:
        return None
    if kind != "hold":
        if kind in KINDS:
            r.fail(f"only exercises of kind hold can be a static stretch (this one is {kind})")
        return None
    if r.is_mapping:
        f = r.fields(("min", "max"), ("min", "max"), what="stretch hold bounds")
        lo = f["min"].number(*STRETCH_BOUNDS, unit="seconds")
        hi = f["max"].number(*STRETCH_BOUNDS, unit="seconds")
        if lo is not None and hi is not None and hi < lo:
            f["max"].fail(f"expected a whole number of seconds >= min ({lo}), at most {STRETCH_BOUNDS[1]}")
            return None
        return None if lo is None or hi is None else (lo, hi)
    if isinstance(r.node, validation.ScalarNode) and r.node.tag == validation.BOOL:
        return DEFAULT_STRETCH_HOLD if r.boolean() else None
    r.fail(f"expected true, or {{min: 30, max: 60}} seconds ({STRETCH_BOUNDS[0]} to {STRETCH_BOUNDS[1]})")
    return None


def _variants(r: Reader, kind: str | None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    f = r.fields(LEVELS, what="levels")
    for lv in LEVELS:
        if lv in f:
            vf = f[lv].fields(_VARIANT_KEYS, ("name",), what="variant fields")
            out[lv] = _described(vf, kind, _VARIANT_KEYS)
    return out


def _exercise(r: Reader, exercise_id: str) -> Exercise | None:
    """An exercise file's fields, every problem recorded; None when there was any."""
    f = r.fields(_EXERCISE_KEYS, _EXERCISE_REQUIRED, what="exercise fields")
    kind = f["kind"].choice(KINDS)
    described = _described(f, kind, _EXERCISE_KEYS)
    over = _overrides(f, kind)
    amounts, limits = over.get("amounts"), over.get("limits")
    if "limits" in f:
        _check_within_limits(f, amounts, limits)
    if kind == "reps" and "tempo" not in f:
        f["tempo"].fail("reps need a list of phases like {say: Lift, seconds: 2}", value="nothing")
    if kind == "breaths" and "breath" not in f:
        f["breath"].fail("breaths need breath: {inhale: {say, seconds}, exhale: {say, seconds}}", value="nothing")
    sides = f["sides"].choice(SIDES, default="none")
    stretch_hold = _stretch(f["stretch"], kind)
    category = f["category"].choice(CATEGORIES)
    if category is None and "category" not in f and kind in KINDS:
        category = "stretch" if stretch_hold else _DEFAULT_CATEGORY[kind]
    position = f["position"].choice(POSITIONS, default="any")
    direction_change = f["direction_change"].boolean(default=False)
    if direction_change and kind in KINDS and kind != "timed":
        f["direction_change"].fail(f"only exercises of kind timed change direction (this one is {kind})")
    option = f["intermediate_option"].choice(("easier", "harder", "none"), default="none")
    if option in ("easier", "harder") and option not in f:
        f["intermediate_option"].fail(f"intermediate_option {option} needs the exercise's {option}: text")
    variants = _variants(f["variants"], kind)
    if not r.report.ok:
        return None
    assert kind is not None and amounts is not None
    if limits is None:
        lo, hi, _ = _amount_bounds(kind)
        limits = (max(lo, math.ceil(min(amounts.values()) / 2)), min(hi, max(amounts.values()) * 2))
    return Exercise(
        id=exercise_id,
        name=described["name"],
        kind=kind,
        setup=described["setup"],
        cues=described["cues"],
        breathing=described.get("breathing", ""),
        amounts=amounts,
        easier=described.get("easier", ""),
        harder=described.get("harder", ""),
        sides=sides or "none",
        form=described.get("form", ()),
        sets=over.get("sets") or {lv: 1 for lv in LEVELS},
        limits=limits,
        tempo=described.get("tempo", ()),
        breath=described.get("breath", ()),
        side_labels=described.get("side_labels", ("right side", "left side")),
        safety=described.get("safety", ()),
        category=category or _DEFAULT_CATEGORY[kind],
        position=position or "any",
        equipment=described.get("equipment", ()),
        stretch_hold=stretch_hold,
        direction_change=bool(direction_change),
        intermediate_option=option or "none",
        variants=variants,
        noun=described.get("noun", ""),
        brief=described.get("brief", ""),
    )


def load_exercise(path: Path, exercise_id: str | None = None) -> Exercise:
    """Read and validate one exercise file; ContentError lists every problem in it."""
    path = Path(path)
    root = validation.read(path)
    exercise = _exercise(root, exercise_id or path.stem)
    root.report.raise_if_any()
    assert exercise is not None
    return exercise


class ExerciseLibrary:
    """Exercises by id, looked up beside a routine first (a user's own exercises/), then bundled."""

    def __init__(self, folders: list[Path]):
        self.folders = [f for f in folders if f.is_dir()]
        self._cache: dict[Path, Exercise | ContentError] = {}

    def ids(self) -> list[str]:
        return sorted(
            {p.stem for folder in self.folders for p in folder.glob("*.yaml") if EXERCISE_ID.fullmatch(p.stem)}
        )

    def get(self, exercise_id: str) -> Exercise | None:
        """The exercise, None when no folder has it; raises ContentError when its file is bad.

        Only ids matching EXERCISE_ID are looked up, so `../../x` or `/etc/x` never reaches the disk."""
        if not EXERCISE_ID.fullmatch(exercise_id):
            return None
        for folder in self.folders:
            path = folder / f"{exercise_id}.yaml"
            if path.is_file():
                if path not in self._cache:
                    try:
                        self._cache[path] = load_exercise(path)
                    except ContentError as exc:
                        self._cache[path] = exc
                found = self._cache[path]
                if isinstance(found, ContentError):
                    raise found
                return found
        return None


# --------------------------------------------------------------------------- routines

ROUTINE_SETTINGS = ("description", "minutes", "level", "safety", "tips", "rest", "cover", "outro", "fit", "sources")
_ROUTINE_KEYS = (
    "title",
    "description",
    "minutes",
    "level",
    "safety",
    "tips",
    "rest",
    "sections",
    "cover",
    "outro",
    "fit",
    "sources",
)
_REST_KEYS = ("between_exercises", "between_sets", "between_rounds", "switch_sides")
_SECTION_KEYS = ("name", "intro", "chimes", "register", "order", "rounds", "exercises", "extras", "flow")
_ITEM_KEYS = ("exercise", "priority") + _OVERRIDE_KEYS


def _item(r: Reader, library: ExerciseLibrary) -> RoutineItem | None:
    """One entry of a section's exercises or extras: an id, or a mapping with exercise/priority/overrides."""
    if r.is_scalar:
        f = None
        id_reader = Reader(r.report, r.node, validation.join(r.path, "exercise"))
    else:
        f = r.fields(_ITEM_KEYS, ("exercise",), what="item fields")
        id_reader = f["exercise"]
    exercise_id = id_reader.text(max_len=1000)
    exercise = None
    if exercise_id is not None:
        if not EXERCISE_ID.fullmatch(exercise_id):
            id_reader.fail(_ID_RULE)
        else:
            try:
                exercise = library.get(exercise_id)
            except ContentError as exc:
                r.report.merge(exc)
                exercise_id = None
            else:
                if exercise is None:
                    id_reader.fail(_unknown(exercise_id, library.ids()))
    if f is None:
        return None if exercise is None else RoutineItem(exercise)
    over = _overrides(f, exercise.kind if exercise else None)
    priority = f["priority"].number(*PRIORITY_BOUNDS, default=1)
    if exercise is None or None in over.values() or priority is None:
        return None
    if over:
        exercise = replace(exercise, **over)
        _check_within_limits(f, exercise.amounts, exercise.limits)
    return RoutineItem(exercise, priority)


def _unknown(exercise_id: str, known: list[str]) -> str:
    close = difflib.get_close_matches(exercise_id, known, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    listed = ", ".join(known[:12]) + (f", ... ({len(known) - 12} more)" if len(known) > 12 else "")
    return f"unknown exercise; {hint}known: {listed or '(none found)'}"


def _items(r: Reader, library: ExerciseLibrary, minimum: int) -> tuple[RoutineItem, ...] | None:
    readers = r.items(minimum, what="exercises (ids or {exercise: id, priority: 1..3})")
    if readers is None:
        return None if r.given or minimum else ()
    items = [_item(item, library) for item in readers]
    return None if None in items else tuple(items)  # type: ignore[arg-type]


def _given_names(r: Reader) -> set[str]:
    """The fields a mapping gives (none for anything else), to decide what else it requires."""
    return Fields(r, validation.entries(r.node)).names() if isinstance(r.node, validation.MappingNode) else set()


def _section(r: Reader, library: ExerciseLibrary) -> Section | None:
    # A section of extras alone is allowed: it is played only when a longer session has room for it.
    f = r.fields(
        _SECTION_KEYS, ("name",) if "extras" in _given_names(r) else ("name", "exercises"), what="section fields"
    )
    name = f["name"].text()
    intro = f["intro"].text(default=f"Next section: {name}.")
    chimes = f["chimes"].choice(CHIME_SETS)
    register = f["register"].choice(REGISTERS)
    if register is None:
        register = "calm" if chimes == "soft" else "energetic"
    if chimes is None:
        chimes = "bright" if register == "energetic" else "soft"
    rounds = f["rounds"].per_level(LEVELS, *ROUNDS_BOUNDS, default=1, why_low=_WHY_ROUNDS)
    order = f["order"].choice(("fixed", "flexible"), default="fixed")
    flow = f["flow"].choice(FLOWS, default="sets")
    items = _items(f["exercises"], library, 0 if "extras" in f else 1)
    extras = _items(f["extras"], library, 0 if "exercises" in f else 1)
    if items == () and extras == ():
        f["exercises"].fail("a section needs at least one exercise (in exercises or extras)")
        items = None
    if flow == "intervals" and items:
        untimed = [i.exercise.id for i in items if i.exercise.kind != "timed" or i.exercise.sides != "none"]
        if untimed:
            f["flow"].fail(
                f"intervals are timed exercises done on both sides at once; not {', '.join(untimed)}",
                value="intervals",
            )
    if None in (name, intro, rounds, order, items, extras, flow) or not r.report.ok:
        return None
    return validation.build(
        Section,
        name=name,
        intro=intro,
        items=items,
        chimes=chimes,
        rounds=rounds,
        register=register,
        order=order,
        extras=extras,
        flow=flow,
    )


def _rest(r: Reader) -> RestRules | None:
    f = r.fields(_REST_KEYS, what="rest fields")
    rest = {
        key: f[key].per_level(LEVELS, *REST_BOUNDS, integer=False, default=default, unit="seconds")
        for key, default in (("between_exercises", 15), ("between_sets", 15), ("between_rounds", 60))
    }
    switch = f["switch_sides"].number(*SWITCH_SIDES_BOUNDS, integer=False, default=5, unit="seconds")
    if None in rest.values() or switch is None:
        return None
    return validation.build(RestRules, switch_sides=switch, **rest)


def _routine(r: Reader, path: Path, library: ExerciseLibrary) -> Routine | None:
    f = r.fields(_ROUTINE_KEYS, ("title", "description", "sections"), what="routine fields")
    title = f["title"].text()
    settings = routine_settings(f, path)
    sections = [_section(s, library) for s in f["sections"].items(1, what="sections") or []]
    if not r.report.ok:
        return None
    return validation.build(Routine, id=path.stem, title=title, sections=tuple(sections), path=path, **settings)


def routine_settings(f: Fields, path: Path, description: str | None = None) -> dict[str, Any]:
    """A routine's fields other than title and sections, parsed (a programme's `defaults` reads the same)."""
    settings: dict[str, Any] = {
        "description": f["description"].text(default=description),
        "minutes": f["minutes"].number(*MINUTES_BOUNDS, integer=False, default=20, unit="minutes"),
        "level": f["level"].choice(LEVELS, default="beginner"),
        "safety": f["safety"].texts(),
        "tips": f["tips"].texts(),
        "sources": f["sources"].texts(max_len=2000),  # citations, shown not spoken: longer than a cue
        "outro": f["outro"].text(default=Routine.outro),
        "fit": f["fit"].boolean(default=True),
        "rest": _rest(f["rest"]),
        "cover": None,
    }
    cover_text = f["cover"].text(max_len=1000)
    if cover_text is not None:
        settings["cover"] = validation.local_file(path, cover_text)
        if settings["cover"] is None:
            f["cover"].fail("expected an image file path (relative to the routine file)")
    return settings


def section(r: Reader, library: ExerciseLibrary) -> Section | None:
    """One section in routine syntax (a programme's inline sessions are written the same way)."""
    return _section(r, library)


def library_for(path: Path) -> ExerciseLibrary:
    """Exercises beside a routine or programme file (its exercises/ or its parent's), then the bundled ones."""
    return _library_for(path)


def _library_for(path: Path) -> ExerciseLibrary:
    return ExerciseLibrary([path.parent / "exercises", path.parent.parent / "exercises", content_root() / "exercises"])


def routine_path(name_or_path: str | Path) -> Path:
    """A bundled routine name (`back-pain`) or a path to a user's routine file."""
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if text.endswith((".yaml", ".yml")) or "/" in text or validation.local_file(Path.cwd() / "x", text):
        return candidate
    bundled = content_root() / "routines" / f"{text}.yaml"
    if not EXERCISE_ID.fullmatch(text) or not bundled.is_file():
        known = ", ".join(routine_names()) or "(none)"
        raise ContentError(
            text, "routine", text, f"no such routine; bundled routines: {known}, or give a path to a .yaml file"
        )
    return bundled


def routine_names() -> list[str]:
    return sorted(p.stem for p in (content_root() / "routines").glob("*.yaml"))


def load_routine(name_or_path: str | Path) -> Routine:
    """Read and validate a routine and the exercises it names; ContentError lists every problem."""
    path = routine_path(name_or_path)
    return _load_routine(validation.read(path), path)


def _load_routine(root: Reader, path: Path) -> Routine:
    routine = _routine(root, path, _library_for(path))
    root.report.raise_if_any()
    assert routine is not None
    return routine


# --------------------------------------------------------------------------- any file

_ROUTINE_ONLY = set(_ROUTINE_KEYS) - {"title", "description", "cover"}
_EXERCISE_ONLY = set(_EXERCISE_KEYS) - {"safety", "cover"}


def _what(root: Reader, path: Path) -> str:
    """routine, exercise or show, from the file's fields; a file that is none of them is a problem."""
    from .publish.podcast import SHOW_KEYS

    if not isinstance(root.node, validation.MappingNode):
        value = "an empty file" if root.node is None else validation.shown(root.node)
        root.report.add(
            root.node,
            "(top level)",
            value,
            "expected a routine (title, sections...), an exercise (name, kind...), "
            "a programme (title, weeks...) or a show file (title, author, base_url...)",
        )
        root.report.raise_if_any()
        return ""
    names = _given_names(root)
    if "weeks" in names or "progression" in names:
        return "programme"
    if "sections" in names:
        return "routine"
    if "kind" in names:
        return "exercise"
    scores = {
        "routine": len(names & _ROUTINE_ONLY),
        "exercise": len(names & _EXERCISE_ONLY),
        "show": len(names & (set(SHOW_KEYS) - set(_ROUTINE_KEYS))),
    }
    best = max(scores, key=lambda k: scores[k])
    if scores[best]:
        return best
    return "show" if "show" in path.stem.lower() else "routine"


def validate_file(path: Path | str) -> str:
    """Validate a routine, exercise, programme or show file; returns which it is ("routine", "exercise"...).

    Raises one ContentError listing every problem, each with its line and column."""
    path = Path(path)
    root = validation.read(path)
    kind = _what(root, path)
    if kind == "routine":
        _load_routine(root, path)
    elif kind == "exercise":
        _exercise(root, path.stem)
        root.report.raise_if_any()
    elif kind == "programme":
        from .programme import read_programme

        read_programme(root, path)
    else:
        from .publish.podcast import parse_show

        parse_show(root, path)
    return kind
