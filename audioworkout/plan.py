"""The plan: a routine's exercises with amounts, sets, rounds and rests, fitted to a session length.

A coach does not stretch every number to fill time. The amounts per set are the level's own
(rounded as a coach says them); a longer session adds what a coach would add, in this order:
the level's sets and rounds, more exercises of each section by priority, repeated stretch holds,
the routine's optional extras (to the section furthest below its share of the session), and then
more sets of strength moves or more rounds of a circuit. Each step is kept only if the session
still fits; what is left over goes into rests, in whole 5-second steps within their bounds.

The planner never lays out time itself: it asks a `layout(plan) -> Script` function (the script
stage, with estimated or real speech durations) how long a candidate runs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from . import coaching
from .content import LEVELS, Exercise, Routine, RoutineItem, Section
from .errors import UnreachableLength, UsageError

if TYPE_CHECKING:
    from .script import Script

MIN_MINUTES, MAX_MINUTES = 5, 60


@dataclass
class PlannedExercise:
    exercise: Exercise  # as done at this level (its variant, if it has one)
    section: str
    amount: int  # reps, seconds or breath cycles per set (and per side)
    sets: int  # sets; for a stretch held on each side, the holds per side
    rest_before: float  # the least quiet rest before its start bell
    rest_between_sets: float
    switch_sides: float
    chimes: str = "bright"
    register: str = "energetic"
    round: int = 1
    rounds: int = 1
    first: bool = True  # its first appearance in the session (full how-to); later ones get a reminder
    number: int = 0  # "exercise N of M", counting distinct exercises
    circuit: bool = False  # in a circuit: its changeovers keep their written length, as in exact mode
    interval: bool = False  # in an intervals section: starts on the previous interval's end bell, no rest

    @property
    def name(self) -> str:
        return self.exercise.name

    @property
    def sides(self) -> int:
        return 2 if self.exercise.sides == "each" else 1

    def work_seconds(self) -> float:
        """Seconds of work in all its sets (reps and breaths at their tempo)."""
        ex = self.exercise
        if ex.kind in ("timed", "hold"):
            per_set = float(self.amount)
        elif ex.kind == "reps":
            per_set = self.amount * sum(p.seconds for p in ex.tempo) * (2 if ex.sides == "alternating" else 1)
        else:
            per_set = self.amount * sum(p.seconds for p in ex.breath)
        return per_set * self.sets * self.sides

    def amount_text(self) -> str:
        return coaching.amount_text(self.exercise, self.amount, self.sets)


@dataclass
class PlannedSection:
    name: str
    intro: str
    chimes: str
    round: int
    rounds: int
    register: str = "energetic"
    number: int = 1  # the section's number among the parts of the session
    rest_before: float = 0.0  # rest before this round (between rounds)
    exercises: list[PlannedExercise] = field(default_factory=list)
    flow: str = "sets"  # content.Flow


@dataclass
class Plan:
    routine: Routine
    level: str
    target_seconds: float  # 0 in exact mode
    sections: list[PlannedSection]
    exact: bool = False
    parts: int = 0  # distinct sections (rounds count once)
    rest_steps: int = 0  # 5 s steps of extra rest spread over the rests between exercises
    rest_room: int = 0  # how many such steps those rests can take in all, within their bounds
    # The grown structure it stands for (`_state`): enough to build it again (`plan_from_shape`).
    shape: tuple = field(default=(), compare=False, repr=False)

    @property
    def minutes(self) -> float:
        return self.target_seconds / 60

    @property
    def exercises(self) -> list[PlannedExercise]:
        return [ex for s in self.sections for ex in s.exercises]

    def distinct_exercises(self) -> list[Exercise]:
        return list({ex.exercise.id: ex.exercise for ex in self.exercises}.values())

    def work_seconds(self) -> float:
        return sum(ex.work_seconds() for ex in self.exercises)

    def equipment(self) -> list[str]:
        return list(dict.fromkeys(item for ex in self.distinct_exercises() for item in ex.equipment))


def tolerance(target_seconds: float) -> float:
    """How far a plan may land from its target: ±2 % or ±10 s, whichever is larger."""
    return max(0.02 * target_seconds, 10.0)


# --------------------------------------------------------------------------- the structure being grown


@dataclass
class _Item:
    item: RoutineItem
    exercise: Exercise  # for the level
    included: bool
    extra: bool
    sets: int
    amount: int


@dataclass
class _Section:
    section: Section
    items: list[_Item]
    rounds: int
    round_limit: int


@dataclass
class _Structure:
    sections: list[_Section]
    pad_steps: int = 0  # 5 s steps of extra rest, spread evenly over the rests between exercises
    round_steps: int = 0  # 5 s steps added to each rest between rounds


def _items(section: Section, level: str) -> list[_Item]:
    out = []
    for item, extra in [(i, False) for i in section.items] + [(i, True) for i in section.extras]:
        ex = item.exercise.for_level(level)
        out.append(_Item(item, ex, False, extra, 1, coaching.round_amount(ex, ex.amounts[level])))
    return out


def _ordered(items: list[_Item], section: Section) -> list[_Item]:
    """A flexible section moves standing -> seated -> kneeling -> lying once, not back and forth."""
    if section.order != "flexible":
        return items
    return sorted(items, key=lambda i: coaching.POSITION_ORDER.get(i.exercise.position, 0))


def build_plan(routine: Routine, level: str, structure: _Structure, target_seconds: float, exact: bool) -> Plan:
    """The plan a structure stands for: rounds unrolled, numbers given, rests set."""
    rest = routine.rest
    sections: list[PlannedSection] = []
    numbers: dict[str, int] = {}
    parts = 0
    for s in structure.sections:
        chosen = _ordered([i for i in s.items if i.included], s.section)
        if not chosen:
            continue
        parts += 1
        intervals = s.section.flow == "intervals"
        for rnd in range(1, s.rounds + 1):
            between_rounds = rest.between_rounds[level] + coaching.REST_STEP * structure.round_steps
            if intervals:
                between_rounds = 0.0
            planned = PlannedSection(
                s.section.name,
                s.section.intro,
                s.section.chimes,
                rnd,
                s.rounds,
                s.section.register,
                parts,
                rest_before=between_rounds if rnd > 1 else 0,
                flow=s.section.flow,
            )
            for i in chosen:
                ex = i.exercise
                first = ex.id not in numbers
                if first:
                    numbers[ex.id] = len(numbers) + 1
                planned.exercises.append(
                    PlannedExercise(
                        exercise=ex,
                        section=s.section.name,
                        amount=i.amount,
                        sets=i.sets,
                        rest_before=0.0 if intervals else rest.between_exercises[level],
                        rest_between_sets=rest.between_sets[level],
                        switch_sides=rest.switch_sides,
                        chimes=s.section.chimes,
                        register=s.section.register,
                        round=rnd,
                        rounds=s.rounds,
                        first=first,
                        number=numbers[ex.id],
                        circuit=s.round_limit > 1,
                        interval=intervals,
                    )
                )
            sections.append(planned)
    _spread_pads(sections, structure.pad_steps)
    room = len(_rest_slots(sections)) * int(coaching.rest_pad_limits(routine, level)["rest_pad"] // coaching.REST_STEP)
    return Plan(routine, level, target_seconds, sections, exact, parts, structure.pad_steps, room, _state(structure))


def plan_from_shape(routine: Routine, level: str, target_seconds: float, shape: Any) -> Plan | None:
    """The plan `fit` grew to `shape` (`Plan.shape`), built again without the search; None if it does not fit the routine.

    A shape is plain numbers (JSON survives it as lists): the rest and round steps, then per section
    its rounds and per item whether it is in, its sets and its amount.
    """
    structure = _from_shape(routine, level, shape)
    return None if structure is None else build_plan(routine, level, structure, target_seconds, exact=False)


def _from_shape(routine: Routine, level: str, shape: Any) -> _Structure | None:
    structure = _start(routine, level)
    try:
        pad_steps, round_steps, sections = shape
        if len(sections) != len(structure.sections):
            return None
        for s, (rounds, items) in zip(structure.sections, sections, strict=True):
            if len(items) != len(s.items) or not (isinstance(rounds, int) and rounds >= 1):
                return None
            s.rounds = rounds
            for i, (included, sets, amount) in zip(s.items, items, strict=True):
                if not (isinstance(included, bool) and isinstance(sets, int) and isinstance(amount, int)):
                    return None
                if sets < 1 or amount < 1:
                    return None
                i.included, i.sets, i.amount = included, sets, amount
        if not (isinstance(pad_steps, int) and isinstance(round_steps, int) and pad_steps >= 0 and round_steps >= 0):
            return None
    except (TypeError, ValueError):
        return None
    structure.pad_steps, structure.round_steps = pad_steps, round_steps
    return structure


def with_rest_steps(plan: Plan, delta: int) -> Plan:
    """The plan with `delta` more 5 s steps of rest between exercises (fewer if negative), within their room.

    Real speech that runs longer or shorter than estimated is made up here: the exercises stay as
    fitted, only the rests move (what `fit` would give with its rests settled `delta` steps further).
    """
    steps = max(0, min(plan.rest_room, plan.rest_steps + delta))
    sections = copy.deepcopy(plan.sections)
    slots = _rest_slots(sections)
    for k, ex in enumerate(slots):
        ex.rest_before += coaching.REST_STEP * (
            _pad_share(steps, k, len(slots)) - _pad_share(plan.rest_steps, k, len(slots))
        )
    shape = (steps, *plan.shape[1:]) if plan.shape else ()
    return replace(plan, sections=sections, rest_steps=steps, shape=shape)


def _state(structure: _Structure) -> tuple:
    """Everything of a structure that its plan depends on, as a key."""
    return (
        structure.pad_steps,
        structure.round_steps,
        tuple((s.rounds, tuple((i.included, i.sets, i.amount) for i in s.items)) for s in structure.sections),
    )


# Seconds a session's talk may come out shorter after a step that only adds (the seeded phrase
# choices downstream of it change): the room `fit` leaves before it judges a step by its work alone.
_TALK_SWAY = 30.0


def _adds_to(before: tuple, after: tuple) -> bool:
    """Whether the state `after` has everything `before` has (`_state`), and perhaps more."""
    if after[0] < before[0] or after[1] < before[1]:
        return False
    for (rounds_a, items_a), (rounds_b, items_b) in zip(before[2], after[2], strict=True):
        if rounds_b < rounds_a:
            return False
        for (inc_a, sets_a, amount_a), (inc_b, sets_b, amount_b) in zip(items_a, items_b, strict=True):
            if (inc_a and not inc_b) or sets_b < sets_a or amount_b < amount_a:
                return False
    return True


def _rest_slots(sections: list[PlannedSection]) -> list[PlannedExercise]:
    """The exercises that follow another's end bell within a section: their rests can grow."""
    return [ex for s in sections for ex in s.exercises[1:] if not ex.interval]


