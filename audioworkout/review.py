"""The review: the coaching rules applied to a laid-out plan, each finding with its time and text.

`review(plan, script)` checks one session; `review_levels(scripts)` checks that levels rise at one
length. Each rule is a function with a one-line reason (its docstring); `RULES` lists them in the
order the README explains them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import coaching
from .phrases import ENCOURAGEMENT, say
from .plan import Plan, PlannedExercise, tolerance
from .script import ChimeCue, Script, Span, SpokenCue, clock

# What may be said while the work clock runs: short cues on their seconds, never the how-to.
WORK_KINDS = {
    "start",
    "pace",
    "breath",
    "form",
    "encourage",
    "halfway",
    "direction",
    "time_left",
    "countdown",
    "release",
    "last",
    "switch",
    "care",  # a care point a fixed changeover had no room for, said just after "go" (script._say_care)
}
INTERVAL_TALK_KINDS = {"next", "setup", "instruction", "breathing", "safety_note", "option", "section", "progress"}
PROGRESS_KINDS = {"next", "round", "set", "progress", "time_left", "halfway", "direction", "section"}
REPEATABLE_KINDS = {"pace", "breath", "countdown", "last"}
PROGRESS_EVERY = 300.0
PROGRESS_SLACK = 5.0
WORK_WORDS = {text for pool in ENCOURAGEMENT.values() for text in pool}  # said while working
COACH_AMOUNT_KINDS = {"rest", "next", "set", "round", "time_left", "progress"}


@dataclass(frozen=True)
class Finding:
    time: float
    subject: str
    message: str
    rule: str

    def __str__(self) -> str:
        return f"{clock(self.time)} {self.subject}: {self.message}"


Rule = Callable[[Plan, Script], Iterable[Finding]]


def _spoken(script: Script) -> list[SpokenCue]:
    return [c for c in script.cues if isinstance(c, SpokenCue)]


def _within(cues: Iterable[SpokenCue], span: Span) -> list[SpokenCue]:
    return [c for c in cues if span.start + 1e-6 < c.time < span.end - 1e-6]


def _quiet(spoken: list[SpokenCue], span: Span) -> float:
    """Seconds of a work span with nothing said in it."""
    return span.end - span.start - sum(min(c.end, span.end) - c.time for c in _within(spoken, span))


def _first_work(script: Script, name: str) -> float:
    return next((w.start for w in script.work if w.title == name), 0.0)


def round_amounts(plan: Plan, script: Script) -> Iterable[Finding]:
    """Amounts a coach says: whole 5 s steps to a minute, then 15 s steps; whole reps."""
    for ex in plan.exercises:
        if ex.exercise.kind in ("timed", "hold") and not coaching.is_round(ex.amount):
            yield Finding(_first_work(script, ex.name), ex.name, f"{ex.amount} s is not a round amount", "amounts")
    for cue in _spoken(script):
        if cue.kind not in COACH_AMOUNT_KINDS:
            continue  # the content's own sentences ("lower for 3 seconds") are the author's
        for number in re.findall(r"\b(\d+) seconds?\b", cue.text):
            if not coaching.is_round(int(number)):
                yield Finding(cue.time, cue.exercise or "script", f'says "{number} seconds"', "amounts")


def talk_before_clock(plan: Plan, script: Script) -> Iterable[Finding]:
    """Setup, how-to, options and safety are said before the start bell: the clock starts at "go".

    A care point a fixed changeover had no room for is said just after "go", the first time only.

    Intervals (run and walk) are the exception: their clock never stops, so what comes next is said
    while moving, and a first run's how-to just after its bell.
    """
    spoken = _spoken(script)
    first_start: dict[str, float] = {}
    for span in script.work:
        first_start.setdefault(span.title, span.start)
    for span in script.work:
        allowed = WORK_KINDS | INTERVAL_TALK_KINDS if span.amount == "interval" else WORK_KINDS
        first = span.start == first_start[span.title]
        for cue in _within(spoken, span):
            if cue.kind == "care" and (not first or cue.time > span.start + coaching.CARE_SAID_WITHIN):
                yield Finding(
                    cue.time, span.title, f'"{cue.text[:60]}" is said after the move has started', "talk-before-clock"
                )
            elif cue.kind not in allowed:
                yield Finding(
                    cue.time,
                    span.title,
                    f'"{cue.text[:60]}" ({cue.kind}) is said while the clock runs',
                    "talk-before-clock",
                )


def quiet_holds(plan: Plan, script: Script) -> Iterable[Finding]:
    """During a static hold at least 70 % of the time is quiet holding."""
    spoken = _spoken(script)
    for span in script.work:
        if span.amount != "hold":
            continue
        length, quiet = span.end - span.start, _quiet(spoken, span)
        if length and quiet / length < coaching.HOLD_QUIET_SHARE:
            yield Finding(
                span.start,
                span.title,
                f"hold {length:g} s has {quiet:.0f} s of quiet (needs ≥ {coaching.HOLD_QUIET_SHARE:.0%})",
                "quiet-holds",
            )


def equal_sides(plan: Plan, script: Script) -> Iterable[Finding]:
    """Both sides get the same time and the same quiet; alternating moves give each side the same reps."""
    spoken = _spoken(script)
    by_exercise: dict[str, list[Span]] = {}
    for span in script.work:
        by_exercise.setdefault(span.title, []).append(span)
    for ex in plan.exercises:
        if ex.exercise.sides != "each":
            continue
        spans = by_exercise.pop(ex.name, [])
        for first, second in zip(spans[::2], spans[1::2], strict=False):
            quiet = [_quiet(spoken, s) for s in (first, second)]
            work = [s.end - s.start for s in (first, second)]
            if abs(work[0] - work[1]) > 0.05 or abs(quiet[0] - quiet[1]) > 1.0:
                yield Finding(
                    first.start,
                    ex.name,
                    f"sides differ: work {work[0]:.1f} and {work[1]:.1f} s, quiet {quiet[0]:.1f} and {quiet[1]:.1f} s",
                    "equal-sides",
                )


def tempo_grid(plan: Plan, script: Script) -> Iterable[Finding]:
    """Tempo phases keep their seconds: a label or a count never shifts the grid."""
    spoken = _spoken(script)
    for span in script.work:
        ex = next((p.exercise for p in plan.exercises if p.name == span.title), None)
        if ex is None or ex.kind != "reps" or len(ex.tempo) < 2:
            continue
        words = [p.say[0].upper() + p.say[1:] for p in ex.tempo]
        cues = [c for c in _within(spoken, span) if c.kind == "pace" and c.text in words]
        for a, b in zip(cues, cues[1:], strict=False):
            i = words.index(a.text)
            if i + 1 < len(words) and b.text == words[i + 1] and abs(b.time - a.time - ex.tempo[i].seconds) > 0.05:
                yield Finding(
                    a.time,
                    span.title,
                    f'"{a.text}" to "{b.text}" is {b.time - a.time:.2f} s; the tempo says {ex.tempo[i].seconds:g} s',
                    "tempo",
                )
                break


def no_dead_air(plan: Plan, script: Script) -> Iterable[Finding]:
    """No silence longer than 15 s (30 s while walking or running): a listener would think the track had stopped."""
    heard_until = 0.0
    intervals = [w for w in script.work if w.amount == "interval"]
    for cue in sorted(script.cues, key=lambda c: c.time):
        moving = any(w.start <= heard_until and cue.time <= w.end + 1e-6 for w in intervals)
        longest = coaching.MAX_INTERVAL_SILENCE + 1.0 if moving else 15.0
        if cue.time - heard_until > longest:
            yield Finding(
                heard_until,
                cue.exercise or cue.section or "script",
                f"{cue.time - heard_until:.0f} s of silence",
                "dead-air",
            )
        heard_until = max(heard_until, cue.end)


def shape(plan: Plan, script: Script) -> Iterable[Finding]:
    """Every length keeps the first and last sections, and from 10 minutes every section, in proportion."""
    routine = plan.routine
    present = {s.name for s in plan.sections}
    written = [s.name for s in routine.sections if s.items]
    if plan.exact:
        return
    must = [written[0], written[-1]] if plan.minutes < coaching.ALL_SECTIONS_FROM_MINUTES else written
    for name in must:
        if name not in present:
            yield Finding(0.0, name, f"section left out of a {plan.minutes:g}-minute session", "shape")
    if plan.minutes >= coaching.ALL_SECTIONS_FROM_MINUTES and len(present) > 2:
        low, high = coaching.SHARE_BAND[0], coaching.warm_cool_most(script.total_seconds)
        for name in present:
            if not coaching.is_warm_or_cool(name):
                continue
            share = (
                sum(
                    s.end - s.start
                    for s in script.spans
                    if s.kind == "section" and (s.title == name or s.title.startswith(name + ","))
                )
                / script.total_seconds
            )
            if not low <= share <= high:
                yield Finding(
                    0.0,
                    name,
                    f"takes {share:.0%} of the session (roughly 10–20 % wanted, or up to ACSM's ten minutes)",
                    "shape",
                )
    for ex in plan.exercises:
        if ex.sets > 1 and ex.exercise.category not in coaching.SETS_FOR and not ex.exercise.is_stretch:
            yield Finding(
                _first_work(script, ex.name), ex.name, f"{ex.sets} sets of a {ex.exercise.category} move", "shape"
            )


def stretch_holds(plan: Plan, script: Script) -> Iterable[Finding]:
    """Static stretches are held 20–30 s (or the content's own range), repeated per side rather than held longer."""
    for ex in plan.exercises:
        bounds = ex.exercise.stretch_hold
        if bounds and not bounds[0] <= ex.amount <= bounds[1]:
            yield Finding(
                _first_work(script, ex.name),
                ex.name,
                f"held {ex.amount} s; the stretch wants {bounds[0]}–{bounds[1]} s",
                "stretch",
            )


def named_rests(plan: Plan, script: Script) -> Iterable[Finding]:
    """A rest is named with its true length, from the end bell to the next start bell."""
    cues = script.cues
    for i, cue in enumerate(cues):
        if not (isinstance(cue, SpokenCue) and cue.kind == "rest"):
            continue
        said = re.search(r"(?:(\d+) minutes?)?\s*(?:(\d+) seconds?)?\.", cue.text.split("Rest for", 1)[-1])
        if not said:
            continue
        seconds = int(said.group(1) or 0) * 60 + int(said.group(2) or 0)
        end = next((c for c in reversed(cues[:i]) if isinstance(c, ChimeCue) and c.chime == "end"), None)
        start = next((c for c in cues[i:] if isinstance(c, ChimeCue) and c.chime == "start"), None)
        if end and start and abs(start.time - end.time - seconds) > 0.05:
            yield Finding(
                cue.time,
                cue.exercise or "rest",
                f'says "{cue.text}" but the rest is {start.time - end.time:.1f} s',
                "rests",
            )


def fitted_length(plan: Plan, script: Script) -> Iterable[Finding]:
    """A fitted session lands within ±2 % (or ±10 s) of the minutes asked for."""
    if plan.target_seconds and abs(script.total_seconds - plan.target_seconds) > tolerance(plan.target_seconds):
        yield Finding(
            script.total_seconds,
            "length",
            f"{script.total_seconds / 60:.1f} minutes for {plan.minutes:g} asked",
            "length",
        )


def wording(plan: Plan, script: Script) -> Iterable[Finding]:
    """Nothing said twice in a row, no encouragement again within a minute nor a word for the work ("keep it
    going") in a rest, no section named twice, calm sections and static stretches without spoken countdowns."""
    spoken = _spoken(script)
    for a, b in zip(spoken, spoken[1:], strict=False):
        if a.text == b.text and a.kind not in REPEATABLE_KINDS:
            yield Finding(b.time, b.exercise or "script", f'"{b.text[:60]}" said twice in a row', "wording")
    last_said: dict[str, float] = {}
    for cue in spoken:
        if cue.kind == "encourage":
            if cue.text in WORK_WORDS and not any(w.start <= cue.time <= w.end for w in script.work):
                yield Finding(cue.time, cue.exercise or "script", f'"{cue.text[:60]}" said in a rest', "wording")
            if cue.time - last_said.get(cue.text, -math.inf) < coaching.FRESH_WORDS:
                since = cue.time - last_said[cue.text]
                yield Finding(
                    cue.time, cue.exercise or "script", f'"{cue.text[:60]}" again after {since:.0f} s', "wording"
                )
            last_said[cue.text] = cue.time
    for cue in spoken:
        if cue.section and cue.kind == "section" and cue.text.count(cue.section) > 1:
            yield Finding(cue.time, cue.section, "section named twice in one breath", "wording")
    calm = {s.name for s in plan.sections if s.register != "energetic"}
    stretches = {ex.name for ex in plan.exercises if ex.exercise.is_stretch}
    for cue in spoken:
        if cue.kind == "countdown" and cue.section in calm:
            yield Finding(cue.time, cue.exercise or cue.section, "spoken countdown in a calm section", "wording")
        elif cue.kind == "countdown" and cue.exercise in stretches:
            yield Finding(cue.time, cue.exercise, "spoken countdown in a static stretch", "wording")


def warm_up_builds(plan: Plan, script: Script) -> Iterable[Finding]:
    """A warm-up written to lead into energetic work is coached to build (register "warming"), not to relax:
    "Let each breath out relax you" and "And gently ease off" belong to a cool-down, not to a march before
    a circuit. Judged on the routine as written: a gentle warm-up before a stretch stays calm, even in a
    short session that leaves the stretch out. Such a warm-up walks its changeovers between standing
    moves ("Walk for 30 seconds."), never stands still and cools."""
    warming = {s.name for s in plan.sections if s.register == "warming"}
    standing = {ex.name for ex in plan.exercises if ex.exercise.position in coaching.WALKED_POSITIONS}
    walk = say("rest_moving", length="|").split("|")[0]
    for cue in _spoken(script):
        if cue.kind == "rest" and cue.section in warming and cue.exercise in standing and not cue.text.startswith(walk):
            yield Finding(cue.time, cue.exercise, f'"{cue.text}" stands still in a warm-up', "wording")
    written = plan.routine.sections
    present = {s.name for s in plan.sections}
    for section, following in zip(written, written[1:], strict=False):
        if section.name not in present or not re.search(r"warm", section.name, re.I):
            continue
        if following.register == "energetic" and section.register == "calm":
            start = next(
                (s.start for s in script.spans if s.kind == "section" and s.title.startswith(section.name)), 0.0
            )
            yield Finding(
                start,
                section.name,
                f"a calm warm-up before {following.name}: its words relax rather than build",
                "wording",
            )


def safety_and_equipment(plan: Plan, script: Script) -> Iterable[Finding]:
    """Every exercise's safety notes are said at its first appearance; the equipment before the first exercise."""
    said = " ".join(c.text for c in _spoken(script)).lower()  # the intro says "For the plank, drop to ..."
    for ex in plan.distinct_exercises():
        for note in ex.safety:
            if note.lower() not in said:
                yield Finding(_first_work(script, ex.name), ex.name, f'safety note never said: "{note[:60]}"', "safety")
    first_start = next((c.time for c in script.cues if isinstance(c, ChimeCue) and c.chime == "start"), 0.0)
    for item in plan.equipment():
        if not any(item in c.text for c in _spoken(script) if c.time < first_start and c.kind == "equipment"):
            yield Finding(first_start, "intro", f"{item} not named before the first exercise", "equipment")


def progress(plan: Plan, script: Script) -> Iterable[Finding]:
    """A sense of progress at least every 5 minutes (give or take the seconds a bell takes): the exercise
    number, the round, the time to go, a run starting."""
    first_start = next((c.time for c in script.cues if isinstance(c, ChimeCue) and c.chime == "start"), 0.0)
    marks = [first_start] + [
        c.time
        for c in _spoken(script)
        if c.time > first_start and (c.kind in PROGRESS_KINDS or (c.kind == "start" and _in_interval(script, c.time)))
    ]
    outro = next((c.time for c in _spoken(script) if c.kind == "outro"), script.total_seconds)
    for a, b in zip(marks, marks[1:] + [outro], strict=False):
        if b - a > PROGRESS_EVERY + PROGRESS_SLACK:
            yield Finding(a, "progress", f"{(b - a) / 60:.1f} minutes without a progress cue", "progress")


def _in_interval(script: Script, time: float) -> bool:
    return any(w.amount == "interval" and w.start <= time <= w.end for w in script.work)


def positions(plan: Plan, script: Script) -> Iterable[Finding]:
    """A flexible section moves standing -> kneeling -> lying once, not back and forth."""
    flexible = {s.name for s in plan.routine.sections if s.order == "flexible"}
    for section in plan.sections:
        if section.name not in flexible:
            continue
        order = [coaching.POSITION_ORDER.get(ex.exercise.position, 1) for ex in section.exercises]
        if order != sorted(order):
            yield Finding(0.0, section.name, "goes back and forth between positions", "positions")


def options(plan: Plan, script: Script) -> Iterable[Finding]:
    """Options by level and rule: beginners hear the easier one, advanced the harder, intermediate as marked."""
    said = {c.text for c in _spoken(script) if c.kind == "option"}
    if plan.exact:
        return
    for ex in plan.exercises:
        choice = coaching.option_for(ex.exercise, plan.level)
        if ex.circuit:
            continue  # a circuit's 10 s changeovers have no room: the level's variant is the option
        if ex.first and choice and not any(getattr(ex.exercise, choice) in text for text in said):
            yield Finding(_first_work(script, ex.name), ex.name, f"the {choice} option is not offered", "options")


def move_before_its_steps(plan: Plan, script: Script) -> Iterable[Finding]:
    """A how-to cut short keeps the move itself: a later step ("lower back down") is never said without the first."""
    said = {(c.exercise, c.text) for c in _spoken(script) if c.kind == "instruction"}
    for ex in plan.exercises:
        cues = ex.exercise.cues
        if ex.first and cues and (ex.name, cues[0]) not in said:
            later = [c for c in cues[1:] if (ex.name, c) in said]
            if later:
                yield Finding(_first_work(script, ex.name), ex.name, f'"{later[0]}" said without "{cues[0]}"', "how-to")


def taught(plan: Plan, script: Script) -> Iterable[Finding]:
    """A move is taught before its first bell: its set-up and the move or, in a short changeover, its brief
    (unless a hold's care point takes the changeover: a hold's quiet has no room for it after "go")."""
    said = {(c.exercise, c.text) for c in _spoken(script) if c.kind in ("setup", "instruction", "brief")}
    cared = {c.exercise for c in _spoken(script) if c.kind == "safety_note"}
    for ex in plan.exercises:
        move = ex.exercise
        if not ex.first or ex.interval or (move.kind == "hold" and ex.name in cared):
            continue
        if not ({(ex.name, move.setup), (ex.name, move.cues[0])} <= said or (ex.name, move.brief) in said):
            yield Finding(
                _first_work(script, ex.name), ex.name, "neither its set-up and move nor its brief said", "taught"
            )


RULES: list[Rule] = [
    round_amounts,
    talk_before_clock,
    quiet_holds,
    equal_sides,
    tempo_grid,
    no_dead_air,
    shape,
    stretch_holds,
    named_rests,
    fitted_length,
    wording,
    warm_up_builds,
    safety_and_equipment,
    progress,
    positions,
    options,
    move_before_its_steps,
    taught,
]


def review(plan: Plan, script: Script) -> list[Finding]:
    """Every rule this session breaks, in time order."""
    return sorted((f for rule in RULES for f in rule(plan, script)), key=lambda f: f.time)


def review_levels(sessions: dict[str, tuple[Plan, Script]]) -> list[Finding]:
    """At one length, levels rise: per-set work and total work up, rest down, from beginner to advanced."""
    findings = []
    order = [lv for lv in ("beginner", "intermediate", "advanced") if lv in sessions]
    for lower, higher in zip(order, order[1:], strict=False):
        lo_plan, hi_plan = sessions[lower][0], sessions[higher][0]
        lo_amounts = {(ex.section, ex.exercise.id): ex for ex in lo_plan.exercises}  # a walk warms up and recovers
        for ex in hi_plan.exercises:
            other = lo_amounts.get((ex.section, ex.exercise.id))
            if other and _per_set(ex) < _per_set(other):
                findings.append(
                    Finding(
                        0.0,
                        ex.name,
                        f"{higher} works {_per_set(ex):g} s a set, {lower} {_per_set(other):g} s",
                        "levels",
                    )
                )
        if hi_plan.work_seconds() < lo_plan.work_seconds() - coaching.STEP_SHORT:  # within one round step
            findings.append(
                Finding(
                    0.0,
                    "levels",
                    f"{higher} works {hi_plan.work_seconds() / 60:.1f} min in all, "
                    f"{lower} {lo_plan.work_seconds() / 60:.1f} min",
                    "levels",
                )
            )
        if _mean_rest(hi_plan) > _mean_rest(lo_plan) + 0.01:
            findings.append(
                Finding(
                    0.0,
                    "levels",
                    f"{higher} rests {_mean_rest(hi_plan):.0f} s between exercises, "
                    f"{lower} {_mean_rest(lo_plan):.0f} s",
                    "levels",
                )
            )
    return findings


def _per_set(ex: PlannedExercise) -> float:
    return ex.work_seconds() / max(1, ex.sets)


def _mean_rest(plan: Plan) -> float:
    rests = [ex.rest_before for ex in plan.exercises]
    return sum(rests) / len(rests) if rests else 0.0
