"""The plan: a routine's exercises with amounts, sets, rounds and rests fitted to a session length.

The planner never lays out time itself: it asks a `measure(plan) -> seconds` function (the script
stage, with estimated or real speech durations) how long a candidate runs, and searches the
candidate's two knobs, *volume* (amounts, sets, rounds) and *extra rest*, to land on the target.
So real synthesised durations replace estimates without the planner changing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from .content import LEVELS, Exercise, Routine
from .errors import UsageError

MIN_MINUTES, MAX_MINUTES = 5, 60
VOLUME_RANGE = (0.05, 6.0)
MAX_SETS, MAX_ROUNDS = 5, 8
EXTRA_REST_MAX = 30.0
AMOUNT_POWER, SETS_POWER = 0.45, 0.6


@dataclass
class PlannedExercise:
    exercise: Exercise
    section: str
    amount: int  # reps, seconds or breath cycles per set (and per side)
    sets: int
    rest_before: float  # the least time of the "next up" transition before it
    rest_between_sets: float
    switch_sides: float
    chimes: str = "bright"
    round: int = 1

    @property
    def name(self) -> str:
        return self.exercise.name

    def amount_text(self) -> str:
        ex = self.exercise
        text = f"{self.amount} {ex.unit}"
        if ex.sides == "each":
            text += " each side"
        elif ex.sides == "alternating":
            text += ", alternating sides"
        if self.sets > 1:
            text += f", {self.sets} sets"
        return text


@dataclass
class PlannedSection:
    name: str
    intro: str
    chimes: str
    round: int
    rounds: int
    exercises: list[PlannedExercise] = field(default_factory=list)


@dataclass
class Plan:
    routine: Routine
    level: str
    target_seconds: float
    volume: float
    extra_rest: float
    max_priority: int
    sections: list[PlannedSection]

    @property
    def minutes(self) -> float:
        return self.target_seconds / 60

    @property
    def exercises(self) -> list[PlannedExercise]:
        return [ex for s in self.sections for ex in s.exercises]


def tolerance(target_seconds: float) -> float:
    """How far a plan may land from its target: ±2 % or ±10 s, whichever is larger."""
    return max(0.02 * target_seconds, 10.0)


def _scaled(base: int, volume: float, power: float, lo: int, hi: int, phase: float = 0.5) -> int:
    """base × volume^power rounded at `phase`: different phases make items step up at different volumes."""
    return int(min(hi, max(lo, math.floor(base * volume ** power + phase))))


def _phase(index: int) -> float:
    """Spread rounding thresholds evenly (golden-ratio sequence), so sets and rounds don't all jump at once."""
    return 0.15 + 0.7 * ((index * 0.6180339887) % 1.0)


def _amount(ex: Exercise, level: str, volume: float) -> int:
    """Per-set amount at this volume; holds and timed work in whole 5 s steps once past 20 s.

    Amounts grow slower than sets, so a longer session at a low level means more sets, while the
    per-set amounts (the intensity) stay those of the level.
    """
    lo, hi = ex.limits
    amount = _scaled(ex.amounts[level], volume, AMOUNT_POWER, lo, hi)
    if ex.kind in ("timed", "hold") and amount > 20:
        amount = int(min(hi, max(lo, 5 * round(amount / 5))))
    return amount


def candidate(routine: Routine, level: str, volume: float, extra_rest: float = 0.0,
              max_priority: int = 3, target_seconds: float = 0.0, amount_volume: float | None = None) -> Plan:
    """The plan at one volume and extra rest. Every amount, set and round count rises with volume.

    `amount_volume`, when given, scales the per-set amounts apart from the sets and rounds.
    """
    amount_volume = volume if amount_volume is None else amount_volume
    rest = routine.rest
    sections: list[PlannedSection] = []
    for s_index, section in enumerate(routine.sections):
        items = [item for item in section.items if item.priority <= max_priority]
        if not items:
            continue
        repeatable = max(section.rounds.values()) > 1  # only sections written with rounds repeat
        rounds = _scaled(section.rounds[level], volume, 0.5, 1, MAX_ROUNDS, _phase(s_index)) if repeatable else 1
        for rnd in range(1, rounds + 1):
            planned = PlannedSection(section.name, section.intro, section.chimes, rnd, rounds)
            for i_index, item in enumerate(items):
                ex = item.exercise
                planned.exercises.append(PlannedExercise(
                    exercise=ex,
                    section=section.name,
                    amount=_amount(ex, level, amount_volume),
                    sets=_scaled(max(1, ex.sets[level]), volume, SETS_POWER, 1, MAX_SETS,
                                 _phase(i_index + 7 * s_index)),
                    rest_before=max(0.0, rest.between_exercises[level] + extra_rest),
                    rest_between_sets=max(3.0, rest.between_sets[level] + extra_rest),
                    switch_sides=rest.switch_sides,
                    chimes=section.chimes,
                    round=rnd,
                ))
            sections.append(planned)
    return Plan(routine, level, target_seconds, volume, extra_rest, max_priority, sections)