def _spread_pads(sections: list[PlannedSection], steps: int) -> None:
    """Give `steps` extra 5 s steps of rest to the rests between exercises, as evenly as they go."""
    slots = _rest_slots(sections)
    if not slots or steps <= 0:
        return
    for k, ex in enumerate(slots):
        ex.rest_before += coaching.REST_STEP * _pad_share(steps, k, len(slots))


def _pad_share(steps: int, k: int, count: int) -> int:
    """The `k`th of `count` rests' share of `steps` steps spread as evenly as they go (the shares add up to `steps`)."""
    return (steps * (k + 1)) // count - (steps * k) // count


def _start(routine: Routine, level: str) -> _Structure:
    """The least session: each section's most important exercise, one set, one round."""
    sections = []
    for section in routine.sections:
        items = _items(section, level)
        core = [i for i in items if not i.extra]
        circuit = max(section.rounds.values()) > 1
        for i in core if circuit else core[:0]:
            i.included = True  # a circuit is done whole, or it is not the circuit
        if core and not circuit:
            min(core, key=lambda i: i.item.priority).included = True
        sections.append(
            _Section(section, items, 1, max(section.rounds.values()) if max(section.rounds.values()) > 1 else 1)
        )
    return _Structure(sections)


def _middle(structure: _Structure) -> list[_Section]:
    """The sections between the first and the last that have exercises of their own (not only extras)."""
    written = [s for s in structure.sections if any(not i.extra for i in s.items)]
    return written[1:-1]


