"""The script: every cue the coach says or chimes, each at a time, laid out from a plan.

Layout needs only how long each phrase lasts (`durations.duration(text)`): estimated from the
text before speech exists, measured from real synthesised audio after. Spoken cues and chimes
never overlap: fixed cues (countdown numbers on their seconds, chimes at phase changes) are placed
first, and flexible ones (form reminders, tips) go into the free gaps that fit them, or are left out.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Iterable, Protocol

from .plan import Plan, PlannedExercise

GAP = 0.3  # silence after every spoken phrase or chime, so nothing runs together
LEAD_IN = 0.5
TAIL = 1.5
HALFWAY_MIN = 30  # seconds of work before a halfway cue is worth saying
COUNTDOWN_FROM = 5
SPOKEN_KINDS = ("intro", "safety", "section", "next", "tip", "start", "instruction", "breathing", "pace",
                "breath", "countdown", "halfway", "last", "form", "switch", "rest", "outro")


class Durations(Protocol):
    """How long a phrase or a chime lasts, in seconds."""

    def duration(self, text: str) -> float: ...

    def chime_duration(self, name: str, chime_set: str) -> float: ...


@dataclass
class Cue:
    time: float
    duration: float
    kind: str
    text: str | None = None
    chime: str | None = None
    section: str | None = None
    exercise: str | None = None
    chime_set: str = "bright"

    @property
    def end(self) -> float:
        return self.time + self.duration

    @property
    def spoken(self) -> bool:
        return self.chime is None


@dataclass
class Span:
    """A stretch of the track: a section or an exercise (chapters, the plan, the web timeline)."""

    title: str
    start: float
    end: float
    kind: str  # "section" | "exercise"
    section: str | None = None
    amount: str | None = None


@dataclass
class Script:
    routine: str
    title: str
    level: str
    minutes: float
    total_seconds: float
    cues: list[Cue]
    spans: list[Span] = field(default_factory=list)

    def spoken_texts(self) -> list[str]:
        return [c.text for c in self.cues if c.spoken and c.text]

    def to_dict(self) -> dict:
        cues = []
        for c in self.cues:
            d = {"time": round(c.time, 3), "duration": round(c.duration, 3), "kind": c.kind}
            if c.spoken:
                d["text"] = c.text
            else:
                d["chime"] = c.chime
                d["chime_set"] = c.chime_set
            d["section"], d["exercise"] = c.section, c.exercise
            cues.append(d)
        return {"routine": self.routine, "title": self.title, "minutes": self.minutes, "level": self.level,
                "total_seconds": round(self.total_seconds, 3), "cues": cues,
                "chapters": [{k: v for k, v in asdict(s).items() if v is not None} for s in self.spans]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)


def clock(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 60:02d}:{whole % 60:02d}" if whole < 3600 else f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class _Timeline:
    """Cues in order, with the earliest free time; rejects anything that would overlap."""

    def __init__(self, durations: Durations, level: str):
        self.durations, self.level = durations, level
        self.cues: list[Cue] = []
        self.section: str | None = None
        self.exercise: str | None = None
        self.chime_set = "bright"
        self.free_at = 0.0

    def say(self, text: str, kind: str, at: float | None = None) -> Cue:
        return self._add(Cue(self._when(at), self.durations.duration(text), kind, text=text))

    def chime(self, name: str, at: float | None = None, kind: str = "chime") -> Cue:
        return self._add(Cue(self._when(at), self.durations.chime_duration(name, self.chime_set), kind, chime=name))

    def _when(self, at: float | None) -> float:
        if at is None:
            return self.free_at
        if at < self.free_at - 1e-6:
            raise ValueError(f"cue at {at:.2f}s would overlap the one before (free at {self.free_at:.2f}s)")
        return at

    def _add(self, cue: Cue) -> Cue:
        cue.section, cue.exercise, cue.chime_set = self.section, self.exercise, self.chime_set
        self.cues.append(cue)
        self.free_at = cue.end + GAP
        return cue

    def say_if_fits(self, text: str, kind: str, deadline: float, at: float | None = None) -> bool:
        start = max(self.free_at, at if at is not None else 0.0)
        if start + self.durations.duration(text) + GAP > deadline:
            return False
        self.say(text, kind, at=start)
        return True


def lay_out(plan: Plan, durations: Durations) -> Script:
    """Turn a plan into timed cues."""
    routine = plan.routine
    tl = _Timeline(durations, plan.level)
    tl.free_at = LEAD_IN
    tl.say(f"Welcome to {routine.title}. {routine.description}", "intro")
    if plan.target_seconds:
        tl.say(f"This session is about {round(plan.target_seconds / 60)} minutes at {plan.level} level.", "intro")
    tl.say("Before we start: " + " ".join(routine.safety), "safety")
    tl.say("A bell starts each exercise, and a low tone ends it. Three short beeps count you in.", "intro")
    spans: list[Span] = []
    number = 0  # sections are numbered once, however many rounds they repeat
    for section in plan.sections:
        section_start = tl.free_at
        tl.section, tl.exercise, tl.chime_set = section.name, None, section.chimes
        if section.round == 1:
            number += 1
            intro = f"Section {number}: {section.name}. {section.intro}"
        else:
            intro = f"{section.name}, round {section.round} of {section.rounds}."
        if section.rounds > 1 and section.round == 1:
            intro += f" We will go through it {section.rounds} times."
        tl.say(intro, "section")
        for planned in section.exercises:
            start = tl.free_at
            tl.exercise = planned.name
            _exercise(tl, planned)
            spans.append(Span(planned.name, start, tl.free_at, "exercise", section.name, planned.amount_text()))
        title = section.name if section.rounds == 1 else f"{section.name}, round {section.round}"
        spans.append(Span(title, section_start, tl.free_at, "section"))
    tl.section = tl.exercise = None
    tl.chime_set = "bright"
    tl.say(routine.outro, "outro")
    if routine.tips:
        tip = routine.tips[_tip_index(plan) % len(routine.tips)]
        tl.say(f"A tip before you go: {tip}", "tip")
    tl.chime("finish")
    total = tl.free_at - GAP + TAIL
    spans.sort(key=lambda s: (s.start, s.kind != "section"))
    return Script(routine.id, routine.title, plan.level, round(plan.minutes, 2) if plan.target_seconds else 0,
                  total, tl.cues, spans)


def _tip_index(plan: Plan) -> int:
    """A different tip for different lengths and levels, stable for the same request."""
    return int(plan.target_seconds // 60) + ("beginner", "intermediate", "advanced").index(plan.level)


def _exercise(tl: _Timeline, planned: PlannedExercise) -> None:
    ex = planned.exercise
    # The transition: what is next, how to set up, then 3-2-1 beeps into the start bell.
    t0 = tl.free_at
    tl.chime("get_ready")
    tl.say(f"Next up: {ex.name}. {planned.amount_text()}.", "next")
    tl.say(ex.setup, "next")
    start_at = max(t0 + planned.rest_before, tl.free_at + 0.5 + 3.0)
    tip = {"beginner": f"Easier option: {ex.easier}", "advanced": f"Harder option: {ex.harder}"}.get(tl.level)
    if tip:
        tl.say_if_fits(tip, "tip", start_at - 3.0)
    _count_in(tl, start_at)
    sides = ex.side_labels if ex.sides == "each" else (None,)
    for set_no in range(1, planned.sets + 1):
        for side_no, side in enumerate(sides):
            if side_no == 1:
                switch = tl.chime("switch")
                tl.say(f"Switch sides. Now your {side}.", "switch")
                tl.chime("start", at=max(tl.free_at, switch.time + planned.switch_sides))
            _work(tl, planned, side, first=set_no == 1 and side_no == 0)
        if set_no < planned.sets:
            rest_start = tl.free_at
            tl.say(f"Rest. Set {set_no + 1} of {planned.sets} is next.", "rest")
            _count_in(tl, max(rest_start + planned.rest_between_sets, tl.free_at + 3.0))


def _count_in(tl: _Timeline, start_at: float) -> None:
    """Three countdown beeps on the seconds before the start bell, then the bell itself."""
    for k in (3, 2, 1):
        tl.chime("countdown", at=start_at - k)
    tl.chime("start", at=start_at)


def _work(tl: _Timeline, planned: PlannedExercise, side: str | None, first: bool) -> None:
    """One set (or one side of a set) of work, starting at the bell just placed."""
    ex = planned.exercise
    if ex.kind in ("timed", "hold"):
        _timed(tl, planned, tl.cues[-1].time, side, first)
    elif ex.kind == "reps":
        _reps(tl, planned, side, first)
    else:
        _breaths(tl, planned, first)


def _opening(tl: _Timeline, planned: PlannedExercise, side: str | None, first: bool, deadline: float) -> None:
    ex = planned.exercise
    word = {"timed": "Go.", "hold": "Hold.", "reps": "Begin.", "breaths": "Begin."}[ex.kind]
    if side:
        word = f"{side.capitalize()}. {word}"
    tl.say(word, "start")
    if first:
        for cue in ex.cues:
            tl.say_if_fits(cue, "instruction", deadline)
        tl.say_if_fits(ex.breathing, "breathing", deadline)


def _timed(tl: _Timeline, planned: PlannedExercise, start: float, side: str | None, first: bool) -> None:
    seconds = planned.amount
    end = start + seconds
    countdown_from = min(COUNTDOWN_FROM, max(1, seconds // 3))
    countdown_at = end - countdown_from
    halfway = start + seconds / 2 if seconds >= HALFWAY_MIN else None
    # Opening cues must end before the first fixed cue.
    first_fixed = halfway if halfway is not None else countdown_at
    _opening(tl, planned, side, first, first_fixed)
    reminders = list(planned.exercise.form)
    if halfway is not None:
        _spread(tl, reminders[: len(reminders) // 2 + 1], tl.free_at, halfway)
        tl.chime("halfway", at=max(halfway, tl.free_at))
        tl.say("Halfway.", "halfway")
        _spread(tl, reminders[len(reminders) // 2 + 1:], tl.free_at, countdown_at)
    else:
        _spread(tl, reminders[:1], tl.free_at, countdown_at)
    for k in range(countdown_from, 0, -1):
        tl.say(str(k), "countdown", at=max(end - k, tl.free_at))
    tl.chime("end", at=max(end, tl.free_at))


def _spread(tl: _Timeline, reminders: list[str], start: float, deadline: float) -> None:
    """Form reminders spread evenly through a stretch of work; ones that do not fit are left out."""
    if not reminders:
        return
    step = (deadline - start) / (len(reminders) + 1)
    for i, text in enumerate(reminders, 1):
        tl.say_if_fits(text, "form", deadline, at=start + step * i - tl.durations.duration(text) / 2)


def _reps(tl: _Timeline, planned: PlannedExercise, side: str | None, first: bool) -> None:
    """Each rep's phases at the tempo; the first phase is led by the count (or "Last one").

    The count, the side and the phase word are separate phrases ("3" "Lift"), so one
    "Lift" and one "3" serve every exercise: far fewer distinct phrases to synthesise.
    """
    ex = planned.exercise
    _opening(tl, planned, side, first, float("inf"))
    for rep in range(1, planned.amount + 1):
        for p_index, phase in enumerate(ex.tempo):
            phase_start = tl.free_at
            if p_index == 0:
                last = rep == planned.amount and planned.amount > 1
                tl.say("Last one." if last else str(rep), "last" if last else "pace", at=phase_start)
                if ex.sides == "alternating":
                    tl.say(ex.side_labels[(rep - 1) % 2].capitalize(), "pace")
            cue = tl.say(phase.say[0].upper() + phase.say[1:], "pace")
            tl.free_at = max(tl.free_at, phase_start + phase.seconds, cue.end + GAP)
    tl.chime("end")


def _breaths(tl: _Timeline, planned: PlannedExercise, first: bool) -> None:
    ex = planned.exercise
    _opening(tl, planned, None, first, float("inf"))
    cycles = planned.amount
    for cycle in range(1, cycles + 1):
        for p_index, phase in enumerate(ex.breath):
            text, kind = phase.say, "breath"
            if p_index == 0 and cycle == cycles and cycles > 1:
                text, kind = f"Last breath. {phase.say}", "last"
            elif p_index == 0 and cycles >= 6 and cycle == cycles // 2 + 1:
                text, kind = f"Halfway. {phase.say}", "halfway"
            cue = tl.say(text, kind)
            tl.free_at = max(tl.free_at, cue.time + phase.seconds)
    tl.chime("end")


def print_text(script: Script) -> Iterable[str]:
    for cue in script.cues:
        if cue.spoken:
            yield f'{clock(cue.time)}  "{cue.text}"'
        else:
            yield f"{clock(cue.time)}  [chime] {cue.chime.replace('_', ' ')}"
    yield f"Total: {clock(script.total_seconds)} ({script.total_seconds / 60:.1f} minutes)"
