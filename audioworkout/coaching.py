"""The coaching rules: how a coach plans amounts, sets, rests and options, each with the reason for it.

The planner and the script call the helpers here; `audioworkout.review` checks a built script
against the same rules, so a rule lives in one place.
"""

from __future__ import annotations

import math
import re

from .content import Exercise, Routine
from .phrases import length_words

# Amounts a coach says: 5 s steps up to a minute, then 15 s steps; nobody says "19 seconds".
STEP_SHORT, STEP_LONG, STEP_SWITCH_AT = 5, 15, 60
# Rests change in the same whole steps a coach would name.
REST_STEP = 5
# How much longer than written a rest may grow while a session is fitted, and at most how long it gets.
REST_PAD_MAX = 15
ROUND_PAD_MAX = 60
# Only strength moves get extra sets; a warm-up, mobility or breathing set done twice adds nothing.
MAX_SETS = 4
SETS_FOR = ("strength",)
# Static stretches: ACSM advises about 60 s per stretch in all, in holds of 10-30 s; we repeat the hold per side.
STRETCH_TOTAL = 60
MAX_STRETCH_HOLDS = 3
# A circuit may add at most this many rounds beyond the level's own before the session should be another routine.
EXTRA_ROUNDS = 2
# How many round steps fitting may add to an amount per set (within the next level's amount).
MAX_AMOUNT_STEPS = 4
# Below this length a session may leave out its middle sections; from it, every section is there.
ALL_SECTIONS_FROM_MINUTES = 10
# A listener wonders whether the track has stopped after about 15 s of silence.
MAX_SILENCE = 14.0
# A warm-up's changeover between moves done on your feet is walked (ACSM: the warm-up is continuous activity).
WALKED_POSITIONS = ("standing", "any")
# A word of encouragement heard again within a minute sounds like a recording, not a coach.
FRESH_WORDS = 60.0
# Walking or running, your own steps and breath fill the quiet: a word every half minute keeps company without nagging.
MAX_INTERVAL_SILENCE = 30.0
# An interval long enough to want "halfway through this run"; past a few minutes, "1 minute to go" too.
INTERVAL_HALFWAY_FROM = 120
INTERVAL_MINUTE_LEFT_FROM = 180
# In long runs, the minutes done are named every so often, so a runner knows where they are.
INTERVAL_MARK_EVERY = 300
# A halfway cue only helps in work long enough to need one.
HALFWAY_FROM = 30
# A spoken 3-2-1 only where it leaves a short hold mostly quiet.
SPOKEN_COUNTDOWN_FROM = 20
# "1 minute to go", "30 seconds to go" in long work.
TIME_LEFT_MARKS = (60, 30)
# "10 minutes to go in this session".
MINUTES_LEFT_MARKS = (20, 10, 5)
# A care point a fixed changeover had no room for is said this soon after "go", the first time the move is
# done: the risk is named as the move starts, never in the middle of it.
CARE_SAID_WITHIN = 5.0
# During a static hold most of the time is quiet holding.
HOLD_QUIET_SHARE = 0.70
# Warm-up and cool-down are each roughly 10-20 % of a session; the review allows this band around it.
SHARE_BAND = (0.07, 0.27)
# ACSM advises at least 5-10 minutes each of warm-up and cool-down (Garber et al. 2011): where no plan keeps
# SHARE_BAND (a circuit's whole rounds), one may run to ten minutes, but never past a third of the session.
WARM_COOL_LONGEST = 600.0
WARM_COOL_MOST_SHARE = 1 / 3


def warm_cool_most(session_seconds: float) -> float:
    """The largest share of a session a warm-up or a cool-down may take: SHARE_BAND's top, or more
    where ACSM's ten minutes allow it (a third of a 20-minute session: 6:40, where 27 % is 5:24)."""
    return max(SHARE_BAND[1], min(WARM_COOL_LONGEST / max(session_seconds, 1.0), WARM_COOL_MOST_SHARE))


def is_warm_or_cool(section_name: str) -> bool:
    """The sections SHARE_BAND applies to, by name ("Warm-up", "Cool-down", "Gentle warm-up")."""
    return bool(re.search(r"warm|cool", section_name, re.I))


# The share of a session a planner aims the warm-up and the cool-down at.
WARM_COOL_SHARE = 0.15
# How far past its share a section may be before growth goes to the others.
SHARE_SLACK = 0.03
# ... and past which it never grows, even when the session would otherwise fall short.
SHARE_HARD_SLACK = 0.10
# Body positions in the order a flexible section visits them.
POSITION_ORDER = {"standing": 0, "any": 1, "seated": 2, "kneeling": 3, "lying": 4}