def exact_plan(routine: Routine, level: str) -> Plan:
    """Every exercise with the amounts, sets, rounds and rests as written (exact mode)."""
    structure = _start(routine, level)
    for s in structure.sections:
        s.rounds = s.section.rounds[level]
        for i in s.items:
            i.included = not i.extra
            i.sets = coaching.planned_sets(i.exercise, level, growth=False)
    return build_plan(routine, level, structure, 0.0, exact=True)


# --------------------------------------------------------------------------- growth steps


Step = Callable[[], Callable[[], None] | None]  # changes the structure; returns its undo, or None if nothing to do


def _include(i: _Item) -> Step:
    def step() -> Callable[[], None] | None:
        if i.included:
            return None
        i.included = True
        return lambda: setattr(i, "included", False)

    return step


def _include_at(i: _Item, amount: int) -> Step:
    """Include an extra at less than its level's own amount: where the whole of it would overrun."""

    def step() -> Callable[[], None] | None:
        if i.included:
            return None
        before, i.included, i.amount = i.amount, True, amount

        def undo() -> None:
            i.included, i.amount = False, before

        return undo

    return step


def _shorter_amounts(ex: Exercise, level: str, easier: int | None = None) -> list[int]:
    """Round amounts below the level's own, longest first, down to the easier level's own (a beginner's:
    the move's least) or what the easier level's session gives it (`easier`), if more: levels keep their order."""
    own = coaching.round_amount(ex, ex.amounts[level])
    k = LEVELS.index(level)
    amount: int | None = coaching.round_amount(
        ex, max(ex.amounts[LEVELS[k - 1]] if k > 0 else ex.limits[0], easier or 0)
    )
    out = []
    while amount is not None and amount < own:
        out.append(amount)
        amount = coaching.next_amount(ex, amount, level)  # the steps `fit` lengthens by
    return out[::-1]


def _more_sets(i: _Item, limit: int) -> Step:
    def step() -> Callable[[], None] | None:
        if not i.included or i.sets >= limit:
            return None
        i.sets += 1
        return lambda: setattr(i, "sets", i.sets - 1)

    return step


def _more_rounds(s: _Section, limit: int) -> Step:
    def step() -> Callable[[], None] | None:
        if s.rounds >= limit or not any(i.included for i in s.items):
            return None
        s.rounds += 1
        return lambda: setattr(s, "rounds", s.rounds - 1)

    return step


Phase = list[list[Step]]  # per section, the steps to take in order; sections take turns by their share


