"""The script: every cue the coach says or chimes, each at a time, laid out from a plan.

Layout needs only how long each phrase lasts (`durations.duration(text)`): estimated from the
text before speech exists, measured from real synthesised audio after. The coach talks before the
clock: what is next, how to set up, the options and the safety notes fill the transition (which
grows, in whole 5-second steps, to hold them), and the work clock starts at the start bell. During
the work only short cues are said, on their seconds, and no silence lasts longer than a listener
can wait without wondering whether the track has stopped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol

from . import coaching
from .phrases import (
    ENCOURAGEMENT,
    INTERVAL_COMPANY,
    MOVING_REST_FILLERS,
    REST_FILLERS,
    Pool,
    join_words,
    length_words,
    say,
)
from .plan import Plan, PlannedExercise, PlannedSection

GAP = 0.3  # silence after every spoken phrase or chime, so nothing runs together
LEAD_IN = 0.5
TAIL = 1.5
COUNT_IN = 3.4  # three beeps on the seconds before the start bell, and a little air before them
CALM_LEAD = 1.0  # quiet before a calm start bell


class Durations(Protocol):
    """How long a phrase or a chime lasts, in seconds."""

    def duration(self, text: str) -> float: ...

    def chime_duration(self, name: str, chime_set: str) -> float: ...


@dataclass(kw_only=True, slots=True)
class Cue:
    """Something heard at a time: a spoken phrase or a chime."""

    time: float
    duration: float
    kind: str
    section: str | None = None
    exercise: str | None = None
    spoken: ClassVar[bool]

    @property
    def end(self) -> float:
        return self.time + self.duration


@dataclass(kw_only=True, slots=True)
class SpokenCue(Cue):
    text: str
    chime: None = None
    chime_set: str = ""
    spoken: ClassVar[bool] = True


@dataclass(kw_only=True, slots=True)
class ChimeCue(Cue):
    chime: str
    chime_set: str = "bright"
    text: None = None
    spoken: ClassVar[bool] = False


@dataclass
class Span:
    """A stretch of the track: a section or an exercise (chapters, the plan, the web timeline)."""

    title: str
    start: float
    end: float
    kind: str  # "section" | "exercise" | "work"
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
    work: list[Span] = field(default_factory=list)  # each start bell to its end: the work clock running

    def spoken_texts(self) -> list[str]:
        return [c.text for c in self.cues if isinstance(c, SpokenCue)]

    def to_dict(self) -> dict[str, Any]:
        cues = []
        for c in self.cues:
            d: dict[str, Any] = {"time": round(c.time, 3), "duration": round(c.duration, 3), "kind": c.kind}
            if isinstance(c, SpokenCue):
                d["text"] = c.text
            elif isinstance(c, ChimeCue):
                d["chime"], d["chime_set"] = c.chime, c.chime_set
            d["section"], d["exercise"] = c.section, c.exercise
            cues.append(d)
        return {
            "routine": self.routine,
            "title": self.title,
            "minutes": self.minutes,
            "level": self.level,
            "total_seconds": round(self.total_seconds, 3),
            "cues": cues,
            "chapters": [{k: v for k, v in asdict(s).items() if v is not None} for s in self.spans],
            "work": [
                {"exercise": w.title, "start": round(w.start, 3), "end": round(w.end, 3), "kind": w.amount}
                for w in self.work
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)


def clock(seconds: float) -> str:
    """mm:ss (h:mm:ss past an hour), truncated like a stopwatch, so cues a second apart show a second apart."""
    whole = int(math.floor(seconds + 1e-6))
    if whole < 3600:
        return f"{whole // 60:02d}:{whole % 60:02d}"
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class _Timeline:
    """Cues in order, with the earliest free time; rejects anything that would overlap."""

    def __init__(self, durations: Durations, seed: str):
        self.durations = durations
        self.cues: list[Cue] = []
        self.section: str | None = None
        self.exercise: str | None = None
        self.chime_set = "bright"
        self.free_at = 0.0
        self.pool = Pool(seed)
        self.work: list[Span] = []
        self.care: dict[str, str] = {}  # exercise -> the care point its fixed changeover had no room for
        self.unsaid_care: list[tuple[str, str]] = []  # (exercise, its care point) said neither before nor in it

    def length(self, text: str) -> float:
        return self.durations.duration(text)

    def say(self, text: str, kind: str, at: float | None = None) -> SpokenCue:
        # The hottest line of a plan search (~200,000 cues an hour-long fit): _when and _add inlined.
        time = self.free_at if at is None or at < self.free_at else at
        cue = SpokenCue(
            time=time,
            duration=self.durations.duration(text),
            kind=kind,
            text=text,
            section=self.section,
            exercise=self.exercise,
        )
        self.cues.append(cue)
        self.free_at = time + cue.duration + GAP
        return cue

    def chime(self, name: str, at: float | None = None) -> ChimeCue:
        duration = self.durations.chime_duration(name, self.chime_set)
        cue = ChimeCue(time=self._when(at), duration=duration, kind="chime", chime=name, chime_set=self.chime_set)
        self._add(cue)
        return cue

    def _when(self, at: float | None) -> float:
        if at is None:
            return self.free_at
        return max(at, self.free_at)

    def _add(self, cue: Cue) -> None:
        cue.section, cue.exercise = self.section, self.exercise
        self.cues.append(cue)
        self.free_at = cue.end + GAP

    def talk_time(self, lines: list[tuple[str, str]]) -> float:
        return sum(self.length(text) + GAP for text, _ in lines)

    def fill(self, until: float, fillers: _Fillers, longest: float = coaching.MAX_SILENCE) -> None:
        """Keep the stretch from now to `until` free of silences longer than `longest`, with short fillers."""
        while until - self.free_at > longest and fillers:
            text, kind = fillers.peek()
            span = until - self.free_at
            pieces = math.ceil(span / (longest - 1.0))
            at = self.free_at + span / pieces - self.length(text) / 2 - GAP
            if at + self.length(text) + GAP > until - 0.5:
                return
            fillers.take()
            self.say(text, kind, at=max(at, self.free_at))


_Filler = tuple[str | tuple[str, ...], str]  # a fixed line, or a pool to pick one from; and its kind


class _Fillers:
    """The lines that may fill one quiet stretch, in order: a fixed line, or a pool to pick one from. A pool's
    line is picked when it is first needed, so the pick knows what was said just before it; `again` gives
    the other side of a move the same words, so both sides have the same quiet."""

    def __init__(self, pool: Pool, lines: list[_Filler]):
        self._pool = pool
        self._lines = lines
        self._picked: dict[int, str] = {}
        self._next = 0

    def __bool__(self) -> bool:
        return self._next < len(self._lines)

    def peek(self) -> tuple[str, str]:
        source, kind = self._lines[self._next]
        if isinstance(source, str):
            return source, kind
        if self._next not in self._picked:
            self._picked[self._next] = self._pool.pick(source)
        return self._picked[self._next], kind

    def take(self) -> None:
        source = self._lines[self._next][0]
        if not isinstance(source, str):
            self._pool.said(source, self._picked[self._next])
        self._next += 1

    def again(self) -> _Fillers:
        same = _Fillers(self._pool, self._lines)
        same._picked = self._picked
        return same


def lay_out(plan: Plan, durations: Durations) -> Script:
    """Turn a plan into timed cues.

    Exact plans are laid out twice: progress cues then know the total, and the care points that
    neither a fixed transition nor the first seconds of the move had room for are said in the
    intro instead, each with the move it belongs to.
    """
    script, notes = _lay_out(plan, durations, plan.target_seconds or None, [])
    if plan.exact or notes:
        script, _ = _lay_out(plan, durations, plan.target_seconds or script.total_seconds, notes)
    return script


@dataclass
class _Session:
    plan: Plan
    total: float | None
    said_halfway: bool = False
    said_left: set[int] = field(default_factory=set)
    last_number: int = 0

    def progress_line(self, now: float) -> tuple[str, str] | None:
        """ "Halfway through the session" or "10 minutes to go", once each, when the moment has come."""
        if not self.total:
            return None
        if not self.said_halfway and now >= self.total / 2:
            self.said_halfway = True
            return say("session_halfway"), "progress"
        left = self.total - now
        for minutes in coaching.MINUTES_LEFT_MARKS:
            if minutes not in self.said_left and left <= minutes * 60 and self.total > (minutes + 3) * 60:
                self.said_left.add(minutes)
                if left > (minutes - 1) * 60:
                    return say("minutes_left", length=length_words(minutes * 60)), "progress"
        return None


def _lay_out(
    plan: Plan, durations: Durations, total: float | None, early_notes: list[tuple[str, str]]
) -> tuple[Script, list[tuple[str, str]]]:
    """The script, and the (exercise, care point) pairs it had no room to say with their moves."""
    routine = plan.routine
    tl = _Timeline(durations, f"{routine.id}|{plan.level}|{plan.target_seconds:g}")
    tl.free_at = LEAD_IN
    session = _Session(plan, total)
    _intro(tl, plan, total)
    if early_notes:
        tl.say(_move_notes(early_notes), "safety_note")
    spans: list[Span] = []
    flat = [(section, planned) for section in plan.sections for planned in section.exercises]
    counts, last_of_kind = _interval_counts([planned for _, planned in flat])
    boundary: float | None = None  # a chained interval's start bell, already placed by the interval before
    position = 0
    for section in plan.sections:
        section_start = tl.free_at if boundary is None else boundary
        tl.section, tl.exercise, tl.chime_set = section.name, None, section.chimes
        if section.flow != "intervals":
            round_line = _section_lines(tl, plan, section)
        else:
            round_line = None  # intervals count what is left instead ("5 more to go")
            if boundary is None:  # chained, the interval before said the section's words
                _section_lines(tl, plan, section)
        for index, planned in enumerate(section.exercises):
            start = tl.free_at if boundary is None else boundary
            tl.exercise = planned.name
            following = flat[position + 1] if position + 1 < len(flat) else None
            if planned.interval:
                chained = following is not None and following[1].interval
                if boundary is None:
                    bell = _exercise(
                        tl, plan, session, planned, round_line if index == 0 else None, section.rest_before
                    )
                else:
                    bell = boundary
                ahead = _ahead_lines(plan, following, last_of_kind) if following and chained else []
                boundary = _interval(
                    tl,
                    plan,
                    session,
                    planned,
                    bell,
                    told=boundary is None,
                    ahead=ahead,
                    chained=chained,
                    count=counts.get(id(planned)),
                    next_register=following[1].register if following and chained else "",
                )
                end = boundary if boundary is not None else tl.free_at
            else:
                bell = _exercise(tl, plan, session, planned, round_line if index == 0 else None, section.rest_before)
                _sets(tl, plan, planned, bell)
                boundary, end = None, tl.free_at
            position += 1
            spans.append(Span(planned.name, start, end, "exercise", section.name, planned.amount_text()))
        title = section.name if section.rounds == 1 else f"{section.name}, round {section.round}"
        spans.append(Span(title, section_start, boundary if boundary is not None else tl.free_at, "section"))
    for name in tl.care:  # moves whose care point waited for work that never came (a run's, say)
        tl.unsaid_care.append((name, _care_text(plan, name)))
    tl.section = tl.exercise = None
    tl.chime_set = "bright"
    tl.say(routine.outro, "outro")
    if routine.tips:
        tip = routine.tips[_tip_index(plan) % len(routine.tips)]
        tl.say(say("tip", text=tip), "tip")
    tl.chime("finish")
    total_seconds = tl.free_at - GAP + TAIL
    spans.sort(key=lambda s: (s.start, s.kind != "section"))
    minutes = round(plan.minutes, 2) if plan.target_seconds else round(total_seconds / 60, 2)
    script = Script(routine.id, routine.title, plan.level, minutes, total_seconds, tl.cues, spans, tl.work)
    return script, tl.unsaid_care


def _care_text(plan: Plan, name: str) -> str:
    return next(p.exercise.care for p in plan.exercises if p.name == name)


def _move_notes(notes: list[tuple[str, str]]) -> str:
    """ "A word on the moves ahead. For the plank, drop to your knees ...": each care point with its move's
    name, so a listener knows which move it is for (a list of "Take care:" lines did not say)."""
    said = [say("move_note", name=name.lower(), text=text[:1].lower() + text[1:]) for name, text in notes]
    return say("move_notes", notes=" ".join(said))


def _intro(tl: _Timeline, plan: Plan, total: float | None) -> None:
    routine = plan.routine
    welcome, description, preface, safety = _opening(routine)
    tl.say(welcome, "intro")
    if description:
        tl.say(description, "intro")
    if preface:
        tl.say(preface, "intro")
    seconds = plan.target_seconds or total or 0
    length = f"about {length_words(60 * max(1, round(seconds / 60)))}"
    parts = list(dict.fromkeys(s.name for s in plan.sections))
    count = len(plan.distinct_exercises())
    runs = [p for p in plan.exercises if p.interval and p.exercise.noun]
    if runs and len(parts) > 1:
        text = say(
            "session_parts", length=length, parts=f"{len(parts)} parts: {join_words([p.lower() for p in parts])}"
        )
        nouns = list(dict.fromkeys(p.exercise.noun for p in runs))
        amounts = sorted({p.amount for p in runs})
        for noun in nouns:
            many = sum(1 for p in runs if p.exercise.noun == noun)
            if many == 1:
                text += " " + say("interval_plan_one", noun=noun, length=length_words(amounts[0]))
            elif len(amounts) == 1:
                text += " " + say("interval_plan_same", count=_plural(noun, many), length=length_words(amounts[0]))
            else:
                text += " " + say(
                    "interval_plan",
                    count=_plural(noun, many),
                    low=length_words(amounts[0]),
                    high=length_words(amounts[-1]),
                )
    elif len(parts) > 1:
        text = say(
            "session",
            length=length,
            level=plan.level,
            count=count,
            parts=f"in {len(parts)} parts: {join_words([p.lower() for p in parts])}",
        )
    else:
        text = say("session_one_part", length=length, level=plan.level, count=count)
    tl.say(text, "intro")
    equipment = [_with_article(item) for item in plan.equipment()]
    tl.say(say("equipment", items=join_words(equipment)) if equipment else say("no_equipment"), "equipment")
    if safety:
        tl.say(safety, "safety")
    energetic = any(s.register == "energetic" for s in plan.sections)
    if any(s.flow == "intervals" for s in plan.sections):
        tl.say(say("sounds_intervals"), "intro")
    else:
        tl.say(say("sounds_energetic" if energetic else "sounds_calm"), "intro")


def _opening(routine: Any) -> tuple[str, str, str, str]:
    """The welcome, the description, the preface and the safety notes ("" where the routine has none):
    whatever the plan. The welcome is the title alone: the first phrase of every session, it is all a
    cold stream must make before it can start (1 s on 2 cores, where with the description it took 3 s)."""
    welcome = say("welcome", title=routine.title)
    safety = say("safety", notes=" ".join(routine.safety)) if routine.safety else ""
    return welcome, routine.description or "", routine.preface or "", safety


def opening_lines(routine: Any) -> list[str]:
    """What every session of the routine says first, known before it is planned (a cold stream makes them then)."""
    return [text for text in _opening(routine) if text]


def _with_article(item: str) -> str:
    """ "a mat", "an exercise band", "two towels": equipment as it is said."""
    first = item.split()[0].lower() if item.split() else ""
    if first in ("a", "an", "the", "some", "two", "your") or item.endswith("s"):
        return item
    return ("an " if first[:1] in "aeiou" else "a ") + item


def _section_text(plan: Plan, section: PlannedSection) -> str:
    """ "Part 2: Run and walk. <its intro> We will go through it 8 times."."""
    if plan.parts > 1:
        key = "part" if section.intro else "part_no_intro"
        text = say(key, number=section.number, name=section.name, intro=section.intro)
    else:
        text = section.intro
    if section.rounds > 1 and section.flow != "intervals":
        text = f"{text} {say('rounds_ahead', rounds=section.rounds)}".strip()
    return text


def _section_lines(tl: _Timeline, plan: Plan, section: PlannedSection) -> tuple[str, str] | None:
    """The section's opening words; for a later round, the round line said in the first transition."""
    if section.round == 1:
        text = _section_text(plan, section)
        if text:
            tl.say(text, "section")
        return None
    key = "last_round" if section.round == section.rounds else "round"
    return say(key, round=section.round, rounds=section.rounds), "round"


