"""The Python API: what the CLI calls, usable directly.

from audioworkout import api
routine = api.load_routine("back-pain")
plan, script = api.plan_session(routine, minutes=20, level="beginner")
result = api.build(routine, minutes=20, level="beginner")   # the MP3 and its sidecars
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import coaching
from .audio.mix import ChimeBank, music_files
from .audio.mp3 import Chapter, TrackTags
from .audio.sidecars import chapters_json, cue_sheet, plan_html, plan_markdown, webvtt
from .audio.stream import BinarySink, StreamResult, first_speech_needs, step_back, stream_build, stream_build_file
from .coaching import REST_STEP
from .content import LEVELS, Routine, load_routine, routine_names, validate_file  # noqa: F401  (the API re-exports them)
from .errors import AudioworkoutError, UnreachableLength, UsageError, printable
from .fsutil import atomic_set, file_lock, read_cover, remove_dead_parts, remove_unheld_locks
from .plan import (
    MAX_MINUTES,
    MIN_MINUTES,
    Plan,
    exact_plan,
    fit,
    interruptible,
    minutes_range,
    supported_range,
    tolerance,
    trimmed,
    unreachable,
    with_rest_steps,
)
from .plan_store import PlanStore
from .review import Finding, review, review_levels
from .script import GAP, LEAD_IN, Script, SpokenCue, lay_out, opening_lines
from .speech import SpeechSettings, estimate_duration, make_speaker  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)


class PhraseDurations:
    """How long each phrase lasts, for layout: measured when the speaker has it, else estimated.

    Unknown phrases are remembered as unknown until `refresh()`, so repeated layouts during the
    plan search never touch the disk twice for the same phrase.
    """

    def __init__(self, speaker=None, chimes: ChimeBank | None = None):
        self.speaker = speaker
        self.chimes = chimes or ChimeBank()
        self._known: dict[str, float] = {}
        self._unknown: set[str] = set()
        self._estimates: dict[str, float] = {}
        self._answered: dict[str, float] = {}  # what duration() said, known or estimated
        self._chimes: dict[tuple[str, str], float] = {}  # a chime's length, asked ~30,000 times in an hour's fit

    def known(self, text: str) -> float | None:
        if text in self._known:
            return self._known[text]
        if self.speaker is None or text in self._unknown:
            return None
        seconds = self.speaker.known_duration(text)
        if seconds is None:
            self._unknown.add(text)
        else:
            self._known[text] = seconds
        return seconds

    def duration(self, text: str) -> float:
        seconds = self._answered.get(text)  # the same answer until refresh(): a plan search asks ~350,000 times
        if seconds is None:
            seconds = self.known(text)
            if seconds is None:
                seconds = self._estimates.get(text)
                if seconds is None:
                    seconds = self._estimates[text] = estimate_duration(text)
            self._answered[text] = seconds
        return seconds

    def chime_duration(self, name: str, chime_set: str = "bright") -> float:
        seconds = self._chimes.get((name, chime_set))
        if seconds is None:
            seconds = self._chimes[name, chime_set] = self.chimes.duration(name, chime_set)
        return seconds

    def refresh(self) -> None:
        self._unknown.clear()
        self._answered.clear()


class ReservedDurations(PhraseDurations):
    """Real lengths where the cache has them, else a slot of the engine's upper bound (`reserve_seconds`).

    A cold stream lays its session out on these before its phrases exist, so it can play while they
    are made; each phrase then fits its slot, with silence after it for what it leaves.
    """

    def __init__(self, speaker=None, chimes: ChimeBank | None = None, unmade: Collection[str] = ()):
        super().__init__(speaker, chimes)
        self.unmade = set(unmade)  # in slots even if cached by now

    def duration(self, text: str) -> float:
        seconds = self._answered.get(text)
        if seconds is None:
            seconds = None if text in self.unmade else self.known(text)
            if seconds is None:
                seconds = self._estimates.get(text)
                if seconds is None:
                    bound = self.speaker.reserve_seconds(text) if self.speaker is not None else None
                    seconds = self._estimates[text] = bound if bound is not None else estimate_duration(text)
            self._answered[text] = seconds
        return seconds


class ExpectedDurations(PhraseDurations):
    """Real lengths where the cache has them, else the engine's guess of the phrase's length (not a
    bound: `Speaker.expect_seconds`), else the estimate: how long a file build's speech will most
    likely run, before any of it is made."""

    def duration(self, text: str) -> float:
        seconds = self._answered.get(text)
        if seconds is None:
            seconds = self.known(text)
            if seconds is None:
                guess = self.speaker.expect_seconds(text) if self.speaker is not None else None
                seconds = guess if guess is not None else estimate_duration(text)
            self._answered[text] = seconds
        return seconds


def as_spoken(routine: Routine, level: str, shown: Plan, speaker, chimes: ChimeBank | None = None) -> Plan:
    """The plan a file build most likely ends on with this voice, guessed before its speech exists.

    A file build fits on estimates, then corrects for its real speech (`plan_session`): its rests
    moved in 5 s steps, else a fit on the real lengths. These are the same corrections made on the
    lengths the engine expects. A short session spoken by Piper runs long on estimates (back-pain,
    5 minutes beginner: 313 s), so its file build works less than the plan shown (110 s, not 120 s);
    a cold stream's work is weighed against this plan, and a stream made first in part plays it.
    """
    if shown.exact:
        return shown
    durations = ExpectedDurations(speaker, chimes)
    plan, script = _rests_moved(shown, durations)
    if abs(plan.target_seconds - script.total_seconds) <= tolerance(plan.target_seconds):
        return plan
    try:
        return fit(routine, shown.minutes, level, layout_with(durations), explain=False)
    except UsageError:  # nothing lands on it: the file build would keep its plan, off its length
        return plan


# A cold stream may work this share of the file build's plan, no less: a step less here and there
# goes unnoticed; a tenth less is a shorter workout than the one asked for.
COLD_WORK_SHARE = 0.9


# A brief is reserved a slot the changeover has no room for before it is made: a plan laid out in slots may
# leave a move untaught and still be chosen; the stream then makes those changeovers' lines first and lays
# the plan out on their real lengths, as the file build does (`_taught_first`).
COLD_EXEMPT = {"taught"}


def _cold_findings(plan: Plan, script: Script) -> list[Finding]:
    """The coaching rules a session laid out in slots breaks, but those `COLD_EXEMPT`."""
    return [f for f in review(plan, script) if f.rule not in COLD_EXEMPT]


class _ColdChecks:
    """What a session played before its speech exists must keep, beside its length and the coaching
    rules (`review`): the file build's parts (`session_parts`), at least `COLD_WORK_SHARE` of its
    work (of the plan shown, or of `as_spoken`'s where that works less), and no less work than the
    easier level's stream (`_stream_work`: levels keep their order in streams as in file builds).
    The dear answers (`as_spoken`, the easier stream) are found once, when first asked for."""

    def __init__(
        self,
        routine: Routine,
        minutes: float | None,
        level: str,
        speaker,
        chimes: ChimeBank | None,
        unmade: Collection[str],
        shown: Plan,
    ):
        self.routine, self.minutes, self.level, self.speaker, self.chimes = routine, minutes, level, speaker, chimes
        self.unmade, self.shown = unmade, shown
        self.likely: Plan | None = None
        self._easier_work: float | None = None

    def spoken(self) -> Plan:
        if self.likely is None:
            self.likely = as_spoken(self.routine, self.level, self.shown, self.speaker, self.chimes)
        return self.likely

    def keep(self, plan: Plan, script: Script) -> bool:
        shown = self.shown
        short = plan.work_seconds() < COLD_WORK_SHARE * shown.work_seconds()
        if short:  # the file build's own speech may make it work less too (a short session): weighed against that
            short = plan.work_seconds() < COLD_WORK_SHARE * self.spoken().work_seconds()
        off = not plan.exact and abs(script.total_seconds - plan.target_seconds) > tolerance(plan.target_seconds)
        parts = session_parts(plan)
        reshaped = parts != session_parts(shown) and not (self.likely and parts == session_parts(self.likely))
        return not (short or off or reshaped or _cold_findings(plan, script) or self._below_easier(plan))

    def _below_easier(self, plan: Plan) -> bool:
        easier = _easier(self.level)
        if easier is None:
            return False
        if self._easier_work is None:
            self._easier_work = _stream_work(self.routine, self.minutes, easier, self.speaker, self.chimes, self.unmade)
        return plan.work_seconds() < self._easier_work - coaching.STEP_SHORT  # amounts move in 5 s steps


def _untaught_lines(plan: Plan, script: Script) -> list[str]:
    """The lines of each changeover that leaves a move untaught (`review.taught`), and the move's brief."""
    untaught = {f.subject for f in review(plan, script) if f.rule == "taught"}
    texts: list[str] = []
    for ex in plan.exercises:
        if not ex.first or ex.name not in untaught:
            continue
        bell = next(w.start for w in script.work if w.title == ex.name)
        since = max((w.end for w in script.work if w.end <= bell), default=0.0)
        texts += [c.text for c in script.cues if isinstance(c, SpokenCue) and since <= c.time < bell]
        texts.append(ex.exercise.brief)
    return [t for t in dict.fromkeys(texts) if t]


def _taught_first(
    plan: Plan, script: Script, checks: _ColdChecks, ahead: _SpeechAhead, unmade: Collection[str]
) -> tuple[Script, set[str]]:
    """The session laid out again with the lines of the changeovers that leave a move untaught in
    slots made first (the move's brief, "Next: ...", the side): where the session keeps every rule
    then, that script and the phrases made, else `script` as it is.

    A fixed changeover (the circuit's 10 s) has room for the brief as the voice speaks it, not in
    the slots of its upper-bound lengths: the seven-minute circuit's cold stream at 20 minutes
    advanced said "Next: Straight-leg Triceps Dips." and no word of how (`review.taught`)."""
    texts = _untaught_lines(plan, script)
    if not texts:
        return script, set()
    made = [t for t in texts if t in unmade or not ahead.made(t)]
    ahead.add(made, first=True)
    if not all(ahead.made_soon(t) for t in made):
        return script, set()
    slots = ReservedDurations(ahead.speaker, checks.chimes, set(unmade) - set(made))
    relaid = lay_out(plan, slots)
    if not checks.keep(plan, relaid) or any(f.rule == "taught" for f in review(plan, relaid)):
        log.info("%s: a move left untaught in slots (its brief made first did not fit)", plan.routine.id)
        return script, set()
    return relaid, set(made)


def cold_session(
    routine: Routine,
    minutes: float | None,
    level: str,
    speaker,
    chimes: ChimeBank | None = None,
    unmade: Collection[str] = (),
    on_draft: Callable[[Script], None] | None = None,
    checks: _ColdChecks | None = None,
) -> tuple[Plan, Script] | None:
    """The session as a cold stream lays it out, its phrases in slots (`ReservedDurations`), or None if it should not.

    A slot is the phrase's upper-bound length, about 0.35 s longer than the phrase on average: laid
    out in slots, the file build's plan mostly runs long (about 3 %, 115 s in an hour). The ways
    tried, in order: the file build's plan itself, where it lands on its length in slots anyway; the
    same plan with the growth `fit` added last given back until it lands (`_trimmed`: its parts,
    rounds and core exercises kept); the plan fitted as the file build's is, on estimates, for a target
    shortened by what the slots add (`_fit_shorter`), the same growth with a step less here and
    there; the plan fitted on the slots themselves; the plan the file build's speech will likely
    correct it to (`as_spoken`: a short session's may land in slots where the plan shown does not).
    The first that keeps every coaching rule and the file build's parts (`session_parts`), works at
    least `COLD_WORK_SHARE` of the file build's work (of the plan shown, or of `as_spoken`'s where
    that works less) and not less than the easier level's stream (`_stream_work`), is played;
    otherwise None: the stream makes its first phrases first (`_made_first`). `on_draft` is shown
    the file build's plan in slots as soon as it exists (its phrases are the stream's, bar a few:
    the speech can start on them). `checks` (for the same session), if given, is used and keeps what
    it finds for `_made_first`.
    """
    if checks is None:
        shown, _ = plan_session(routine, minutes, level, speaker, chimes, synthesise=False)
        checks = _ColdChecks(routine, minutes, level, speaker, chimes, unmade, shown)
    shown = checks.shown
    slots = ReservedDurations(speaker, chimes, unmade)
    draft = lay_out(shown, slots)
    if on_draft is not None:
        on_draft(draft)

    def as_spoken_in_slots() -> tuple[Plan, Script] | None:
        likely = checks.spoken()
        return None if likely == shown else (likely, lay_out(likely, slots))  # the same: tried first

    candidates: list[Callable[[], tuple[Plan, Script] | None]] = [lambda: (shown, draft)]
    if not shown.exact:  # the file build's own plan first: where it lands on its length in slots, it plays as is
        candidates += [
            lambda: _trimmed(routine, level, shown, draft, slots),
            lambda: _fit_shorter(routine, level, shown, slots),
            lambda: _fit_in_slots(routine, level, shown, slots),
            as_spoken_in_slots,  # last: its fit costs as much as the first, and it seldom lands in slots
        ]
    for candidate in candidates:
        try:
            found = candidate()
        except UsageError:  # no session of this length in slots (the shortest): try the next, or make it first
            continue
        if found is not None and checks.keep(*found):
            return found
    log.info("%s: not streamed cold (in slots it would break a coaching rule)", routine.id)
    return None


def session_parts(plan: Plan) -> list[tuple[str, int]]:
    """The parts a listener hears announced, in order: each section with exercises, round by round.

    A cold stream keeps the file build's: a step less here and there goes unnoticed, but not a
    warm-up, a cool-down or a round less (seven-minute circuit, 20 minutes intermediate, fitted in
    slots: two rounds of the circuit, with neither the warm-up nor the cool-down the file build has;
    back-pain, 8 minutes intermediate: no strength part).
    """
    return [(s.name, s.round) for s in plan.sections if s.exercises]


def _fit_shorter(routine: Routine, level: str, shown: Plan, slots: ReservedDurations) -> tuple[Plan, Script]:
    """The file build's fit for a target shortened by what the slots add, laid out in slots.

    The shortening is the same at every level: what the slots add to the easiest level's plan (fitted
    anyway: a harder level's fit starts from it). With one target, `fit` keeps the levels in order
    (a harder one never works less), as it does for file builds. If the plan then misses the length,
    it is fitted once more for its own shortening.
    """
    target = shown.target_seconds
    estimates = PhraseDurations(None, slots.chimes)
    store = plan_store(slots.speaker)
    base = _fit_on_estimates(routine, shown.minutes, LEVELS[0], slots.chimes, store) if level in LEVELS else shown
    aim = target - (lay_out(base, slots).total_seconds - lay_out(base, estimates).total_seconds)
    kept = not slots.chimes.overrides  # chimes from the user's files are timed from the files: not remembered
    for _ in range(2):
        fitted = _fitted_before(routine, aim / 60) if kept else {}  # another level's cold stream fitted them
        plan = fit(routine, aim / 60, level, layout_with(estimates), fitted, explain=False)  # cold_session catches
        plan = replace(plan, target_seconds=target)
        if kept:
            _remember(fitted, routine, aim / 60)
        script = lay_out(plan, slots)
        off = script.total_seconds - target
        if abs(off) <= tolerance(target):
            break
        aim -= off
    return plan, script


def _trimmed(
    routine: Routine, level: str, shown: Plan, draft: Script, slots: ReservedDurations
) -> tuple[Plan, Script] | None:
    """The file build's plan with its last growth given back until it lands in slots (`plan.trimmed`).

    It keeps the file build's parts, rounds and core exercises (an optional extra may go), so it is
    tried before a fit.
    """
    if draft.total_seconds <= shown.target_seconds + tolerance(shown.target_seconds):
        return None  # not long in slots: nothing to give back for
    plan = trimmed(shown, layout_with(slots), COLD_WORK_SHARE * shown.work_seconds())
    if plan is None:
        return None
    return plan, lay_out(plan, slots)


def _stream_work(
    routine: Routine, minutes: float | None, level: str, speaker, chimes: ChimeBank | None, unmade: Collection[str]
) -> float:
    """The work a stream of this session plays: its cold plan's, or, made first in part, `as_spoken`'s
    (0 where no plan of this length exists at this level, as `fit` finds for its levels too)."""
    if minutes is not None:
        try:
            _fit_on_estimates(routine, minutes, level, chimes, plan_store(speaker), keep=False)
        except UsageError:
            return 0.0
    laid = cold_session(routine, minutes, level, speaker, chimes, unmade)
    if laid is not None:
        return laid[0].work_seconds()
    shown, _ = plan_session(routine, minutes, level, speaker, chimes, synthesise=False)
    return as_spoken(routine, level, shown, speaker, chimes).work_seconds()


def _easier(level: str) -> str | None:
    return LEVELS[LEVELS.index(level) - 1] if level in LEVELS and level != LEVELS[0] else None


def _fit_in_slots(routine: Routine, level: str, shown: Plan, slots: ReservedDurations) -> tuple[Plan, Script]:
    """The plan fitted on the slots themselves."""
    plan = fit(routine, shown.minutes, level, layout_with(slots), explain=False)  # cold_session catches
    return plan, lay_out(plan, slots)


def _made_first(
    checks: _ColdChecks,
    ahead: _SpeechAhead,
    report: Callable[[str, float], None],
) -> tuple[Plan, Script, list[str]] | None:
    """The file build's plan (as its speech will likely correct it: `as_spoken`), its first phrases
    made before it plays and the rest in slots; None if that keeps no coaching rule more than making
    every phrase first would.

    For a session that no plan laid out in slots keeps every rule for (a short one: its warm-up
    talk, fixed, takes too long a share of it in slots). Its phrases are made those whose slots hold
    it back most first (`_made_first_order`); after each, the plan is laid out again with those made
    so far at their real length, and it plays as soon as that lands on its length and keeps every rule (back-pain, 10 minutes
    advanced: after 28 of its 64 phrases), or as soon as the same plan with a step given back
    (`plan.trimmed`) does and keeps what a cold stream keeps (`_ColdChecks`): each made phrase
    frees the little its slot held over it. Also the phrases still in slots, as `stream` wants them.
    `checks` names the session and keeps `as_spoken`'s plan where `cold_session` found it already.
    """
    routine, speaker, chimes, fresh = checks.routine, checks.speaker, checks.chimes, checks.unmade
    shown, likely = checks.shown, checks.spoken()  # likely: the plan its speech, once made, lands on
    unmade = set(fresh) | {
        t for t in lay_out(likely, ReservedDurations(speaker, chimes, fresh)).spoken_texts() if not ahead.made(t)
    }
    order = _made_first_order(likely, speaker, chimes, unmade)
    ahead.add(order)
    target, tol = likely.target_seconds, tolerance(likely.target_seconds)
    least = COLD_WORK_SHARE * min(shown.work_seconds(), likely.work_seconds())
    tried_over = math.inf  # how far past its length it ran in slots when a step was last given back
    for made in range(len(order)):
        report("synthesising", made / len(order))  # a listener who left stops it here (the studio)
        if made and not ahead.made_soon(order[made - 1]):
            return None  # the synthesis failed: the stream meets it, making its phrases first
        slotted = order[made:]
        slots = ReservedDurations(speaker, chimes, slotted)
        script = lay_out(likely, slots)
        if likely.exact or abs(script.total_seconds - target) <= tol:
            if not _cold_findings(likely, script):
                log.info("%s: %d of its %d phrases made before it plays", routine.id, made, len(order))
                return likely, script, slotted
            continue
        over = script.total_seconds - target - tol
        if 0 < over <= tried_over - _GIVE_BACK_EVERY:
            tried_over = over
            plan = trimmed(likely, layout_with(slots), least)
            if plan is not None and checks.keep(plan, script := lay_out(plan, slots)):
                log.info(
                    "%s: %d of its %d phrases made, a step given back, before it plays", routine.id, made, len(order)
                )
                return plan, script, slotted
    return None


def _made_first_order(plan: Plan, speaker, chimes: ChimeBank | None, unmade: set[str]) -> list[str]:
    """The phrases of `plan` in `unmade` in the order a session made first in part makes them: those
    whose slots hold its length back most for the time they take to make first, the rest in the order
    they sound; or all in the order they sound, where that lands sooner.

    What a phrase frees is found at the engine's expected length (`expect_seconds`): the most of what
    making it alone frees and of what leaving it alone in its slot costs (the second finds a rep's
    cue, said 72 times, which the rep's other cues would hold back as long on their own). In the order
    they sound, a session waits for its long opening talk, which frees little (desk-break, 30
    minutes advanced: 66 phrases, 210 s of speech, made first; in this order 21, 48 s). But a slot
    freed can also let a rest shrink by a whole step, which no phrase alone shows (back-pain, 5
    minutes beginner: in the order they sound it lands after 12 phrases, 77 s of speech; in this one
    after 16, 102 s), so the two orders are laid out as if made one phrase at a time, and the one that
    lands for less speech made is taken. Laid out about four times a phrase, a millisecond or two each.
    """
    slots = ReservedDurations(speaker, chimes, unmade)  # one for every layout: its lengths are asked once
    slotted = lay_out(plan, slots)
    sounding = [t for t in dict.fromkeys(slotted.spoken_texts()) if t in unmade]
    guesses = {t: speaker.expect_seconds(t) for t in sounding}
    expected = {t: seconds for t, seconds in guesses.items() if seconds is not None}
    if len(expected) < len(sounding):
        return sounding

    def laid(assumed: Iterable[str]) -> Script:
        return lay_out(plan, _Assumed(slots, {t: expected[t] for t in assumed}))

    made = laid(sounding).total_seconds
    frees = {
        t: max(slotted.total_seconds - laid([t]).total_seconds, laid(set(sounding) - {t}).total_seconds - made)
        for t in sounding
    }
    freeing = sorted((t for t in sounding if frees[t] > 0.01), key=lambda t: -frees[t] / (1.0 + expected[t]))
    chosen = set(freeing)
    freeing += [t for t in sounding if t not in chosen]

    def cost_to_land(order: list[str], most: float) -> float:  # seconds of speech (and 1 s a phrase) made first
        cost = 0.0
        for made_first in range(len(order) + 1):
            script = laid(order[:made_first])
            if abs(script.total_seconds - plan.target_seconds) <= tolerance(plan.target_seconds):
                if not _cold_findings(plan, script):
                    return cost
            if made_first == len(order) or cost > most:
                break
            cost += 1.0 + expected[order[made_first]]
        return math.inf

    least = cost_to_land(freeing, math.inf)
    return sounding if cost_to_land(sounding, least) < least else freeing


class _Assumed:
    """`slots`, with the phrases in `lengths` taken at those lengths (as if made)."""

    def __init__(self, slots: ReservedDurations, lengths: dict[str, float]):
        self.slots, self.lengths = slots, lengths

    def duration(self, text: str) -> float:
        seconds = self.lengths.get(text)
        return self.slots.duration(text) if seconds is None else seconds

    def chime_duration(self, name: str, chime_set: str = "bright") -> float:
        return self.slots.chime_duration(name, chime_set)


# Seconds a session made first in part must have come closer to its length in slots (about three
# phrases made) before a step given back is tried again: each try lays the session out a few times.
_GIVE_BACK_EVERY = 1.0


def can_reserve(speaker) -> bool:
    """Whether the speaker's engine bounds a phrase's length before making it (Piper; the test engine)."""
    return speaker is not None and hasattr(speaker.engine, "reserve_seconds")


def layout_with(durations: PhraseDurations) -> Callable[[Plan], Script]:
    return lambda plan: lay_out(plan, durations)


def plan_session(
    routine: Routine,
    minutes: float | None = None,
    level: str | None = None,
    speaker=None,
    chimes: ChimeBank | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    synthesise: bool = True,
) -> tuple[Plan, Script]:
    """Fit the routine to `minutes` at `level`, then time it with real speech when a speaker is given.

    The plan is chosen on estimated phrase lengths, so it is a pure function of the routine and the
    settings, whatever the cache holds. Its phrases are then synthesised, and if real speech moved
    the length off its target, the rests are corrected in whole 5 s steps (each correction depends
    only on the real lengths of the phrases already in the plan, so the same command gives the same
    script). With `synthesise=False` nothing is synthesised or written: cached lengths where
    present, estimates for the rest. (A cold stream lays its session out in slots: `cold_session`.)
    """
    level = level or routine.level
    durations = PhraseDurations(speaker, chimes)
    # Where no plan lands, the lengths named instead must make a plan both on estimates and, as far as
    # the cache knows it, on this voice's real lengths (the second fit below).
    layouts = [layout_with(PhraseDurations(None, chimes))] + ([layout_with(durations)] if speaker is not None else [])
    store = plan_store(speaker)
    plan = _on_estimates(routine, minutes, level, chimes, store, synthesise, layouts)
    if speaker is None or not synthesise:
        return plan, lay_out(plan, durations)

    def speak(script: Script) -> bool:
        return _speak_missing(script, speaker, durations, progress)

    return _as_the_voice_speaks(plan, durations, speak, store, layouts)


def likely_session(
    routine: Routine,
    minutes: float | None = None,
    level: str | None = None,
    speaker=None,
    chimes: ChimeBank | None = None,
) -> tuple[Plan, Script]:
    """The plan and script a file build will most likely make, with nothing synthesised or written
    (`build --dry-run`).

    The file build's own corrections (`plan_session`) made on the lengths the cache has, and on the
    engine's guess for the rest (`ExpectedDurations`): where real speech moves the rests, gives a step
    back or refuses the length, so does the dry run (back-pain, 5 minutes at pace 0.85 printed 5:30
    where the build refused it).
    """
    if speaker is None:
        return plan_session(routine, minutes, level, None, chimes, synthesise=False)
    level = level or routine.level
    durations = ExpectedDurations(speaker, chimes)
    layouts = [layout_with(PhraseDurations(None, chimes)), layout_with(durations)]
    store = plan_store(speaker)
    plan = _on_estimates(routine, minutes, level, chimes, store, False, layouts)
    return _as_the_voice_speaks(plan, durations, lambda script: False, store, layouts, keep=False)


def _on_estimates(
    routine: Routine,
    minutes: float | None,
    level: str,
    chimes: ChimeBank | None,
    store: PlanStore | None,
    keep: bool,
    layouts: list[Callable[[Plan], Script]],
) -> Plan:
    """The routine as written (no minutes, not fitted) or fitted on estimates (`_fit_on_estimates`,
    kept in `store` with `keep`); where no plan lands, the error naming the lengths `layouts` make."""
    exact = minutes is None and not routine.fit
    minutes = routine.minutes if minutes is None else minutes
    try:
        return exact_plan(routine, level) if exact else _fit_on_estimates(routine, minutes, level, chimes, store, keep)
    except UnreachableLength:
        raise unreachable(routine, minutes, level, layouts) from None


def _as_the_voice_speaks(
    plan: Plan,
    durations: PhraseDurations,
    speak: Callable[[Script], bool],
    store: PlanStore | None,
    layouts: list[Callable[[Plan], Script]] | None,
    keep: bool = True,
) -> tuple[Plan, Script]:
    """The plan fitted on estimates, corrected for the voice's lengths (`durations`): its rests moved
    in 5 s steps; else the plan kept for this voice, or fitted on its lengths (and kept, with `keep`);
    else a step given back (`_given_back`); else the length is refused (the lengths that can be made
    named as `layouts` make them; without them, no search for them). `speak` makes the phrases a
    layout lacks (True if it made some), so each decision is taken on real lengths. A plan as written
    is only laid out."""
    routine, minutes, level = plan.routine, plan.minutes, plan.level
    plan, script = _rests_moved(plan, durations, speak)
    if plan.exact or abs(plan.target_seconds - script.total_seconds) <= tolerance(plan.target_seconds):
        return plan, script
    # Real speech far from the estimates: the plan fitted on the real lengths themselves, kept for
    # this voice in the plan store (the search costs as much as the first: up to a second an hour).
    if durations.chimes.overrides:  # timed from the user's files, which may change
        store = None
    voice = f"spoken by {durations.speaker.engine.cache_key()}" if store is not None else ""
    kept = store.get(routine, minutes, level, voice) if store is not None else None
    if kept is not None:
        script = lay_out(kept, durations)
        made = all(durations.known(t) is not None for t in script.spoken_texts())
        if made and abs(kept.target_seconds - script.total_seconds) <= tolerance(kept.target_seconds):
            return kept, script
    for _ in range(4):
        try:
            plan = fit(routine, minutes, level, layout_with(durations), explain=False)
        except UnreachableLength:  # a length in the range shown before, out of reach as this voice speaks
            given_back = _given_back(plan, durations, speak)
            if given_back is not None:
                if store is not None and keep:
                    store.put(given_back[0], minutes, voice)
                return given_back
            if layouts is None:
                raise
            why = "as this voice speaks it (its talk runs longer than estimated: a faster pace may make it)"

            def builds(other: int, fitted: Plan) -> bool:
                """A length named instead needs phrases this build has not made: they are made (a few),
                and it is fitted on their real lengths (at pace 0.7 the circuit's 10 minutes named 11,
                on estimates for its phrases not made yet; 11 was then refused as spoken)."""
                speak(lay_out(fitted, durations))
                try:
                    fit(routine, other, level, layout_with(durations), explain=False)
                except UnreachableLength:
                    return False
                return True

            raise unreachable(routine, minutes, level, layouts, why, builds) from None
        if not speak(lay_out(plan, durations)):
            if store is not None and keep:
                store.put(plan, minutes, voice)
            break
    return plan, lay_out(plan, durations)


def _given_back(plan: Plan, durations: PhraseDurations, speak: Callable[[Script], bool]) -> tuple[Plan, Script] | None:
    """The plan with a step of its growth given back until it lands on the voice's real lengths
    (`plan.trimmed`), as a cold stream gives one back in its slots; None if none lands and keeps
    every coaching rule, its parts and the easier level's work.

    Where real speech runs long and no fit on it lands either (seven-minute circuit, 12 minutes
    advanced: 735.0 s against 734.4 s allowed), the stream played the plan with its warm-up march a
    step shorter; the file build of the same command refused the length. Now both play.
    """
    least = COLD_WORK_SHARE * plan.work_seconds()
    easier = _easier(plan.level)
    if easier is not None:  # levels keep their order: not less work than the easier level's build on these lengths
        try:
            base = _fit_on_estimates(plan.routine, plan.minutes, easier, durations.chimes, None, False)
            # On the real lengths of its own phrases too (`speak` makes those it lacks): laid out on
            # estimates for them, the easier level may land without the step this one gives back,
            # and the length be refused or made by which phrases the cache happened to hold.
            below, _ = _as_the_voice_speaks(base, durations, speak, None, None)
            least = max(least, below.work_seconds() - coaching.STEP_SHORT)
        except UnreachableLength:
            pass
    for _ in range(4):
        given = trimmed(plan, layout_with(durations), least, shorter_extras=True)
        if given is None:
            return None
        script = lay_out(given, durations)
        if speak(script):
            continue  # new phrases (a rest of another length): judged again on their real lengths
        lands = abs(script.total_seconds - given.target_seconds) <= tolerance(given.target_seconds)
        if lands and session_parts(given) == session_parts(plan) and not review(given, script):
            log.info("%s: a step given back to land as this voice speaks it", plan.routine.id)
            return given, script
        return None
    return None


def _rests_moved(
    plan: Plan, durations: PhraseDurations, speak: Callable[[Script], bool] = lambda script: False
) -> tuple[Plan, Script]:
    """The plan with its rests moved in whole 5 s steps (`with_rest_steps`, within their room) until,
    laid out on `durations`, it lands within half its tolerance, or they can move no further: a file
    build's correction for its real speech, and `as_spoken`'s on the lengths the engine expects.
    An exact plan is not moved. `speak` makes the phrases a layout lacks first (True when it made
    some: the layout is taken again), so each step is judged on real lengths only.
    """
    fitted, delta = plan, 0
    script = lay_out(plan, durations)
    for _ in range(8):
        if speak(script):
            script = lay_out(plan, durations)
            continue
        off = plan.target_seconds - script.total_seconds
        step = round(off / REST_STEP)
        if plan.exact or abs(off) <= tolerance(plan.target_seconds) / 2 or step == 0:
            break
        corrected = with_rest_steps(fitted, delta + step)
        if corrected.exercises == plan.exercises:
            break  # the rests cannot move further
        delta, plan = delta + step, corrected
        script = lay_out(plan, durations)
    return plan, script


_FITS: OrderedDict[tuple[str, float, str], Plan] = OrderedDict()
_FITS_KEPT = 32  # plans are small; a server keeps the sessions its listeners just looked at
_FITS_LOCK = threading.Lock()


def _fit_on_estimates(
    routine: Routine,
    minutes: float,
    level: str,
    chimes: ChimeBank | None,
    store: PlanStore | None = None,
    keep: bool = True,
) -> Plan:
    """`fit` on estimated phrase lengths: a pure function of its inputs.

    The search lays the session out hundreds of times (about a second for an hour), so its plan is
    remembered in this process (a server that showed a plan at /plan.json starts its stream without
    fitting it again) and, given a `store`, read from and (with `keep`: not in a dry run, which
    writes nothing) kept on disk for the next process. (A correction for real speech moves the
    rests of the plan already fitted: `_rests_moved`.) Chimes from the user's files are timed from
    the files, which may change, so those fits are not remembered. Where no plan lands, the
    UnreachableLength names no lengths that can be made (a search of its own): a caller that shows
    it words it with `plan.unreachable`, as `plan_session` does; the others catch it.
    """
    if chimes is not None and chimes.overrides:
        return fit(routine, minutes, level, layout_with(PhraseDurations(None, chimes)), explain=False)
    key = (repr(routine), float(minutes), level)
    with _FITS_LOCK:
        plan = _FITS.get(key)
        if plan is not None:
            _FITS.move_to_end(key)
    if plan is None and store is not None:
        plan = store.get(routine, minutes, level)
        if plan is not None:
            _remember({level: plan}, routine, minutes)
            _in_store(store, key)
    if plan is None:
        fitted = _fitted_before(routine, minutes)
        plan = fit(routine, minutes, level, layout_with(PhraseDurations(None, chimes)), fitted, explain=False)
        _remember(fitted, routine, minutes)  # the easier levels fitted on the way are kept too
        if store is not None and keep:
            for below, made in fitted.items():
                store.put(made, minutes)
                _in_store(store, (key[0], key[1], below))
    elif store is not None and keep and not _in_store(store, key):
        # Fitted in this process by a look that writes nothing (a stream's check of its cache, a cold
        # stream's plan): kept now, or every new process would fit it again.
        store.put(plan, minutes)
    return plan


_STORED: set[tuple[str, str, float, str]] = set()  # (store folder, *fit key) known to be in a plan store


def _in_store(store: PlanStore, key: tuple[str, float, str]) -> bool:
    """Whether this process knows the plan `key` to be in `store`; it is counted in from now on."""
    entry = (str(store.directory), *key)
    with _FITS_LOCK:
        known = entry in _STORED
        _STORED.add(entry)
    return known


def _fitted_before(routine: Routine, minutes: float) -> dict[str, Plan]:
    """The plans this process fitted on estimates for these minutes, by level: a harder level's fit
    starts from them (it needs the easier levels' plans) rather than fitting them again."""
    with _FITS_LOCK:
        key = repr(routine)
        return {level: plan for (r, m, level), plan in _FITS.items() if r == key and m == float(minutes)}


def _remember(plans: dict[str, Plan], routine: Routine, minutes: float) -> None:
    with _FITS_LOCK:
        for level, plan in plans.items():
            _FITS[(repr(routine), float(minutes), level)] = plan
            _FITS.move_to_end((repr(routine), float(minutes), level))
        while len(_FITS) > _FITS_KEPT:
            _FITS.popitem(last=False)


def plan_store(speaker) -> PlanStore | None:
    """The plan store beside the speaker's phrase cache (none without one: nothing is written)."""
    cache = getattr(speaker, "cache", None)
    return PlanStore(cache.directory / "plans") if cache is not None else None


def _speak_missing(script: Script, speaker, durations: PhraseDurations, progress) -> bool:
    """Synthesise the script's phrases whose real length is not known yet; True if there were any."""
    missing = sorted({t for t in script.spoken_texts() if durations.known(t) is None})
    if missing:
        speaker.prefetch(missing, progress=progress)
        durations.refresh()
    return bool(missing)


@dataclass
class RoutineSummary:
    id: str
    title: str
    sections: list[str]
    default_minutes: float
    default_level: str
    shortest_minutes: int
    longest_minutes: int


def summarise(routine: Routine, level: str | None = None) -> RoutineSummary:
    """What `audioworkout list` shows: the routine and the lengths it supports (estimated speech)."""
    level = level or routine.level
    low, high = minutes_range(*supported_range(routine, level, layout_with(PhraseDurations())))
    names = list(dict.fromkeys(s.name for s in routine.sections))
    return RoutineSummary(routine.id, routine.title, names, routine.minutes, routine.level, low, high)


@dataclass(frozen=True)
class ReviewedSession:
    minutes: float | None  # None: the routine's exact (unfitted) session
    level: str
    findings: list[Finding]
    skipped: str = ""  # why a length in the supported range could not be made


def review_lengths(routine: Routine, level: str) -> list[float | None]:
    """The lengths the review sweeps by default: every 5 minutes the routine supports, and its own default."""
    low, high = minutes_range(*supported_range(routine, level, layout_with(PhraseDurations())))
    lengths: list[float | None] = [float(m) for m in range(MIN_MINUTES, MAX_MINUTES + 1, 5) if low <= m <= high]
    if routine.fit:
        lengths.append(routine.minutes)
    else:
        lengths.insert(0, None)
    return sorted(set(lengths), key=lambda m: -1 if m is None else m)


def review_routine(
    routine: Routine, minutes: list[float] | None = None, levels: list[str] | None = None
) -> list[ReviewedSession]:
    """The coaching rules applied to every requested length and level (estimated speech: no synthesis)."""
    out = []
    levels = levels or list(LEVELS)
    supported = {lv: review_lengths(routine, lv) for lv in levels}
    lengths = (
        minutes
        if minutes
        else sorted({m for lv in levels for m in supported[lv]}, key=lambda m: -1 if m is None else m)
    )
    for length in lengths:
        sessions: dict[str, tuple[Plan, Script]] = {}
        for level in levels:
            if not minutes and length not in supported[level]:
                continue  # a length this level cannot make is only reported when asked for
            try:
                sessions[level] = plan_session(routine, length, level)
            except UsageError as exc:
                if minutes:
                    out.append(ReviewedSession(length, level, [Finding(0.0, "length", str(exc), "length")]))
                else:  # inside the range but between two whole steps (a circuit's rounds): not made, not a fault
                    out.append(ReviewedSession(length, level, [], skipped=str(exc)))
        for level, (plan, script) in sessions.items():
            out.append(ReviewedSession(length, level, review(plan, script)))
        for finding in review_levels(sessions):
            out.append(ReviewedSession(length, "all levels", [finding]))
    return out


@dataclass
class BuildResult:
    mp3: Path | None
    sidecars: list[Path]
    script: Script
    plan: Plan
    seconds: float
    loudness_lufs: float | None = None  # integrated, dual mono
    true_peak_dbtp: float | None = None
    phrases_synthesised: int = 0
    cached_phrases: int = 0  # dry run: phrases timed from the cache
    estimated_phrases: int = 0  # dry run: phrases timed by estimate


def track_stem(routine: Routine, minutes: float, level: str) -> str:
    return f"{routine.id}-{minutes:g}min-{level}"


def _with_chime_set(routine: Routine, chime_set: str) -> Routine:
    """Force one chime set everywhere, instead of each section's own ("auto")."""
    if chime_set == "auto":
        return routine
    return replace(routine, sections=tuple(replace(s, chimes=chime_set) for s in routine.sections))


@dataclass(frozen=True)
class BuildOptions:
    """What a build makes beside the speech: music, chimes, cover, where and how the MP3 is written."""

    music: Path | None = None
    chime_files: dict[str, Path] = field(default_factory=dict)
    chime_set: str = "auto"  # auto (each section's own) | bright | soft
    cover: Path | None = None
    output_dir: Path = Path("output")
    bitrate_kbps: int = 96
    artist: str = "audioworkout"
    dry_run: bool = False
    stem: str | None = None  # the track's file name (default: routine-minutes-level)
    title: str | None = None  # the MP3's title tag (default: the routine's title, length and level)
    album: str | None = None  # the MP3's album tag (default: the routine's title; a programme's title)
    sheet: dict[str, Any] = field(default_factory=dict)  # more for the cue sheet (a programme episode's place)


def _check_inputs(options: BuildOptions) -> ChimeBank:
    """Refuse a bad --music or --chime before any work (exit 2, like any bad argument)."""
    if options.music is not None:
        try:
            files = music_files(options.music)
        except AudioworkoutError as exc:
            raise UsageError(str(exc)) from None
        empty = [f for f in files if f.stat().st_size == 0]
        if empty:
            raise UsageError(f"--music: {empty[0]}: the file is empty")
    for name, path in options.chime_files.items():
        if not Path(path).is_file() or Path(path).stat().st_size == 0:
            raise UsageError(f"--chime: {name}={path}: expected an existing, non-empty audio file")
    try:
        return ChimeBank(dict(options.chime_files))
    except AudioworkoutError as exc:
        raise UsageError(str(exc)) from None


def build(
    routine: Routine,
    minutes: float | None = None,
    level: str | None = None,
    speech: SpeechSettings | None = None,
    options: BuildOptions | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> BuildResult:
    """Plan, script, synthesise, mix, master and encode one track with its sidecars.

    Safe to run side by side with other builds: phrases are synthesised once between them (the
    phrase cache's locks), a second build of the same target waits for the first (`_target_lock`),
    and the MP3 and its five sidecars are committed as a set (`fsutil.atomic_set`), so a failure or
    a kill at any point leaves the previous set whole.
    """

    report = progress or (lambda stage, fraction: None)
    options = options or BuildOptions()
    session = _Session.prepare(routine, level, speech, options)
    routine, level, chimes, speaker = session.routine, session.level, session.chimes, session.speaker
    music, output_dir, dry_run = options.music, Path(options.output_dir), options.dry_run
    if not dry_run:  # before any synthesis: a folder we cannot write to fails now, not after the work
        _check_output(output_dir, (minutes or routine.minutes) * 60, options.bitrate_kbps)
        if speaker.cache is not None:
            speaker.cache.remove_leftovers()  # a killed build's, in the phrase cache
    plan, script, minutes = session.plan(minutes, report, synthesise=not dry_run)
    stem = options.stem or track_stem(routine, minutes, level)
    if dry_run:
        durations = PhraseDurations(speaker, chimes)
        texts = set(script.spoken_texts())
        cached = sum(1 for t in texts if durations.known(t) is not None)
        return BuildResult(
            None, [], script, plan, script.total_seconds, cached_phrases=cached, estimated_phrases=len(texts) - cached
        )
    remove_stale_parts(output_dir)
    mp3_path = output_dir / f"{stem}.mp3"
    tags = session.tags(minutes, script, options)
    with _target_lock(mp3_path):
        # The sidecars first and the MP3 last: `publish.tracks.find_tracks` (the feed, the page) lists
        # a track by its MP3, so a new track appears only once everything describing it is in place.
        names = [f"{stem}{suffix}" for suffix in SIDECAR_SUFFIXES]
        from mutagen import MutagenError

        speaker.forget_audio()  # the renderer reads each phrase from the cache when it sounds
        try:
            with atomic_set([output_dir / n for n in names] + [mp3_path]) as tmp:
                made = stream_build_file(
                    script,
                    speaker,
                    chimes,
                    music,
                    tags,
                    track_chapters(script),
                    tmp[mp3_path],
                    bitrate_kbps=options.bitrate_kbps,
                    progress=report,
                    replace_target=False,
                )
                loudness, peak = made.loudness_lufs, made.true_peak_dbtp  # measured on the MP3 itself
                created = datetime.now(UTC).replace(microsecond=0).isoformat()
                contents = (
                    cue_sheet(script, plan, mp3_path.name, created, extra=options.sheet),
                    webvtt(script),
                    chapters_json(script),
                    plan_markdown(script, plan),
                    plan_html(script, plan),
                )
                for name, text in zip(names, contents, strict=True):
                    tmp[output_dir / name].write_bytes(text.encode("utf-8"))
        except (OSError, MutagenError) as exc:
            raise _write_error(mp3_path, exc) from None
    return BuildResult(
        mp3_path,
        [output_dir / n for n in names],
        script,
        plan,
        script.total_seconds,
        loudness,
        peak,
        speaker.stats.synthesised,
    )


SIDECAR_SUFFIXES = (".json", ".vtt", ".chapters.json", ".plan.md", ".plan.html")


@contextmanager
def _target_lock(mp3_path: Path) -> Iterator[None]:
    """One build of a target at a time: a second build of the same MP3 waits, and says so, until the
    first has committed its set; then it writes its own (the same command gives the same files).

    The lock file `.<stem>.lock` is hidden and not an MP3, so no reader takes it for a track; its
    holder deletes it, and one a killed build left is deleted by `remove_stale_parts`.
    """
    lock = mp3_path.with_name(f".{mp3_path.stem}.lock")
    with ExitStack() as stack:
        try:
            stack.enter_context(
                file_lock(lock, on_wait=lambda: log.warning("waiting for another build of %s", mp3_path))
            )
        except OSError as exc:
            raise _write_error(mp3_path, exc) from None
        yield


def _write_error(target: Path, exc: Exception) -> AudioworkoutError:
    """One line naming the target and the system's reason (mutagen wraps the OSError it got)."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__context__ or cause.__cause__
    why = (cause.strerror or str(cause)) if isinstance(cause, OSError) else str(exc)
    return AudioworkoutError(
        f"{printable(str(target))}: cannot write the track ({why}); the files already there are unchanged"
    )


def stream(
    routine: Routine,
    sink: BinarySink,
    minutes: float | None = None,
    level: str | None = None,
    speech: SpeechSettings | None = None,
    options: BuildOptions | None = None,
    progress: Callable[[str, float], None] | None = None,
    cold: bool | None = None,
    on_script: Callable[[Script], None] | None = None,
) -> StreamResult:
    """Plan one session and write its MP3 to `sink` while it renders: no file, no sidecars.

    The ID3 tag with the chapters goes first (the plan knows them), then the frames as LAME makes
    them, so a player (`-o - | mpv -`, a browser's audio element) starts at once. The level is fixed
    before the first frame (`audio.stream`). A sink that fails (a listener who went away:
    BrokenPipeError, ConnectionResetError) stops the render and the encoder.

    When every phrase is cached the session is the file build's, sample for sample. Otherwise
    (`cold`; None decides by the cache) it plays while its phrases are made: they are laid out in
    slots of their upper-bound length (`cold_session`: fitted to land on the length in slots, used only where
    it keeps every coaching rule; where none does, the file build's plan with its first phrases made
    first, `_made_first`), synthesised in the order they sound by worker threads, and the
    render starts once the level's sample exists. With music, or an engine that cannot bound a
    phrase's length before making it (Pico, gTTS), every phrase is made first, as `cold=False` asks.
    `on_script` is given the script that plays, before its first byte (the studio shows it: a cold
    stream's may differ from the file build's).
    """
    report = progress or (lambda stage, fraction: None)
    options = options or BuildOptions()
    session = _Session.prepare(routine, level, speech, options)
    speaker = session.speaker
    asked = minutes  # a cold stream's own plan may differ: the next request asks for these minutes again
    may_be_cold = cold is not False and options.music is None and can_reserve(speaker)
    with _SpeechAhead(speaker) as ahead, interruptible(lambda: report("planning", 0.0)):
        pending: list[str] = []
        if may_be_cold:
            opening = opening_lines(session.routine)
            fresh = [t for t in opening if not ahead.made(t)]
            cold = cold or bool(fresh)  # a routine new to the cache: no need to look further
            ahead.add(_heard_first(opening, fresh))  # while the session is planned
            if not cold:
                _, draft = plan_session(
                    session.routine, minutes, session.level, speaker, session.chimes, synthesise=False
                )
                cold = any(speaker.known_duration(t) is None for t in draft.spoken_texts())
            if cold:  # laid out on what the cache held when the stream was asked for, whatever is made meanwhile

                def start_sample(draft: Script) -> None:  # its most-heard phrases are the final plan's
                    unmade = [t for t in dict.fromkeys(draft.spoken_texts()) if t in fresh or not ahead.made(t)]
                    if unmade:
                        ahead.add(_level_sample(draft, unmade), first=True)
                    # The moves its changeovers leave untaught: most often the final plan's too (`_taught_first`).
                    ahead.add(_untaught_lines(shown, draft), first=True)

                shown, _ = plan_session(
                    session.routine, minutes, session.level, speaker, session.chimes, synthesise=False
                )
                checks = _ColdChecks(session.routine, minutes, session.level, speaker, session.chimes, fresh, shown)
                laid = cold_session(
                    session.routine, minutes, session.level, speaker, session.chimes, fresh, start_sample, checks
                )
                if laid is not None:
                    plan, script = laid
                    script, taught = _taught_first(plan, script, checks, ahead, fresh)
                    pending = [
                        t
                        for t in dict.fromkeys(script.spoken_texts())
                        if (t in fresh and t not in taught) or not ahead.made(t)
                    ]
                else:  # no plan keeps every rule in slots: the file build's, with its first phrases made
                    first = _made_first(checks, ahead, report)  # as_spoken's plan, found already, is kept
                    if first is not None:
                        plan, script, slotted = first
                        pending = [t for t in dict.fromkeys(script.spoken_texts()) if t in set(slotted)]
                if pending:
                    minutes = plan.minutes if plan.target_seconds else round(script.total_seconds / 60)
        sample: list[str] = []
        if pending:
            sample = _level_sample(script, pending)
            sampled = set(sample)
            pending = sample + [t for t in pending if t not in sampled]
            ahead.add(pending, first=True)  # in the order they sound, whatever order made some first
            ahead.add(sample, first=True)
            # Then the file build's phrases, its real-speech corrections included, for the next play:
            ahead.then(lambda speaker: plan_session(session.routine, asked, session.level, speaker, session.chimes))
        else:
            _, script, minutes = session.plan(minutes, report)
        tags = session.tags(minutes, script, options)
        speaker.forget_audio()
        if on_script is not None:
            on_script(script)
        return stream_build(
            script,
            speaker,
            session.chimes,
            options.music,
            tags,
            track_chapters(script),
            sink,
            bitrate_kbps=options.bitrate_kbps,
            progress=report,
            pending=pending,
            wait_for=sample,
        )


def _heard_first(lines: list[str], unmade: list[str]) -> list[str]:
    """The opening lines not made yet that sound before a cold stream's first speech can go out
    (`first_speech_needs`): made while the session is planned, the other core left to plan.

    The welcome always; the line after it too when the welcome is short (seven-minute circuit: its
    description, a ten-second sentence, starts 2 s in; waited for after the plan, the first speech
    went out 1.2 s after the first frame). Where it starts later (back-pain), making it then only
    slowed the planning: 1.38-1.42 -> 1.53-1.94 s to a 20-minute stream's first frame.
    """
    needed, at, soon = [], LEAD_IN, first_speech_needs()
    for text in lines:
        if at >= soon:
            break
        needed.append(text)
        at += estimate_duration(text) + GAP
    return [t for t in needed if t in unmade]


def warm_cache(
    routine: Routine,
    minutes: float | None = None,
    level: str | None = None,
    speech: SpeechSettings | None = None,
    options: BuildOptions | None = None,
    check: Callable[[], None] | None = None,
) -> None:
    """Make every phrase the file build of these settings speaks (its real-speech fit included), so
    that its next stream and its build are warm.

    A cold stream does this itself once its own phrases are made, but only while it lasts: one taken
    faster than it is made (a browser that reads ahead, a download) ends first, and its next play
    would be cold again for what is missing. `check` is called first, as each phrase is made and
    before each plan layout; raise from it to stop (the phrases under way finish into the cache, none
    is started after it; nothing is left half-written).
    """
    options = options or BuildOptions()
    session = _Session.prepare(routine, level, speech, options)
    check = check or (lambda: None)
    check()
    with interruptible(check):
        plan_session(
            session.routine, minutes, session.level, session.speaker, session.chimes, progress=lambda *_: check()
        )


class _SpeechAhead:
    """Phrases synthesised by worker threads (as many as the engine's jobs), one at a time from a
    queue in the order they are asked for, while a stream is planned and plays; `add(first=True)`
    puts phrases at its head (the level's sample, wanted before the rest).

    On leaving (the stream ended, failed or its listener went away) no further phrase is started;
    the ones under way finish into the cache. A failure here is left to the renderer, which meets
    it when it asks for that phrase itself. `then` queues work for after the stream's own phrases
    (a cold stream makes the file build's, so the next play of the same settings is warm).
    """

    def __init__(self, speaker):
        self.speaker = speaker
        self.stop = threading.Event()
        self._queue: deque[str] = deque()
        self._asked: set[str] = set()
        self._ready = threading.Condition()
        self._workers: list[threading.Thread] = []
        self._then: Callable[[Any], object] | None = None
        self._followers: list[threading.Thread] = []

    def __enter__(self) -> _SpeechAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        with self._ready:
            self.stop.set()
            self._ready.notify_all()
        for worker in self._workers + self._followers:
            worker.join()

    def then(self, job: Callable[[Any], object]) -> None:
        """Run `job(speaker)` in a thread of its own once the queue has run dry, its synthesis queued
        here too (`_QueuedSpeaker`), so it stops with the stream; it is left, not waited for, if the
        stream ends first."""
        with self._ready:
            self._then = job
            self._ready.notify_all()

    def wait_made(self, texts: list[str]) -> None:
        """Queue `texts` and wait until each is made; _Stopped if the stream ends first."""
        self.add(texts)
        with self._ready:
            while not all(self.made(t) for t in texts):
                if self.stop.is_set():
                    raise _Stopped
                self._ready.wait(1.0)  # a worker that failed notifies no one: look again now and then

    def made_soon(self, text: str) -> bool:
        """Wait until `text` is made (queued first if it is not); False if no worker is left to make it."""
        self.add([text])
        with self._ready:
            while not self.made(text):
                if self.stop.is_set() or not any(w.is_alive() for w in self._workers):
                    return self.made(text)
                self._ready.wait(0.5)  # a worker that failed notifies no one: look again now and then
        return True

    def _follow(self, job: Callable[[Any], object]) -> None:
        try:
            job(_QueuedSpeaker(self))
        except _Stopped:
            pass
        except Exception as exc:  # a follow-up only warms the cache: its failure is the next play's to meet
            log.debug("follow-up after the stream stopped: %s", exc)

    def made(self, text: str) -> bool:
        """Already in the cache (asked for here and done, or made before)."""
        return self.speaker.known_duration(text) is not None

    def add(self, texts: list[str], first: bool = False) -> None:
        wanted = [t for t in dict.fromkeys(texts) if not self.made(t)]
        with self._ready:
            if first:
                ahead = []
                for text in wanted:
                    if text not in self._asked:
                        ahead.append(text)
                    elif text in self._queue:  # asked for already, not started: moved to the head
                        self._queue.remove(text)
                        ahead.append(text)
                    # else under way in a worker: queued again, a second worker would only wait for it
                self._queue.extendleft(reversed(ahead))
            else:
                self._queue.extend(t for t in wanted if t not in self._asked)
            self._asked.update(wanted)
            self._ready.notify_all()
        if wanted and not self._workers:
            for n in range(max(1, int(getattr(self.speaker.engine, "jobs", 1)))):
                worker = threading.Thread(target=self._work, name=f"speech-ahead-{n}", daemon=True)
                worker.start()
                self._workers.append(worker)

    def _work(self) -> None:
        step_back(SPEECH_AHEAD_NICENESS)
        while True:
            with self._ready:
                while not self._queue and not self.stop.is_set():
                    if self._then is not None:  # the stream's phrases are all taken: its follow-up starts
                        follower = threading.Thread(target=self._follow, args=(self._then,), name="speech-then")
                        self._then = None
                        follower.start()
                        self._followers.append(follower)
                    self._ready.wait()
                if self.stop.is_set():
                    return
                text = self._queue.popleft()
            try:
                self.speaker.prefetch([text], keep=False)
            except Exception as exc:  # the renderer's own request for the phrase raises it where it is reported
                log.debug("synthesis ahead of the stream stopped: %s", exc)
                return
            finally:
                with self._ready:
                    self._ready.notify_all()  # a follow-up may be waiting for this phrase


# How far a stream's synthesis steps back for its planning and rendering, on the same cores: a cold
# stream's first frame waits for its plan (an hour at advanced: 2.8-3.0 s at equal priority, 2.5 s
# behind it), and its phrases are made well ahead of where they play.
SPEECH_AHEAD_NICENESS = 5


class _Stopped(Exception):
    """The stream ended: its follow-up stops here."""


class _QueuedSpeaker:
    """The stream's speaker with its synthesis sent through the stream's queue (`_SpeechAhead.wait_made`)."""

    def __init__(self, ahead: _SpeechAhead):
        self._ahead = ahead

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ahead.speaker, name)

    def prefetch(self, texts, progress=None, **_: object) -> None:
        self._ahead.wait_made(list(texts))


# s of speech (beyond the welcome) made before a cold stream's level is first set: `stream._Course`
# corrects it as the rest arrives, so it need not be long (20 s before that correction; 12 s missed by 0.36 LU)
LEVEL_SAMPLE_SECONDS = 4.0


def _level_sample(script: Script, pending: list[str]) -> list[str]:
    """The phrases a cold stream makes first and sets its level from: the first one said of
    `pending` (those not made yet), then those that make up most of the session's speech (heard most
    often, for longest), up to `LEVEL_SAMPLE_SECONDS` of speech; the made ones among them count
    without being waited for (the draft's sample, made while the plan is fitted). Short cues are
    louder than long explanations, and a session is mostly one or the other, so a level judged from
    the opening phrases alone missed by up to 1 LU.
    """
    said: dict[str, float] = {}
    for text in script.spoken_texts():
        said[text] = said.get(text, 0.0) + estimate_duration(text)
    first, unmade = pending[0], set(pending)
    sample, seconds = [first], estimate_duration(first)
    for text in sorted(said, key=lambda t: -said[t]):
        length = estimate_duration(text)
        if text == first or seconds + length > LEVEL_SAMPLE_SECONDS + estimate_duration(first):
            continue
        if text in unmade:  # one made already (for the draft) counts without a wait
            sample.append(text)
        seconds += length
    return sample


@dataclass
class _Session:
    """What `build` and `stream` set up alike: the routine with its chime set, the level, the chimes,
    the cover (checked) and the voice; then the plan and the MP3's tags."""

    routine: Routine
    level: str
    chimes: ChimeBank
    cover: tuple[bytes | None, str]
    speaker: Any

    @classmethod
    def prepare(cls, routine: Routine, level: str | None, speech: SpeechSettings | None, options: BuildOptions):
        chimes = _check_inputs(options)
        cover = _cover(options.cover or routine.cover)
        speaker = make_speaker(speech or SpeechSettings())
        return cls(_with_chime_set(routine, options.chime_set), level or routine.level, chimes, cover, speaker)

    def plan(
        self,
        minutes: float | None,
        report: Callable[[str, float], None],
        synthesise: bool = True,
    ) -> tuple[Plan, Script, float]:
        """The plan and its script (progress as "synthesising"), and the minutes the track is named by;
        without `synthesise` (a dry run), the ones the build will most likely make (`likely_session`)."""
        if synthesise:
            plan, script = plan_session(
                self.routine,
                minutes,
                self.level,
                self.speaker,
                self.chimes,
                progress=lambda done, total, *_: report("synthesising", done / max(total, 1)),
            )
        else:
            plan, script = likely_session(self.routine, minutes, self.level, self.speaker, self.chimes)
        return plan, script, plan.minutes if plan.target_seconds else round(script.total_seconds / 60)

    def tags(self, minutes: float, script: Script, options: BuildOptions) -> TrackTags:
        routine, (cover, cover_mime) = self.routine, self.cover
        return TrackTags(
            title=options.title or f"{routine.title} ({minutes:g} min, {self.level})",
            artist=options.artist,
            album=options.album or routine.title,
            genre="Fitness",
            year=str(datetime.now().year),
            comment=_comment(script, routine),
            length_ms=int(round(script.total_seconds * 1000)),
            cover=cover,
            cover_mime=cover_mime,
        )


def track_chapters(script: Script) -> list[Chapter]:
    """The MP3's chapters: a top-level one per section, one below it per exercise (with its amount)."""
    return [
        Chapter(
            s.title if s.kind == "section" else f"{s.title} ({s.amount})",
            s.start,
            s.end,
            0 if s.kind == "section" else 1,
        )
        for s in script.spans
    ]


def _comment(script: Script, routine: Routine) -> str:
    names = list(dict.fromkeys(s.title for s in script.spans if s.kind == "exercise"))
    return f"Exercises: {', '.join(names)}. Safety: {' '.join(routine.safety)}"


def _cover(path: Path | None) -> tuple[bytes | None, str]:
    """The cover's bytes and type, checked as a real PNG or JPEG of bounded size (fsutil.cover_type)."""
    if path is None:
        return None, "image/png"
    return read_cover(Path(path))


def _check_output(folder: Path, seconds: float, bitrate_kbps: int) -> None:
    """The output folder exists (or can be made), can be written, and has room for the MP3 and its sidecars."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test.{os.getpid()}.part"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise AudioworkoutError(f"{folder}: cannot write the track there ({exc.strerror or exc})") from None
    need = seconds * bitrate_kbps * 1000 / 8 * 1.1 + 2_000_000
    free = shutil.disk_usage(folder).free
    if free < need:
        raise AudioworkoutError(
            f"{folder}: not enough free space ({free / 1e6:.0f} MB free, about {need / 1e6:.0f} MB needed)"
        )


def remove_stale_parts(folder: Path) -> None:
    """Delete what a killed build left: `.<name>.<pid>.<random>.part` of a dead process, and lock
    files no process holds (the kernel released a killed build's lock, but not its file)."""
    remove_unheld_locks(sorted(folder.glob(".*.lock")))
    remove_dead_parts(sorted(folder.glob(".*.part")))