def _ladder(structure: _Structure, level: str, least: dict[tuple[str, str], int] | None = None) -> list[Phase]:
    """The growth ladder: phases of per-section steps, each phase grown in balance before the next.

    `least`: the easier level's amounts per set in this session, which an extra taken shorter keeps to.
    """
    least = least or {}
    sections = structure.sections

    def per_section(make: Callable[[_Section], list[Step]]) -> Phase:
        return [make(s) for s in sections]

    def level_sets(s: _Section) -> list[Step]:  # 1. the level's own rounds and sets
        steps = [_more_rounds(s, s.section.rounds[level])] * (s.section.rounds[level] - 1) if s.round_limit > 1 else []
        for _ in range(coaching.MAX_SETS):
            steps += [
                _more_sets(i, coaching.planned_sets(i.exercise, level, growth=False)) for i in s.items if not i.extra
            ]
        return steps

    def core(s: _Section) -> list[Step]:  # 2. the section's own exercises, by priority
        return [_include(i) for i in sorted(s.items, key=lambda i: i.item.priority) if not i.extra]

    def stretches(s: _Section) -> list[Step]:  # 3. stretches held again per side, towards a minute (ACSM)
        return [
            _more_sets(i, coaching.planned_sets(i.exercise, level, growth=True))
            for _ in range(coaching.MAX_STRETCH_HOLDS)
            for i in s.items
            if i.exercise.is_stretch
        ]

    def extras(s: _Section) -> list[Step]:  # 4. the optional extras in order, each whole or else as long as fits
        ordered = [
            [_include(i)]
            + [
                _include_at(i, a)
                for a in _shorter_amounts(i.exercise, level, least.get((s.section.name, i.exercise.id)))
            ]
            for i in s.items
        ]
        return [step for i, steps in zip(s.items, ordered, strict=True) if i.extra for step in steps] + [
            _more_sets(i, coaching.planned_sets(i.exercise, level, growth=False)) for i in s.items if i.extra
        ]

    def more(s: _Section) -> list[Step]:  # 5. more sets of strength moves, more rounds of circuits
        if s.round_limit > 1:  # a circuit keeps its rhythm: it grows by rounds, not by sets or longer work
            return [_more_rounds(s, s.section.rounds[level] + coaching.EXTRA_ROUNDS)] * coaching.EXTRA_ROUNDS
        steps = [
            _more_sets(i, coaching.planned_sets(i.exercise, level, growth=True))
            for _ in range(coaching.MAX_SETS)
            for i in s.items
            if not i.exercise.is_stretch
        ]
        if s.round_limit > 1:
            steps += [_more_rounds(s, s.section.rounds[level] + coaching.EXTRA_ROUNDS)] * coaching.EXTRA_ROUNDS
        return steps

    def longer(s: _Section) -> list[Step]:  # 6. a round step more per set, never past the next level's amount
        if s.round_limit > 1:
            return []
        return [_longer(i, level) for _ in range(coaching.MAX_AMOUNT_STEPS) for i in s.items]

    def circuit_rounds(s: _Section) -> list[Step]:  # 4. a circuit grows by whole rounds first
        if s.round_limit <= 1:
            return []
        return [_more_rounds(s, s.section.rounds[level] + coaching.EXTRA_ROUNDS)] * coaching.EXTRA_ROUNDS

    return [per_section(f) for f in (level_sets, core, stretches, circuit_rounds, extras, more, longer)]


def _longer(i: _Item, level: str) -> Step:
    def step() -> Callable[[], None] | None:
        bigger = coaching.next_amount(i.exercise, i.amount, level)
        if not i.included or bigger is None:
            return None
        before, i.amount = i.amount, bigger
        return lambda: setattr(i, "amount", before)

    return step


def _target_shares(structure: _Structure) -> list[float]:
    """Each section's share of a session: warm-up and cool-down about 15 % each, the rest by their exercises."""
    sections = structure.sections
    weights = [float(len(s.items)) for s in sections]
    if len(sections) < 3:
        total = sum(weights) or 1.0
        return [w / total for w in weights]
    middle = sum(weights[1:-1]) or 1.0
    return (
        [coaching.WARM_COOL_SHARE]
        + [(1 - 2 * coaching.WARM_COOL_SHARE) * w / middle for w in weights[1:-1]]
        + [coaching.WARM_COOL_SHARE]
    )


def _grow_balanced(
    structure: _Structure,
    phase: Phase,
    fits: Callable[[], bool],
    shares: Callable[[], list[float]],
    capped: bool = True,
    balanced: bool = True,
) -> None:
    """Take each section's steps in order, each time in the section furthest below its share, while they
    fit; a section past its share stops growing (not where `balanced` is False: steps taken while they fit)."""
    pools = [list(steps) for steps in phase]
    wanted = _target_shares(structure)
    now = shares()
    while any(pools):
        k = min((k for k, pool in enumerate(pools) if pool), key=lambda k: now[k] - wanted[k])
        if balanced and now[k] > wanted[k] + (coaching.SHARE_SLACK if capped else coaching.SHARE_HARD_SLACK):
            pools[k].clear()  # this section has its share already: grow the others
            continue
        undo = pools[k].pop(0)()
        if undo is None:
            continue
        if fits():
            now = shares()
        else:
            undo()


_INTERRUPT: ContextVar[Callable[[], None] | None] = ContextVar("plan_interrupt", default=None)


@contextmanager
def interruptible(check: Callable[[], None]) -> Iterator[None]:
    """Call `check` before each layout of any plan search in this thread (tens a second): a stream's
    listener who leaves while it is planned stops the search from there (`check` raises)."""
    token = _INTERRUPT.set(check)
    try:
        yield
    finally:
        _INTERRUPT.reset(token)


def fit(
    routine: Routine,
    minutes: float,
    level: str,
    layout: Callable[[Plan], Script],
    fitted: dict[str, Plan] | None = None,
    explain: bool = True,
) -> Plan:
    """The plan whose laid-out length lands on `minutes`, grown as a coach would grow a session.

    A harder level never works less in all than the easier one at the same length: if growing in
    balance leaves it short, it takes more work (sets, longer sets) in place of extra rest.
    `fitted`, if given, receives the easier levels' plans fitted on the way (by level); a plan
    already in it (fitted before for the same routine, minutes and layout) is taken as it is.
    Where no plan lands, the UsageError names the lengths that can be made (`explain`): a search
    of its own, often dearer than the fit, so a caller that catches the error asks for none.
    """
    if fitted is not None and level in fitted:
        return fitted[level]
    floor = 0.0
    least: dict[tuple[str, str], int] = {}  # the easier plan's amount per set, by (section, exercise)
    if level in LEVELS and level != LEVELS[0] and MIN_MINUTES <= minutes <= MAX_MINUTES:
        try:
            easier = fit(routine, minutes, LEVELS[LEVELS.index(level) - 1], layout, fitted, explain=False)
            floor = easier.work_seconds() - coaching.STEP_SHORT  # amounts move in 5 s steps: equal within one step
            for p in easier.exercises:
                key = (p.section, p.exercise.id)
                least[key] = max(least.get(key, 0), p.amount)
        except UsageError:
            floor = 0.0
    plan = _fit_either(routine, minutes, level, layout, floor, explain, least)
    if fitted is not None:
        fitted[level] = plan
    return plan