def _extra_rest_floor(routine: Routine, level: str) -> float:
    return -routine.rest.between_exercises[level]


def supported_range(routine: Routine, level: str, measure: Callable[[Plan], float]) -> tuple[float, float]:
    """Shortest and longest session (seconds) the routine can make at this level."""
    lo_v, hi_v = VOLUME_RANGE
    floor = _extra_rest_floor(routine, level)
    shortest = min(measure(candidate(routine, level, lo_v, floor, p)) for p in (1, 2, 3))
    longest = measure(candidate(routine, level, hi_v, EXTRA_REST_MAX, 3))
    return shortest, longest


def fit(routine: Routine, minutes: float, level: str, measure: Callable[[Plan], float]) -> Plan:
    """The plan whose measured length is closest to `minutes`, with as many exercises as fit."""
    if level not in LEVELS:
        raise UsageError(f"level: got {level!r}; allowed: {' | '.join(LEVELS)}")
    if not (MIN_MINUTES <= minutes <= MAX_MINUTES):
        raise UsageError(f"minutes: got {minutes:g}; allowed: {MIN_MINUTES} to {MAX_MINUTES}")
    target = minutes * 60.0
    tol = tolerance(target)
    lo_v, hi_v = VOLUME_RANGE
    floor = _extra_rest_floor(routine, level)

    def total(volume: float, extra: float, priority: int, amounts: float | None = None) -> tuple[float, Plan]:
        plan = candidate(routine, level, volume, extra, priority, target, amount_volume=amounts)
        return measure(plan), plan

    def largest_under(lo: float, hi: float, length: Callable[[float], float]) -> tuple[float, float]:
        """Bisection for the largest x whose length stays at or under the target (and the x just above)."""
        for _ in range(16):
            mid = math.sqrt(lo * hi)
            if length(mid) <= target:
                lo = mid
            else:
                hi = mid
        return lo, hi

    def settle(volume: float, priority: int, amounts: float | None = None) -> tuple[float, Plan]:
        """The extra rest (continuous) that lands a structure on the target."""
        lo_e, hi_e = floor, EXTRA_REST_MAX
        for _ in range(14):
            mid_e = (lo_e + hi_e) / 2
            if total(volume, mid_e, priority, amounts)[0] <= target:
                lo_e = mid_e
            else:
                hi_e = mid_e
        return min((total(volume, e, priority, amounts) for e in (lo_e, hi_e)), key=lambda r: abs(r[0] - target))

    for priority in (3, 2, 1):
        if total(lo_v, floor, priority)[0] > target + tol:
            continue  # too long even at its least: drop the next priority of exercises
        if total(hi_v, EXTRA_REST_MAX, priority)[0] < target - tol:
            break
        # The volume at which the plan crosses the target, then the rest that lands on it.
        a, b = largest_under(lo_v, hi_v, lambda v: total(v, 0.0, priority)[0])
        tried = [settle(a, priority), settle(b, priority)]
        if min(abs(m - target) for m, _ in tried) > tol:
            # A step in sets or rounds too big for rest to bridge: keep each side's sets and rounds
            # and move the per-set amounts instead.
            for volume in (a, b):
                x, y = largest_under(lo_v, hi_v, lambda v: total(volume, 0.0, priority, v)[0])
                tried += [settle(volume, priority, x), settle(volume, priority, y)]
        measured, plan = min(tried, key=lambda r: abs(r[0] - target))
        if abs(measured - target) <= tol:
            return plan
        break
    shortest, longest = supported_range(routine, level, measure)
    low, high = minutes_range(shortest, longest)
    can = (f"this routine supports {low} to {high} minutes at this level" if low <= high else
           f"at this level it runs {shortest / 60:.1f} to {longest / 60:.1f} minutes, "
           f"outside the {MIN_MINUTES} to {MAX_MINUTES} a session may last")
    raise UsageError(f"{routine.id}: cannot make {minutes:g} minutes at {level} level; {can}")


def minutes_range(shortest: float, longest: float) -> tuple[int, int]:
    """Whole-minute session lengths whose tolerance band reaches [shortest, longest] seconds.

    low > high means no length from MIN_MINUTES to MAX_MINUTES can be made.
    """
    minutes = range(MIN_MINUTES, MAX_MINUTES + 1)
    low = next((n for n in minutes if n * 60 + tolerance(n * 60) >= shortest), MAX_MINUTES + 1)
    high = next((n for n in reversed(minutes) if n * 60 - tolerance(n * 60) <= longest), MIN_MINUTES - 1)
    return low, high