def _tip_index(plan: Plan) -> int:
    """A different tip for different lengths and levels, stable for the same request."""
    return int(plan.target_seconds // 60) + ("beginner", "intermediate", "advanced").index(plan.level)


# --------------------------------------------------------------------------- transitions


def _transition(
    tl: _Timeline,
    since: float,
    rest: float,
    lines: list[tuple[str, str, int]],
    register: str,
    exact: bool,
    rest_key: str | None,
    rest_fields: dict[str, object],
    fillers: _Fillers,
    base_rest: float | None = None,
    count_in: bool = True,
    brief: str = "",
) -> float:
    """Rest and talk between the last end bell (at `since`) and the next start bell; returns the start time.

    `lines` are (text, kind, priority) in speaking order; in exact mode the transition keeps its
    written length and the least important lines that do not fit are left out. Where the set-up or
    the move is left out, the move's `brief` ("Forearms and knees down, body straight.") is said in
    place of what is left of them, if it fits.
    """
    lead = COUNT_IN if (register == "energetic" and count_in) else CALM_LEAD
    base_rest = rest if base_rest is None else base_rest
    start_talk = tl.free_at

    def need(chosen: list[tuple[str, str, int]], gap: float | None) -> float:
        rest_line = [(say(rest_key, length=length_words(gap or 0), **rest_fields), "rest")] if rest_key else []
        return start_talk - since + tl.talk_time(rest_line + [(t, k) for t, k, _ in chosen]) + lead

    chosen = list(lines)
    if exact:
        gap = rest
        if rest_key and need(chosen, gap) > gap:
            lines = [(say(rest_key, length=length_words(gap), **rest_fields), "rest", 9)] + chosen
            chosen, rest_key = list(lines), None
        while chosen and need(chosen, gap) > gap:  # the least important first; of equals, the last said
            chosen.remove(max(reversed(chosen), key=lambda line: line[2]))
        for line in lines:  # the move itself, where it fits though its set-up did not
            if line not in chosen and line[1] == "instruction" and line[2] <= FIRST_CUE:
                with_it = [kept for kept in lines if kept in chosen or kept == line]
                if need(with_it, gap) <= gap:
                    chosen = with_it
        set_up = any(kind == "setup" for _, kind, _ in chosen)
        move = any(kind == "instruction" and priority == FIRST_CUE for _, kind, priority in chosen)
        if brief and not (set_up and move):
            # A set-up alone leaves out the move, a step alone where to be: the brief says both, in a few words.
            told = [line for line in chosen if line[1] not in ("setup", "instruction")]
            after = next((k + 1 for k, line in enumerate(told) if line[1] == "next"), 0)
            with_brief = told[:after] + [(brief, "brief", FIRST_CUE)] + told[after:]
            if need(with_brief, gap) <= gap:
                chosen = with_brief
        for text, kind, priority in lines:  # the rest of the how-to is left out; the care point waits
            if kind == "safety_note" and tl.exercise is not None and (text, kind, priority) not in chosen:
                tl.care[tl.exercise] = text  # said as the work starts, if there is room (_say_care)
    else:
        # The written rest, or the talk's length rounded up; what fitting added to the rest comes on top.
        written, pad = min(rest, base_rest), max(0.0, rest - base_rest)
        gap = coaching.REST_STEP * math.ceil(max(written, need(chosen, written)) / coaching.REST_STEP - 1e-9)
        gap = coaching.REST_STEP * math.ceil(max(gap, need(chosen, gap)) / coaching.REST_STEP - 1e-9) + pad
    start = since + gap
    if rest_key:
        tl.say(say(rest_key, length=length_words(gap), **rest_fields), "rest")
    for text, kind, _ in chosen:
        tl.say(text, kind)
    ten = start - 10.0
    if gap >= 25 and ten >= tl.free_at + 1.0:
        tl.fill(ten, fillers)
        tl.say(say("ten_seconds"), "countdown_word", at=ten)
    tl.fill(start - lead, fillers)
    if register == "energetic" and count_in:
        for k in (3, 2, 1):
            tl.chime("countdown", at=start - k)
    tl.chime("start", at=start)
    return start


def _rest_fillers(tl: _Timeline, pool: tuple[str, ...] = REST_FILLERS) -> _Fillers:
    """Words for a rest: about resting, whatever the register (not the work's "keep it going")."""
    return _Fillers(tl.pool, [(pool, "encourage")] * 8)


FIRST_CUE = 3  # the priority of a move's first cue in a changeover (lower: said first, left out last)


def _first_lines(plan: Plan, planned: PlannedExercise) -> list[tuple[str, str, int]]:
    """What is said before an exercise's first set: what, how, options, care; (text, kind, priority)."""
    ex = planned.exercise
    lines: list[tuple[str, str, int]] = [(ex.setup, "setup", 2)]
    # The first cue is the move itself; a later one (lowering back down) means little without it.
    lines += [(cue, "instruction", FIRST_CUE if k == 0 else FIRST_CUE + 1) for k, cue in enumerate(ex.cues)]
    if ex.breathing:
        lines.append((ex.breathing, "breathing", 6))
    option = coaching.option_for(ex, plan.level)
    if option:
        lines.append((say(option, text=getattr(ex, option)), "option", 5))
    if ex.safety:
        # A timed move's care point left out of a short changeover is said just after "go" (_say_care):
        # the move itself ranks above it. Elsewhere (a hold's quiet, one side of two) it ranks first.
        waits = ex.kind == "timed" and ex.sides != "each"
        lines.append((say("safety_note", text=ex.care), "safety_note", 5 if waits else 1))
    return lines


def _exercise(
    tl: _Timeline,
    plan: Plan,
    session: _Session,
    planned: PlannedExercise,
    round_line: tuple[str, str] | None,
    round_rest: float,
) -> float:
    """The transition before an exercise (rest, what is next, how to do it); returns its start bell."""
    ex = planned.exercise
    since = tl.cues[-1].time if tl.cues and tl.cues[-1].kind == "chime" else tl.free_at
    previous_work = tl.work[-1].end if tl.work else None
    last = tl.cues[-1] if tl.cues else None
    after_work = previous_work is not None and isinstance(last, ChimeCue) and last.chime != "finish"
    is_round_start = round_line is not None
    last_overall = planned.number == len(plan.distinct_exercises()) and planned.first
    total = len(plan.distinct_exercises())
    fixed = (plan.exact or planned.circuit) and after_work
    lines: list[tuple[str, str, int]]
    if planned.first and fixed:
        lines = [(say("next_short", name=ex.name), "next", 0)]
        lines += _first_lines(plan, planned)
    elif planned.interval:
        lines = [(say("interval_next", name=ex.name.lower(), length=length_words(planned.amount)), "next", 0)]
        lines += _first_lines(plan, planned) if planned.first else []
    elif planned.first:
        key = "next_last" if last_overall and total > 1 else "next_first"
        lines = [(say(key, number=planned.number, total=total, name=ex.name, amount=planned.amount_text()), "next", 0)]
        lines += _first_lines(plan, planned)
    else:
        lines = [(say("next_again", name=ex.name, amount=planned.amount_text()), "next", 0)]
        reminder = coaching.reminder_for(ex, planned.round)
        if reminder:
            lines.append((say("reminder", text=reminder), "reminder", 4))
    if round_line:
        lines.insert(0, (round_line[0], round_line[1], 0))
    progress = session.progress_line(tl.free_at)
    if progress:
        lines.insert(0, (progress[0], progress[1], 7))
    if ex.sides == "each":  # a short changeover says it in fewer words, leaving room for the move
        short = planned.first and fixed
        side = ex.side_labels[0].capitalize() if short else ex.side_labels[0]
        lines.append((say("first_side_short" if short else "first_side", side=side), "side", 0))
    section_rest = is_round_start and after_work
    rest = 0.0
    rest_key: str | None = None
    rest_fields: dict[str, object] = {}
    if after_work:
        rest = round_rest if section_rest else planned.rest_before
        rest_key, rest_fields = ("rest_round", {"round": planned.round}) if section_rest else ("rest", {})
        if rest_key == "rest" and _keeps_moving(tl, planned):
            rest_key = "rest_moving"
        if section_rest and lines[0][1] == "progress":
            lines.pop(0)  # the round's rest line says enough
    else:
        since = tl.free_at
    written = plan.routine.rest.between_exercises[plan.level] if not section_rest else rest
    return _transition(
        tl,
        since,
        rest,
        lines,
        planned.register,
        fixed and not section_rest,
        rest_key,
        rest_fields,
        _rest_fillers(tl, MOVING_REST_FILLERS if rest_key == "rest_moving" else REST_FILLERS),
        base_rest=written,
        brief=ex.brief if planned.first and fixed else "",
    )


def _keeps_moving(tl: _Timeline, planned: PlannedExercise) -> bool:
    """A warm-up's changeover between standing moves is walked, not stood still: ACSM's warm-up is 5 to 10
    minutes of continuous light to moderate activity, and half a minute standing still lets it cool."""
    return (
        planned.register == "warming"
        and tl.work[-1].section == planned.section
        and planned.exercise.position in coaching.WALKED_POSITIONS
    )


def _sets(tl: _Timeline, plan: Plan, planned: PlannedExercise, start: float) -> None:
    """Every set (and side) of one exercise, from its first start bell to its last end bell."""
    ex = planned.exercise
    sides = ex.side_labels if ex.sides == "each" else (None,)
    for set_no in range(1, planned.sets + 1):
        fillers = _work_fillers(tl, planned, first=set_no == 1)  # the same words on both sides: the same quiet
        for side_no, side in enumerate(sides):
            if set_no > 1 or side_no > 0:
                end_chime = tl.cues[-1]
                if side_no == 0 and not ex.is_stretch:
                    lines = [(say("set_again", set=set_no, sets=planned.sets), "set", 0)]
                    reminder = coaching.reminder_for(ex, set_no)
                    if reminder:
                        lines.append((say("reminder", text=reminder), "reminder", 4))
                    start = _transition(
                        tl,
                        end_chime.time,
                        planned.rest_between_sets,
                        lines,
                        planned.register,
                        plan.exact,
                        "set_next",
                        {"set": set_no, "sets": planned.sets},
                        _rest_fillers(tl),
                    )
                else:
                    start = _switch(tl, planned, side, again=side_no == 0)
            _work(tl, planned, start, fillers.again())


def _switch(tl: _Timeline, planned: PlannedExercise, side: str | None, again: bool) -> float:
    """Change sides (or hold again): a switch chime, the side named once, then the start bell. A stretch
    done with both sides at once (a chest opener) is held again with no side named."""
    switch = tl.cues[-1]
    tl.chime("switch")
    if side is None:
        text = say("hold_again")
    else:
        text = say("switch", side=side)
        if again:
            text = f"{say('stretch_again')} {text}"
    tl.say(text, "switch")
    start = switch.time + max(planned.switch_sides, math.ceil(tl.free_at - switch.time + 0.5))
    tl.chime("start", at=start)
    return start


# --------------------------------------------------------------------------- work


def _work(tl: _Timeline, planned: PlannedExercise, start: float, fillers: _Fillers) -> None:
    """One set (or one side) of work, from the start bell just placed to its end bell."""
    ex = planned.exercise
    if ex.kind in ("timed", "hold"):
        end = _timed(tl, planned, start, fillers)
    elif ex.kind == "reps":
        end = _reps(tl, planned, start)
    else:
        end = _breaths(tl, planned, start)
    tl.work.append(Span(ex.name, start, end, "work", planned.section, ex.kind))


def _start_word(planned: PlannedExercise) -> str:
    ex = planned.exercise
    if ex.kind == "breaths":
        return say("start_breaths")
    kind = "hold" if ex.kind == "hold" else ("reps" if ex.kind == "reps" else "timed")
    return say(f"start_{_work_register(planned)}_{kind}")


def _work_register(planned: PlannedExercise) -> str:
    """How the work is coached: as its section is, but a static stretch is eased into and out of, never
    counted down like an interval, even among energetic moves (the desk break's chest opener)."""
    return "calm" if planned.exercise.is_stretch else planned.register


def _work_fillers(tl: _Timeline, planned: PlannedExercise, first: bool) -> _Fillers:
    """Form points first (the first set in order, later sets from the second), then calm encouragement."""
    forms = list(planned.exercise.form)
    lines: list[_Filler] = [(text, "form") for text in (forms if first else forms[1:] + forms[:1])]
    lines += [(ENCOURAGEMENT[_work_register(planned)], "encourage")] * 24
    return _Fillers(tl.pool, lines)


def _timed(tl: _Timeline, planned: PlannedExercise, start: float, fillers: _Fillers) -> float:
    ex = planned.exercise
    seconds = float(planned.amount)
    end = start + seconds
    energetic = _work_register(planned) == "energetic"
    tl.say(_start_word(planned), "start")
    fixed: list[tuple[float, str, str, str | None]] = []  # (time, text, kind, chime)
    if ex.direction_change:
        fixed.append((start + seconds / 2, say("change_direction"), "direction", "halfway"))
    elif energetic and seconds >= coaching.HALFWAY_FROM:
        fixed.append((start + seconds / 2, say("halfway"), "halfway", "halfway"))
    for left in coaching.TIME_LEFT_MARKS:
        if seconds >= left * 2 and left < seconds:
            fixed.append((end - left, say("to_go", length=length_words(left)), "time_left", None))
    fixed.sort()
    _say_care(tl, planned, start, fixed)
    for at, text, kind, chime in fixed:
        tl.fill(at, fillers)
        if chime:
            tl.chime(chime, at=at)
        tl.say(text, kind, at=None if chime else at)
    if energetic and seconds >= coaching.SPOKEN_COUNTDOWN_FROM:
        tl.fill(end - 3, fillers)
        for k in (3, 2, 1):
            tl.say(str(k), "countdown", at=end - k)
    elif not energetic:
        release = say("release" if ex.kind == "hold" else "ease_off")
        at = end - tl.length(release) - 0.8
        tl.fill(at, fillers)
        tl.say(release, "release", at=at)
    tl.fill(end, fillers)
    tl.chime("end", at=end)
    return end


def _say_care(
    tl: _Timeline, planned: PlannedExercise, start: float, marks: list[tuple[float, str, str, str | None]]
) -> None:
    """The care point a fixed changeover had no room for, said just after "go" of the first set: a coach
    names the risk as the move starts, not a minute earlier in a list. It goes to the intro instead
    (`lay_out`) where it would run into the next mark, where a hold would lose its quiet (a stretch
    or plank is mostly silent holding), or where only one side of a move would hear it."""
    text = tl.care.pop(planned.name, None)
    if text is None:
        return
    ex = planned.exercise
    until = marks[0][0] if marks else start + float(planned.amount)
    fits = tl.free_at + tl.length(text) + GAP <= until - 1.0
    if ex.kind == "hold":
        talk = tl.free_at - start + tl.length(text) + GAP + sum(tl.length(mark[1]) + GAP for mark in marks)
        talk += 3 * (tl.length("3") + GAP) if planned.register == "energetic" else 0.0  # the spoken countdown
        fits = fits and ex.sides != "each" and talk <= (1 - coaching.HOLD_QUIET_SHARE) * float(planned.amount)
    if fits:
        tl.say(text, "care")
    else:
        tl.unsaid_care.append((planned.name, ex.care))


def _reps(tl: _Timeline, planned: PlannedExercise, start: float) -> float:
    """Each rep's phases on their seconds, after a short lead slot that holds the count or the side."""
    ex = planned.exercise
    tl.say(_start_word(planned), "start")
    alternating = ex.sides == "alternating"
    reps = planned.amount * (2 if alternating else 1)
    last = say("last_rep")
    leads = []
    for rep in range(1, reps + 1):
        if alternating:
            label = ex.side_labels[(rep - 1) % 2]
            leads.append(label[0].upper() + label[1:] + ".")
        else:
            leads.append(last if rep == reps and reps > 1 else f"{rep}.")
    slot = max(tl.length(text) for text in leads) + GAP
    reminder_at = reps // 2 + 1 if reps >= 4 else None
    forms = list(ex.form)
    phases = [(phase.say[0].upper() + phase.say[1:], phase.seconds) for phase in ex.tempo]
    cycle_start = tl.free_at
    for rep, lead in enumerate(leads, 1):
        if rep == reminder_at and forms:
            tl.say(forms[(planned.round - 1) % len(forms)], "form", at=cycle_start)
            cycle_start = tl.free_at
        tl.say(lead, "last" if lead == last else "pace", at=cycle_start)
        grid = cycle_start + slot
        for text, seconds in phases:
            tl.say(text, "pace", at=grid)
            grid += seconds
        cycle_start = max(grid, tl.free_at)
    end = cycle_start
    tl.chime("end", at=end)
    return end


def _breaths(tl: _Timeline, planned: PlannedExercise, start: float) -> float:
    ex = planned.exercise
    tl.say(_start_word(planned), "start")
    cycles = planned.amount
    forms = list(ex.form)
    cycle_start = tl.free_at
    for cycle in range(1, cycles + 1):
        if cycle == cycles // 2 + 1 and cycles >= 4 and forms:
            tl.say(forms[0], "form", at=cycle_start)
            cycle_start = tl.free_at
        if cycle == cycles and cycles > 1:
            tl.say(say("last_breath"), "last", at=cycle_start)
            cycle_start = tl.free_at
        grid = cycle_start
        for phase in ex.breath:
            tl.say(phase.say, "breath", at=grid)
            grid += phase.seconds
        cycle_start = max(grid, tl.free_at)
    tl.chime("end", at=cycle_start)
    return cycle_start


# --------------------------------------------------------------------------- intervals


def _interval_counts(planned: list[PlannedExercise]) -> tuple[dict[int, tuple[str, int, int]], set[int]]:
    """How far through its effort intervals (those with a noun) the session is, keyed by id():

    - for each interval right after an effort interval: (noun, done so far, still to come), so the walk
      after the third of eight runs says "That was run 3. 5 more to go.";
    - the last effort interval of each kind, when there are several ("Next, your last run").
    """
    counts: dict[int, tuple[str, int, int]] = {}
    nouns = [p.exercise.noun if p.interval else "" for p in planned]
    for k, p in enumerate(planned[1:], 1):
        noun = nouns[k - 1]
        if p.interval and noun and not nouns[k]:
            counts[id(p)] = (noun, nouns[:k].count(noun), nouns[k:].count(noun))
    last = {
        id(p)
        for k, p in enumerate(planned)
        if nouns[k] and nouns[k] not in nouns[k + 1 :] and nouns.count(nouns[k]) > 1
    }
    return counts, last


def _plural(noun: str, n: int) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _ahead_lines(
    plan: Plan, following: tuple[PlannedSection, PlannedExercise], last_of_kind: set[int]
) -> list[tuple[str, str, int]]:
    """What is said in the last stretch of an interval about the one after it: (text, kind, priority)."""
    section, nxt = following
    lines: list[tuple[str, str, int]] = []
    if nxt is section.exercises[0] and section.round == 1:
        lines.append((_section_text(plan, section), "section", 3))
    length = length_words(nxt.amount)
    if id(nxt) in last_of_kind:
        lines.append((say("interval_next_last", noun=nxt.exercise.noun, length=length), "next", 0))
    else:
        lines.append((say("interval_next", name=nxt.exercise.name.lower(), length=length), "next", 0))
    if nxt.first:
        lines.append((nxt.exercise.setup, "setup", 2))
    return lines


def _interval(
    tl: _Timeline,
    plan: Plan,
    session: _Session,
    planned: PlannedExercise,
    start: float,
    told: bool,
    ahead: list[tuple[str, str, int]],
    chained: bool,
    count: tuple[str, int, int] | None,
    next_register: str = "",
) -> float | None:
    """One interval from its start bell; returns its end when that bell starts the next interval (chained).

    The clock never stops between intervals, so the next one is named in the last stretch of this
    one, three beeps count into the change, and one bell is both this interval's end and the next
    one's start: a 60 s run is exactly 60 s from bell to bell.
    """
    ex = planned.exercise
    seconds = float(planned.amount)
    end = start + seconds
    noun = ex.noun or ex.name.lower()
    previous = next((w for w in reversed(tl.work) if w.end == start), None)
    same = previous is not None and previous.title == ex.name
    # "Run now." is heard as meant; "Brisk walk now." is not always: a longer name gets "Start your".
    now = say("interval_now", name=ex.name) if len(ex.name.split()) == 1 else say("interval_start_your", name=noun)
    tl.say(say("interval_keep_going") if same else now, "start")
    lead = 0.0
    if chained:
        lead = COUNT_IN if next_register == "energetic" else CALM_LEAD
    keep_free = end - lead - tl.talk_time([(text, kind) for text, kind, _ in ahead[-2:]]) - 1.0
    if not told and planned.first:
        for text, kind, _ in _first_lines(plan, planned)[1:]:  # the setup was said before the bell
            if tl.free_at + tl.length(text) + GAP <= keep_free:
                tl.say(text, kind)
            elif kind == "safety_note":  # a short interval has no room: its care point goes to the intro
                tl.unsaid_care.append((planned.name, ex.care))
    if count is not None and tl.free_at + 4.0 < keep_free:
        what, done, left = count  # done >= 1: the interval before was one of them
        if left == 0:
            tl.say(say("interval_only_done" if done == 1 else "interval_all_done", noun=what), "progress")
        elif left == 1:
            tl.say(say("interval_one_left", noun=what, done=done), "progress")
        else:
            tl.say(say("interval_done", noun=what, done=done, left=left), "progress")
    line = session.progress_line(tl.free_at)
    if line:
        tl.say(*line)
    tail = _fit_tail(tl, ahead, end - lead)
    marks: list[tuple[float, str, str, str | None]] = []
    if seconds >= coaching.INTERVAL_HALFWAY_FROM:
        chime = "halfway" if planned.register == "energetic" else None
        marks.append((start + seconds / 2, say("interval_halfway", noun=noun), "halfway", chime))
    if seconds >= 2 * coaching.INTERVAL_MARK_EVERY:
        for elapsed in range(coaching.INTERVAL_MARK_EVERY, int(seconds) - 120, coaching.INTERVAL_MARK_EVERY):
            if abs(elapsed - seconds / 2) >= 60:
                text = say("interval_minutes_done", length=length_words(elapsed))
                marks.append((start + elapsed, text, "progress", None))
    if seconds >= coaching.INTERVAL_MINUTE_LEFT_FROM:
        marks.append((end - 60, say("to_go", length=length_words(60)), "time_left", None))
    fillers = _interval_fillers(tl, planned)
    for at, text, kind, chime in sorted(marks):
        if at < tl.free_at + 1.0 or at + tl.length(text) + GAP > tail[0] - 1.0:
            continue  # no room: the start of this interval or the talk about the next one is there
        tl.fill(at, fillers, longest=coaching.MAX_INTERVAL_SILENCE)
        if chime:
            tl.chime(chime, at=at)
        tl.say(text, kind, at=None if chime else at)
        line = session.progress_line(tl.free_at)
        if line:
            tl.say(*line)
    talk_at, lines = tail
    if chained:
        tl.fill(talk_at, fillers, longest=coaching.MAX_INTERVAL_SILENCE)
        for k, (text, kind) in enumerate(lines):
            tl.say(text, kind, at=talk_at if k == 0 else None)
        tl.fill(end - lead, fillers, longest=coaching.MAX_INTERVAL_SILENCE)
        if lead == COUNT_IN and tl.free_at <= end - 3:
            for k in (3, 2, 1):
                tl.chime("countdown", at=end - k)
        bell = tl.chime("start", at=end)
    else:
        release = say("ease_off")
        at = end - tl.length(release) - 0.8
        tl.fill(at, fillers, longest=coaching.MAX_INTERVAL_SILENCE)
        tl.say(release, "release", at=at)
        tl.fill(end, fillers, longest=coaching.MAX_INTERVAL_SILENCE)
        bell = tl.chime("end", at=end)
    if abs(bell.time - end) > 1e-9:
        raise AssertionError(f"{ex.name}: the bell at {bell.time:.3f} s should be at {end:.3f} s")
    tl.work.append(Span(ex.name, start, end, "work", planned.section, "interval"))
    return end if chained else None


def _fit_tail(tl: _Timeline, ahead: list[tuple[str, str, int]], until: float) -> tuple[float, list[tuple[str, str]]]:
    """When to start talking about the next interval so the talk ends by `until`; the least important lines
    are left out when the interval is too short for all of them (never the "next" line)."""
    chosen = list(ahead)
    while True:
        lines = [(text, kind) for text, kind, _ in chosen]
        at = until - tl.talk_time(lines)
        if at >= tl.free_at + 2.0 or len(chosen) <= 1:
            if at < tl.free_at:  # an interval too short even to name the next one: the bell alone
                at, lines = until, []
            return at, lines
        chosen.remove(max(chosen, key=lambda line: line[2]))


def _interval_fillers(tl: _Timeline, planned: PlannedExercise) -> _Fillers:
    """Form points in turn with words of company, enough for the longest run; company alone without form points."""
    forms = planned.exercise.form
    lines: list[_Filler] = []
    for k in range(int(planned.amount / coaching.MAX_INTERVAL_SILENCE) + 4):
        if k % 2 == 0 and forms:
            lines.append((forms[(k // 2 + planned.round - 1) % len(forms)], "form"))
        else:
            lines.append((INTERVAL_COMPANY, "encourage"))
    return _Fillers(tl.pool, lines)


def print_text(script: Script) -> Iterable[str]:
    for cue in script.cues:
        if isinstance(cue, SpokenCue):
            yield f'{clock(cue.time)}  "{cue.text}"'
        elif isinstance(cue, ChimeCue):
            yield f"{clock(cue.time)}  [chime] {cue.chime.replace('_', ' ')}"
    yield f"Total: {clock(script.total_seconds)} ({script.total_seconds / 60:.1f} minutes)"