def _fit_either(
    routine: Routine,
    minutes: float,
    level: str,
    layout: Callable[[Plan], Script],
    floor: float,
    explain: bool = True,
    least: dict[tuple[str, str], int] | None = None,
) -> Plan:
    """`_fit` grown in balance; where that lands on no plan and the routine has a circuit, grown with
    the circuit's rounds first (`rounds_first`).

    Grown in balance, a circuit's rounds come before a warm-up or a cool-down exists, when the
    circuit is most of the session, past its share: they are left for last, and by then the warm-up
    and cool-down have grown so far that a round no longer fits. So the seven-minute circuit could not
    be made from 18 to 24 minutes at intermediate level (one round with a warm-up past its share, or
    two rounds past the length) nor from 20 to 25 at advanced. A coach gives the rounds first and
    fits the warm-up and cool-down around them. Tried second, so every length made before keeps its plan.

    Where neither lands in proportion, the balanced plan is taken if its warm-up and cool-down stay within
    ACSM's 5-10 minutes (`coaching.warm_cool_most`): the circuit at 20 minutes advanced, one round with a
    5:40 warm-up (28 %), where two rounds leave no room for a cool-down.
    """
    wide: Plan | None = None  # a plan whose warm-up or cool-down is past SHARE_BAND, within ACSM's minutes
    try:
        return _fit(routine, minutes, level, layout, floor, False, least)
    except _PastShare as past:
        wide = past.plan
    except UnreachableLength:
        pass
    if any(max(s.rounds.values()) > 1 for s in routine.sections):
        try:
            return _fit(routine, minutes, level, layout, floor, False, least, rounds_first=True)
        except UnreachableLength:
            pass
    if wide is not None:
        return wide
    raise _unreachable(routine, minutes, level, layout, explain)


def _fit(
    routine: Routine,
    minutes: float,
    level: str,
    layout: Callable[[Plan], Script],
    floor: float,
    explain: bool = True,
    least: dict[tuple[str, str], int] | None = None,
    rounds_first: bool = False,
) -> Plan:
    if level not in LEVELS:
        raise UsageError(f"level: got {level!r}; allowed: {' | '.join(LEVELS)}")
    if not (MIN_MINUTES <= minutes <= MAX_MINUTES):
        raise UsageError(f"minutes: got {minutes:g}; allowed: {MIN_MINUTES} to {MAX_MINUTES}")
    target = minutes * 60.0
    tol = tolerance(target)
    structure = _start(routine, level)
    measured: dict[tuple, tuple[float, tuple[float, ...]]] = {}  # (length, section shares) by state

    def measure() -> tuple[float, tuple[float, ...]]:
        """The structure as it stands, laid out and measured; a state met again is not laid out again
        (the floor's trades come back to states they left)."""
        key = _state(structure)
        known = measured.get(key)
        if known is None:
            check = _INTERRUPT.get()
            if check is not None:
                check()
            script = layout(build_plan(routine, level, structure, target, exact=False))
            spans = {sp.title.split(",")[0]: 0.0 for sp in script.spans}
            for sp in script.spans:
                if sp.kind == "section":
                    spans[sp.title.split(",")[0]] += sp.end - sp.start
            total = script.total_seconds
            known = measured[key] = (total, tuple(spans.get(s.section.name, 0.0) / total for s in structure.sections))
        return known

    def length() -> float:
        return measure()[0]

    # Below 10 minutes the middle sections may go; the first and last always stay.
    middle = _middle(structure)
    while (
        length() > target + tol
        and minutes < coaching.ALL_SECTIONS_FROM_MINUTES
        and any(i.included for s in middle for i in s.items)
    ):
        last = next(s for s in reversed(middle) if any(i.included for i in s.items))
        for i in last.items:
            i.included = False
    if length() > target + tol:
        raise _unreachable(routine, minutes, level, layout, explain)

    def shares() -> list[float]:
        return list(measure()[1])

    def work() -> float:
        return build_plan(routine, level, structure, target, exact=False).work_seconds()

    grown_from: list[tuple[tuple, float, float]] = []  # (state, work, length) of the last state that fit

    def fits() -> bool:
        # A state that only adds to one that fit is at least as much longer as the work it adds, bar a
        # few seconds of talk chosen differently: if that already passes the target, it is not laid out.
        state, now = _state(structure), work()
        if grown_from:
            fitted, worked, long = grown_from[0]
            if _adds_to(fitted, state) and long + (now - worked) - _TALK_SWAY > target + tol:
                return False
        if length() > target + tol:
            return False
        grown_from[:] = [(state, now, length())]
        return True

    for index, phase in enumerate(_ladder(structure, level, least)):
        # rounds_first: the level's own rounds (phase 0) and a circuit's extra rounds (phase 3) while they fit
        _grow_balanced(
            structure, phase, fits, shares, capped=index > 0, balanced=not (rounds_first and index in (0, 3))
        )
    if length() + coaching.REST_STEP * _pad_capacity(structure, routine, level) < target - tol:
        for phase in _ladder(structure, level, least):  # too short in balance: let any section grow
            _grow_balanced(structure, phase, fits, shares, capped=False)
    if length() + _rest_reach(structure, routine, level) < target - tol:
        # Still short, so refused as it stands: the sections the session has grow past their share. Below
        # ten minutes the middle is out, and a warm-up and cool-down alone are each half the session;
        # the next whole exercise overruns (back-pain, 5 minutes intermediate: 276 s, or 349 s with a
        # stretch), where a coach gives the march and the last stretch longer.
        for phase in _ladder(structure, level, least):
            _grow_balanced(structure, phase, fits, shares, balanced=False)

    if work() < floor:

        def balanced() -> bool:
            now, wanted = shares(), _target_shares(structure)
            return all(
                now[k] >= coaching.SHARE_BAND[0]
                or wanted[k] < coaching.WARM_COOL_SHARE
                or not any(i.included for i in structure.sections[k].items)
                for k in range(len(now))
            )

        _reach_floor(structure, level, floor, work, fits, balanced, least)
    _settle_rests(structure, routine, level, target, length)
    if abs(length() - target) > tol:
        raise _unreachable(routine, minutes, level, layout, explain)
    # A plan the review would reject is not offered: this length is out of reach at this level instead
    # (a circuit's whole rounds leave some lengths only a warm-up out of proportion, or less work, can fill).
    if work() < floor:
        raise _unreachable(routine, minutes, level, layout, explain)
    if not _in_shape(structure, shares(), minutes):
        if not rounds_first and _in_shape(structure, shares(), minutes, widest=length()):
            raise _PastShare(build_plan(routine, level, structure, target, exact=False))
        raise _unreachable(routine, minutes, level, layout, explain)
    if rounds_first and not _framed(structure):  # rounds that leave no room for a warm-up or a cool-down
        raise _unreachable(routine, minutes, level, layout, explain)
    return build_plan(routine, level, structure, target, exact=False)


