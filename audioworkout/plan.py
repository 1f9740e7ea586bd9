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
VOLUME_RANGE = (0.3, 6.0)
MAX_SETS, MAX_ROUNDS = 5, 8
EXTRA_REST_MAX = 30.0


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


def _scaled(base: int, volume: float, power: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, math.floor(base * volume ** power + 0.5))))


def _amount(ex: Exercise, level: str, volume: float) -> int:
    """Per-set amount at this volume; holds and timed work in whole 5 s steps once past 20 s."""
    lo, hi = ex.limits
    amount = _scaled(ex.amounts[level], volume, 0.6, lo, hi)
    if ex.kind in ("timed", "hold") and amount > 20:
        amount = int(min(hi, max(lo, 5 * round(amount / 5))))
    return amount


def candidate(routine: Routine, level: str, volume: float, extra_rest: float = 0.0,
              max_priority: int = 3, target_seconds: float = 0.0) -> Plan:
    """The plan at one volume and extra rest. Every amount, set and round count rises with volume."""
    rest = routine.rest
    sections: list[PlannedSection] = []
    for section in routine.sections:
        items = [item for item in section.items if item.priority <= max_priority]
        if not items:
            continue
        repeatable = max(section.rounds.values()) > 1  # only sections written with rounds repeat
        rounds = _scaled(section.rounds[level], volume, 0.5, 1, MAX_ROUNDS) if repeatable else 1
        for rnd in range(1, rounds + 1):
            planned = PlannedSection(section.name, section.intro, section.chimes, rnd, rounds)
            for item in items:
                ex = item.exercise
                planned.exercises.append(PlannedExercise(
                    exercise=ex,
                    section=section.name,
                    amount=_amount(ex, level, volume),
                    sets=_scaled(max(1, ex.sets[level]), volume, 0.4, 1, MAX_SETS),
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

    def total(volume: float, extra: float, priority: int) -> tuple[float, Plan]:
        plan = candidate(routine, level, volume, extra, priority, target)
        return measure(plan), plan

    best: tuple[float, Plan] | None = None
    for priority in (3, 2, 1):
        shortest, _ = total(lo_v, floor, priority)
        if shortest > target + tol:
            continue
        longest, _ = total(hi_v, EXTRA_REST_MAX, priority)
        if longest < target - tol:
            break
        # Largest volume whose plain-rest length stays at or under the target…
        a, b = lo_v, hi_v
        for _ in range(22):
            mid = math.sqrt(a * b)
            if total(mid, 0.0, priority)[0] <= target:
                a = mid
            else:
                b = mid
        for volume in (a, b):
            # …then the extra rest (continuous) that lands on it.
            lo_e, hi_e = floor, EXTRA_REST_MAX
            for _ in range(24):
                mid_e = (lo_e + hi_e) / 2
                if total(volume, mid_e, priority)[0] <= target:
                    lo_e = mid_e
                else:
                    hi_e = mid_e
            for extra in (lo_e, hi_e):
                measured, plan = total(volume, extra, priority)
                if best is None or abs(measured - target) < abs(best[0] - target):
                    best = (measured, plan)
        if best is not None and abs(best[0] - target) <= tol:
            return best[1]
        break
    low, high = minutes_range(*supported_range(routine, level, measure))
    raise UsageError(f"{routine.id}: cannot make {minutes:g} minutes at {level} level; "
                     f"this routine supports {low} to {high} minutes at this level")


def minutes_range(shortest: float, longest: float) -> tuple[int, int]:
    """Whole-minute session lengths whose tolerance band reaches [shortest, longest] seconds."""
    low = next((n for n in range(MIN_MINUTES, MAX_MINUTES + 1) if n * 60 + tolerance(n * 60) >= shortest), MAX_MINUTES)
    high = next((n for n in range(MAX_MINUTES, MIN_MINUTES - 1, -1) if n * 60 - tolerance(n * 60) <= longest), MIN_MINUTES)
    return low, high