def round_seconds(seconds: float) -> int:
    """Seconds as a coach says them: whole 5 s steps to a minute, 15 s steps beyond."""
    step = STEP_SHORT if seconds <= STEP_SWITCH_AT else STEP_LONG
    return max(STEP_SHORT, int(step * round(seconds / step)))


def is_round(seconds: float) -> bool:
    return round_seconds(seconds) == seconds


def round_amount(ex: Exercise, amount: int) -> int:
    """The amount per set a coach gives: round seconds (a stretch within its hold), whole reps and breaths."""
    if ex.kind not in ("timed", "hold"):
        return max(1, int(amount))
    seconds = round_seconds(amount)
    if ex.stretch_hold:
        low, high = ex.stretch_hold
        seconds = min(max(seconds, round_seconds(low)), max(round_seconds(low), STEP_SHORT * (high // STEP_SHORT)))
    return seconds


def next_amount(ex: Exercise, amount: int, level: str) -> int | None:
    """One round step more per set, or None: never past the next level's own amount (levels keep their order)."""
    levels = ("beginner", "intermediate", "advanced")
    harder = levels[min(len(levels) - 1, levels.index(level) + 1)]
    cap = ex.amounts[harder] if harder != level else ex.limits[1]
    if ex.kind in ("timed", "hold"):
        step = STEP_SHORT if amount < STEP_SWITCH_AT else STEP_LONG
        bigger = amount + step
        if ex.stretch_hold:
            cap = min(cap, ex.stretch_hold[1])
    else:
        bigger = amount + 1
    return bigger if bigger <= cap else None


def planned_sets(ex: Exercise, level: str, growth: bool) -> int:
    """Sets at this level: the written ones for strength (more when a session grows); holds per side for stretches."""
    if ex.is_stretch:
        if not growth:
            return 1
        hold = round_amount(ex, ex.amounts[level])
        return min(MAX_STRETCH_HOLDS, max(1, math.ceil(STRETCH_TOTAL / hold - 1e-9)))
    if ex.category in SETS_FOR:
        written = max(1, ex.sets[level])
        return max(written, MAX_SETS) if growth else written
    return 1


def amount_text(ex: Exercise, amount: int, sets: int) -> str:
    """ "30 seconds each side", "10 reps, 2 sets", "8 reps each side, alternating", "6 breaths"."""
    if ex.kind in ("timed", "hold"):
        text = length_words(amount)
    else:
        text = f"{amount} {ex.unit}"
    if ex.sides == "each":
        text += " each side"
    elif ex.sides == "alternating":
        text += " each side, alternating"
    if sets > 1 and ex.is_stretch:  # a stretch is held again, on each side if it has sides
        text += (", twice" if sets == 2 else f", {sets} times") + (" on each side" if ex.sides == "each" else "")
    elif sets > 1:
        text += f", {sets} sets"
    return text


def option_for(ex: Exercise, level: str) -> str | None:
    """Beginners hear the easier option, advanced the harder one, intermediate whichever the content marks."""
    choice = {"beginner": "easier", "advanced": "harder"}.get(level, ex.intermediate_option)
    if choice in ("easier", "harder") and getattr(ex, choice):
        return choice
    return None


def reminder_for(ex: Exercise, occurrence: int) -> str | None:
    """The one-line reminder of a later set or round: the form points in turn (the how-to was said once)."""
    points = list(ex.form) or list(ex.cues)
    return points[(occurrence - 1) % len(points)] if points else None


def rest_pad_limits(routine: Routine, level: str) -> dict[str, float]:
    """How far fitting may lengthen rests: never past the next easier level's own (rest falls as level rises)."""
    levels = ("beginner", "intermediate", "advanced")
    easier = levels[max(0, levels.index(level) - 1)]
    rest = routine.rest

    def room(values: dict[str, float], most: float) -> float:
        if easier == level:
            return most
        return max(0.0, min(most, REST_STEP * math.floor((values[easier] - values[level]) / REST_STEP)))

    # A rest between rounds is a circuit's recovery, not a level's rest: it may grow at any level.
    return {
        "rest_pad": room(rest.between_exercises, REST_PAD_MAX),
        "set_pad": room(rest.between_sets, REST_PAD_MAX),
        "round_pad": float(ROUND_PAD_MAX),
    }