class _PastShare(UnreachableLength):
    """A plan that lands, with a warm-up or cool-down past SHARE_BAND but within ACSM's minutes: taken
    only where no plan in the band exists (`_fit_either`)."""

    def __init__(self, plan: Plan) -> None:
        super().__init__("a warm-up or cool-down past its share")
        self.plan = plan


def _in_shape(structure: _Structure, shares: list[float], minutes: float, widest: float = 0.0) -> bool:
    """From 10 minutes, with a middle to frame, the warm-up and cool-down each take a share in SHARE_BAND
    (with `widest`, the session's length: up to `coaching.warm_cool_most` of it)."""
    present = [k for k, s in enumerate(structure.sections) if any(i.included for i in s.items)]
    if minutes < coaching.ALL_SECTIONS_FROM_MINUTES or len(present) <= 2:
        return True
    low, high = coaching.SHARE_BAND
    if widest:
        high = coaching.warm_cool_most(widest)
    return all(
        low <= shares[k] <= high for k in present if coaching.is_warm_or_cool(structure.sections[k].section.name)
    )


def _framed(structure: _Structure) -> bool:
    """Every warm-up and cool-down the routine has is in the session (with exercises)."""
    return all(any(i.included for i in s.items) for s in structure.sections if coaching.is_warm_or_cool(s.section.name))


def _round_rests(structure: _Structure, routine: Routine, level: str) -> tuple[int, int]:
    """The rests between rounds in the session, and the 5 s steps each may grow by in all."""
    rounds = sum(max(0, s.rounds - 1) for s in structure.sections if any(i.included for i in s.items))
    return rounds, int(coaching.rest_pad_limits(routine, level)["round_pad"] // coaching.REST_STEP)


def _rest_reach(structure: _Structure, routine: Routine, level: str) -> float:
    """Seconds `_settle_rests` may still add: the rests between rounds, then those between exercises."""
    rounds, most = _round_rests(structure, routine, level)
    steps = rounds * max(0, most - structure.round_steps) + _pad_capacity(structure, routine, level)
    return coaching.REST_STEP * steps


def _pad_capacity(structure: _Structure, routine: Routine, level: str) -> int:
    """How many 5 s steps the rests between exercises may still grow, in all, within their bounds."""
    return build_plan(routine, level, structure, 0.0, exact=False).rest_room


def _reach_floor(
    structure: _Structure,
    level: str,
    floor: float,
    work: Callable[[], float],
    fits: Callable[[], bool],
    balanced: Callable[[], bool],
    least: dict[tuple[str, str], int] | None = None,
) -> None:
    """More work for a harder level left short by whole steps: trade one talk-heavy step for work steps.

    `least` as in `_ladder`: an extra taken shorter keeps to the easier level's amount (without it, the
    circuit at 11 minutes gave advanced 40 s of shoulder rolls where intermediate had 45)."""

    def grow() -> None:
        ladder = _ladder(structure, level, least)
        for step in [step for phase in (ladder[2], ladder[4], ladder[5], ladder[6]) for pool in phase for step in pool]:
            if work() >= floor:
                return
            undo = step()
            if undo is not None and not fits():
                undo()

    grow()
    for index in range(len(_shrinks(structure, level))):
        if work() >= floor:
            return
        saved = copy.deepcopy(structure.sections)
        _shrinks(structure, level)[index]()
        grow()
        if work() < floor or not balanced():
            structure.sections[:] = saved


def _shrinks(structure: _Structure, level: str) -> list[Callable[[], None]]:
    """What growth may be taken back: an included extra, a set or a step of amount beyond the level's own."""

    def plain_amounts() -> None:
        for s in structure.sections:
            for i in s.items:
                i.amount = coaching.round_amount(i.exercise, i.exercise.amounts[level])

    def leave_out(i: _Item) -> Callable[[], None]:
        return lambda: setattr(i, "included", False)

    def one_set_less(i: _Item) -> Callable[[], None]:
        return lambda: setattr(i, "sets", i.sets - 1)

    out: list[Callable[[], None]] = [plain_amounts]
    for s in structure.sections:
        for i in reversed(s.items):
            if not i.included:
                continue
            if i.extra:
                out.append(leave_out(i))
            if i.sets > coaching.planned_sets(i.exercise, level, growth=False):
                out.append(one_set_less(i))
    for s in structure.sections:  # last, a core exercise of a section that keeps others, least important first
        chosen = sorted((i for i in s.items if i.included and not i.extra), key=lambda i: -i.item.priority)
        out += [leave_out(i) for i in chosen[:-1]]
    return out


def _settle_rests(
    structure: _Structure, routine: Routine, level: str, target: float, length: Callable[[], float]
) -> None:
    """Lengthen rests in whole 5 s steps, within their bounds, to bring the session nearest its target.

    Rests between rounds grow first (a circuit's recovery), then the rests between exercises.
    """
    rounds, most = _round_rests(structure, routine, level)
    if rounds:
        while structure.round_steps < most and length() + coaching.REST_STEP * rounds <= target:
            structure.round_steps += 1
    deficit = target - length()
    structure.pad_steps = max(0, min(_pad_capacity(structure, routine, level), round(deficit / coaching.REST_STEP)))


_Change = Callable[[], Callable[[], None]]  # makes one change; returns its undo


def trimmed(
    plan: Plan, layout: Callable[[Plan], Script], least_work: float, shorter_extras: bool = False
) -> Plan | None:
    """The plan with growth taken back until it lands on its length laid out with `layout`; None if
    that would work less than `least_work` or lose a part.

    For a layout that runs longer than the one the plan was fitted on (a cold stream's slots). The
    session keeps its parts, rounds and core exercises; it gives back what `fit` adds last, in turn:
    extra rest, amounts beyond the level's own, sets beyond the level's, the optional extras (never
    a section's last), stretches held again; last, with `shorter_extras`, an extra not above its
    level's own amount a step shorter, as `fit` takes one shorter where the whole would overrun (a
    file build's last resort: a circuit's only warm-up move, where its talk ran long; a cold stream
    has other plans to try first, with more warm-up). In each turn the give-back that lands with the most work is taken, else the one that
    shortens most. Seven-minute circuit, 35 minutes intermediate,
    runs 66 s long in slots: its warm-up march a step shorter lands it, three rounds kept (a fit
    for the slots plays two).
    """
    structure = _from_shape(plan.routine, plan.level, plan.shape) if not plan.exact else None
    if structure is None:
        return None
    target = plan.target_seconds
    tol = tolerance(target)

    def built() -> Plan:
        return build_plan(plan.routine, plan.level, structure, target, exact=False)

    best = built()
    length = layout(best).total_seconds
    for turn in _give_backs(structure, plan.level)[: None if shorter_extras else -1]:
        while length > target + tol:
            tried: list[tuple[_Change, Plan, float]] = []  # each with its length guessed from its clock
            for give_back in turn():
                undo = give_back()
                candidate = built()
                undo()
                if candidate.work_seconds() >= least_work:
                    tried.append((give_back, candidate, length - (_clock(best) - _clock(candidate))))
            if not tried:
                break
            # Laid out only where it may land, most work first; else the one that shortens most.
            landing = sorted((t for t in tried if t[2] <= target + tol), key=lambda t: -t[1].work_seconds())
            for chosen in [*landing[:3], min(tried, key=lambda t: t[2])]:
                length = layout(chosen[1]).total_seconds
                if abs(length - target) <= tol:
                    break
            chosen[0]()
            best = chosen[1]
    return best if abs(length - target) <= tol else None


def _clock(plan: Plan) -> float:
    """The seconds of work and rest a plan asks for, its talk aside: about what a give-back shortens it by."""
    rests = sum(s.rest_before for s in plan.sections)
    return rests + sum(
        ex.work_seconds() + ex.rest_before + ex.rest_between_sets * (ex.sets - 1) for ex in plan.exercises
    )


def _give_backs(structure: _Structure, level: str) -> list[Callable[[], list[_Change]]]:
    """The turns of `trimmed`: each lists the single changes it may make now (each returns its undo)."""

    def change(obj: Any, name: str, value: Any) -> _Change:
        def apply() -> Callable[[], None]:
            before = getattr(obj, name)
            setattr(obj, name, value)
            return lambda: setattr(obj, name, before)

        return apply

    def included() -> list[tuple[_Section, _Item]]:
        return [(s, i) for s in structure.sections for i in s.items if i.included]

    def rest() -> list[_Change]:
        return [
            change(structure, n, getattr(structure, n) - 1)
            for n in ("pad_steps", "round_steps")
            if getattr(structure, n)
        ]

    def amounts() -> list[_Change]:
        out = []
        for _, i in included():
            smaller = _smaller_amount(i.exercise, i.amount, level)
            if smaller is not None:
                out.append(change(i, "amount", smaller))
        return out

    def sets(stretch: bool) -> Callable[[], list[_Change]]:
        return lambda: [
            change(i, "sets", i.sets - 1)
            for _, i in included()
            if i.exercise.is_stretch == stretch and i.sets > coaching.planned_sets(i.exercise, level, growth=False)
        ]

    def extras() -> list[_Change]:  # never a section's last: its part stays
        return [change(i, "included", False) for s, i in included() if i.extra and sum(j.included for j in s.items) > 1]

    def shorter_extras() -> list[_Change]:  # last: an extra not above its level's own amount, a step shorter
        out = []
        for _, i in included():
            if i.extra and _smaller_amount(i.exercise, i.amount, level) is None:
                smaller = next((a for a in _shorter_amounts(i.exercise, level) if a < i.amount), None)
                if smaller is not None:
                    out.append(change(i, "amount", smaller))
        return out

    return [rest, amounts, sets(False), extras, sets(True), shorter_extras]


def _smaller_amount(ex: Exercise, amount: int, level: str) -> int | None:
    """The amount one round step below `amount` on the way `fit` lengthens it from the level's own; None at the level's own."""
    steps = [coaching.round_amount(ex, ex.amounts[level])]
    while steps[-1] < amount and (bigger := coaching.next_amount(ex, steps[-1], level)) is not None:
        steps.append(bigger)
    below = [a for a in steps if a < amount]
    return below[-1] if below else None


def _unreachable(
    routine: Routine, minutes: float, level: str, layout: Callable[[Plan], Script], explain: bool = True
) -> UnreachableLength:
    if not explain:
        return UnreachableLength(f"{routine.id}: cannot make {minutes:g} minutes at {level} level")
    return unreachable(routine, minutes, level, [layout])


def unreachable(
    routine: Routine,
    minutes: float,
    level: str,
    layouts: Sequence[Callable[[Plan], Script]],
    why: str = "",
    confirm: Callable[[int, Plan], bool] | None = None,
) -> UnreachableLength:
    """The error for a length no plan lands on: the range the first layout supports, and the nearest
    lengths that every layout makes (a file build's plan is fitted on estimates, then perhaps again
    on its voice's real lengths: a length named must survive both), and that `confirm` passes, given
    the last layout's plan (a build makes that plan's phrases and fits it on them). `why` follows the
    length."""
    layout = layouts[0]
    low, high = minutes_range(*supported_range(routine, level, layout))
    can = (
        f"this routine supports {low} to {high} minutes at this level"
        if low <= high
        else f"no length from {MIN_MINUTES} to {MAX_MINUTES} minutes can be made at this level"
    )
    if low <= minutes <= high:  # inside the range, between two whole steps: name the nearest that can be made
        near = []
        for other in sorted(range(low, high + 1), key=lambda m: (abs(m - minutes), m))[1:7]:
            try:
                for each in layouts:
                    fitted = _fit_either(routine, other, level, each, 0.0, explain=False)
            except UsageError:
                continue
            if confirm is None or confirm(other, fitted):
                near.append(other)
            if len(near) == 2:
                break
        if near:
            can += f"; the nearest that can be made: {' or '.join(str(m) for m in sorted(near))} minutes"
    why = f" {why}" if why else ""
    return UnreachableLength(f"{routine.id}: cannot make {minutes:g} minutes at {level} level{why}; {can}")


def supported_range(routine: Routine, level: str, layout: Callable[[Plan], Script]) -> tuple[float, float]:
    """Shortest and longest session (seconds) the routine can make at this level."""
    structure = _start(routine, level)
    middle = _middle(structure)
    for s in middle:
        for i in s.items:
            i.included = False
    shortest = layout(build_plan(routine, level, structure, 0.0, exact=False)).total_seconds
    structure = _start(routine, level)
    for phase in _ladder(structure, level):
        for steps in phase:
            for step in steps:
                step()
    structure.round_steps = _round_rests(structure, routine, level)[1]
    structure.pad_steps = _pad_capacity(structure, routine, level)
    longest = layout(build_plan(routine, level, structure, 0.0, exact=False)).total_seconds
    return shortest, longest


def minutes_range(shortest: float, longest: float) -> tuple[int, int]:
    """Whole-minute session lengths whose tolerance band reaches [shortest, longest] seconds.

    low > high means no length from MIN_MINUTES to MAX_MINUTES can be made.
    """
    minutes = range(MIN_MINUTES, MAX_MINUTES + 1)
    low = next((n for n in minutes if n * 60 + tolerance(n * 60) >= shortest), MAX_MINUTES + 1)
    high = next((n for n in reversed(minutes) if n * 60 - tolerance(n * 60) <= longest), MIN_MINUTES - 1)
    return low, high


def supported_minutes(routine: Routine, level: str, layout: Callable[[Plan], Script]) -> list[int]:
    """Every whole-minute length in the supported range (a length inside it may still miss by a step)."""
    low, high = minutes_range(*supported_range(routine, level, layout))
    return list(range(low, high + 1))
